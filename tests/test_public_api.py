"""The public API is exactly what roasproof/__init__.py lists, sorted, and nothing private."""

from __future__ import annotations

import importlib
import inspect

import roasproof


def test_all_is_sorted_and_unique() -> None:
    assert roasproof.__all__ == sorted(set(roasproof.__all__))


def test_every_name_in_all_is_importable() -> None:
    for name in roasproof.__all__:
        assert hasattr(roasproof, name), name


def test_every_public_attribute_is_listed_in_all() -> None:
    public = {
        name
        for name, value in vars(roasproof).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public <= set(roasproof.__all__)


def test_public_classes_present_themselves_as_public() -> None:
    # Objects re-exported from private modules are still documented where users import them.
    for name in roasproof.__all__:
        value = getattr(roasproof, name)
        module = getattr(value, "__module__", "roasproof")
        if inspect.isclass(value) or inspect.isfunction(value):
            assert module.startswith("roasproof"), (name, module)


def test_the_core_imports_no_web_framework() -> None:
    import sys

    for module in ("flask", "django", "fastapi"):
        sys.modules.pop(module, None)
    importlib.reload(roasproof)
    for module in ("flask", "django", "fastapi"):
        assert module not in sys.modules, module


def test_errors_share_one_base_and_bad_input_is_a_value_error() -> None:
    for name in roasproof.__all__:
        value = getattr(roasproof, name)
        if inspect.isclass(value) and issubclass(value, Exception):
            assert issubclass(value, roasproof.RoasproofError), name
    assert issubclass(roasproof.InvalidEvent, ValueError)
    assert issubclass(roasproof.ConfigurationError, ValueError)


def test_importing_the_package_or_the_pytest_plugin_loads_no_heavy_dependency() -> None:
    # pytest loads roasproof.testing in every test run of a project that has roasproof
    # installed: that must not cost pydantic, httpx or phonenumbers.
    import subprocess
    import sys

    code = (
        "import sys, roasproof, roasproof.testing; "
        "print(','.join(m for m in ('pydantic', 'httpx', 'phonenumbers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    import pytest

    with pytest.raises(AttributeError, match="no_such_name"):
        roasproof.no_such_name  # type: ignore[attr-defined]  # noqa: B018
    assert "track" in dir(roasproof)
