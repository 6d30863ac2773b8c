"""A small Django project for roasproof_django's tests: an Order model, views, settings."""
