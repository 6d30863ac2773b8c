"""`roasproof demo`: the README's first command works on a fresh machine and proves its claims."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from roasproof import _demo
from roasproof._normalize import hash_email, hash_phone
from roasproof.cli import main


def test_the_demo_command_exits_0_and_tells_the_whole_story(tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200", "TMPDIR": str(tmp_path), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "roasproof", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    for step in (
        "emulator (local ingest API) on http://127.0.0.1:",
        "sample shop with RoasproofMiddleware",
        "a visitor landed from an ad",
        "_sgnl_vid=",
        "delivered as purchase_10023",
        "1. The conversion as received",
        '"value": 249.00',
        "2. PII arrived hashed",
        str(hash_email(_demo.EMAIL)),
        str(hash_phone(_demo.PHONE, None)),
        "no plaintext email or phone anywhere",
        "3. What each destination gets",
        "gclid, hashed_email, hashed_phone_number",
        "4. Recovered by the visitor join",
        f"the gclid from the landing page ({_demo.GCLID}) reached the purchase",
        "it works",
    ):
        assert step in out, step
    assert list(tmp_path.iterdir()) == []  # the temporary outbox is gone
    assert not (tmp_path / ".local").exists()


def test_the_demo_command_runs_in_process() -> None:
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    assert "it works" in result.output


def test_a_failed_step_makes_the_demo_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    # An address the SDK refuses: the shop's checkout fails, and the demo says so.
    monkeypatch.setattr(_demo, "EMAIL", "not-an-email-address")
    out = io.StringIO()
    assert _demo.run_demo(Console(file=out, width=200)) == 1
    assert "the demo failed: the checkout answered 500" in out.getvalue()


def test_a_check_that_does_not_hold_raises_demo_failed() -> None:
    with pytest.raises(_demo.DemoFailed, match="the gclid"):
        _demo._check(False, "the gclid did not reach Google's payload")
