"""``manage.py roasproof check|send|outbox``: the core command line, configured by Django.

The core ``roasproof`` command reads ``ROASPROOF_*`` environment variables;
this command fills them from the ``ROASPROOF`` setting (for its own run only)
so operators use the exact settings the site uses, without copying the API key
into a shell. ``check`` first runs the Django system checks of the ``roasproof``
tag, then the core ``verify`` (key and endpoint, with an unmetered page_view).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Mapping
from typing import Any, TextIO, cast

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from roasproof_django.conf import ADAPTER_KEYS, roasproof_settings

SUBCOMMANDS = {"check": "verify", "send": "send", "outbox": "outbox"}


class Command(BaseCommand):
    help = (
        "roasproof: 'check' the configuration and endpoint, 'send' a test event, inspect the "
        "'outbox' (status, dead letters, retry). Arguments after the subcommand go to the "
        "core 'roasproof' command line; try 'manage.py roasproof send --help'."
    )
    requires_system_checks = ()  # `check` runs them itself, with a clearer output

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("subcommand", choices=sorted(SUBCOMMANDS))
        parser.add_argument("args", nargs=argparse.REMAINDER)

    def handle(self, *args: Any, **options: Any) -> None:
        subcommand: str = options["subcommand"]
        if subcommand == "check":
            call_command("check", tags=["roasproof"], stdout=self.stdout, stderr=self.stderr)
        try:
            import click
            from roasproof.cli import main
        except ImportError as exc:
            raise CommandError(
                f"the roasproof command line is not installed ({exc.name} missing); "
                "pip install 'roasproof-django[cli]'"
            ) from None
        argv = [SUBCOMMANDS[subcommand], *args]
        # The wrapped streams: OutputWrapper.write would add a newline to every chunk written.
        out = cast(TextIO, getattr(self.stdout, "_out", sys.stdout))
        err = cast(TextIO, getattr(self.stderr, "_out", sys.stderr))
        code: object
        with (
            _environment(_settings_as_env()),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            try:
                code = main.main(args=argv, prog_name="manage.py roasproof", standalone_mode=False)
            except SystemExit as exc:
                code = exc.code
            except click.ClickException as exc:  # a usage error: show it as click would
                exc.show()
                code = exc.exit_code
        if code not in (None, 0):
            raise CommandError(
                f"roasproof {subcommand} failed", returncode=code if isinstance(code, int) else 1
            )


def _settings_as_env() -> dict[str, str]:
    """``ROASPROOF`` as the ``ROASPROOF_*`` variables the core command line reads."""
    env: dict[str, str] = {}
    for key, value in roasproof_settings.raw.items():
        if key in ADAPTER_KEYS or value is None or callable(value):
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list | tuple | set | frozenset):
            text = ",".join(str(item) for item in value)
        else:
            text = str(value)
        env[f"ROASPROOF_{key}"] = text
    return env


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
