"""Sphinx configuration for the roasproof-python docs (built with -W in CI)."""

from __future__ import annotations

import importlib.metadata

project = "roasproof-python"
author = "roasproof-python developers"
copyright = "2026, roasproof-python developers"
release = importlib.metadata.version("roasproof")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
exclude_patterns = ["_build"]

autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
nitpicky = False


html_theme = "furo"
html_title = "roasproof-python"
html_static_path = ["_static"]
