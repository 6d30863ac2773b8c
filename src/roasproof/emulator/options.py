"""From ``roasproof emulator`` options to a configured app, and the start-up banner.

Kept apart from ``roasproof.cli`` so the command line stays importable without
Starlette, and so the translation (which key set, which chaos, which billing
status) is one function that reads like the option list.

Keys: the ``--api-key`` values when given; otherwise the default
``rp_test_emulator`` plus ``$ROASPROOF_API_KEY`` when it is set, so an
application already configured with a key can be pointed at the emulator by
changing only ``ROASPROOF_ENDPOINT``. The banner never prints a key other than
the well-known default (a real key is shown masked).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from starlette.applications import Starlette

from roasproof.emulator.app import create_app
from roasproof.emulator.billing import Subscription
from roasproof.emulator.chaos import ChaosConfig
from roasproof.emulator.destinations import DESTINATIONS
from roasproof.emulator.ingest import DEFAULT_API_KEY

__all__ = ["api_keys_from", "build_emulator", "chaos_from", "mask_key", "print_banner"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def mask_key(key: str) -> str:
    """``rp_l…x7Q2``: enough to tell keys apart, never the key."""
    if key == DEFAULT_API_KEY:
        return key
    return f"{key[:4]}…{key[-4:]}" if len(key) > 12 else "…" * 3


def api_keys_from(given: tuple[str, ...], environ: Mapping[str, str]) -> tuple[str, ...]:
    """The keys the emulator accepts: the given ones, else the default and the env key."""
    if given:
        return given
    env_key = environ.get("ROASPROOF_API_KEY", "").strip()
    return (DEFAULT_API_KEY, env_key) if env_key else (DEFAULT_API_KEY,)


def chaos_from(options: Mapping[str, Any]) -> ChaosConfig:
    """The chaos configuration from the ``--chaos-*`` options and ``--seed``."""
    return ChaosConfig(
        fail_first=options.get("chaos_fail_first") or 0,
        fail_rate=options.get("chaos_fail_rate") or 0.0,
        fail_status=options.get("chaos_status") or 503,
        retry_after=options.get("chaos_retry_after"),
        latency=options.get("chaos_latency") or 0.0,
        drop_rate=options.get("chaos_drop_rate") or 0.0,
        drop_after_processing=bool(options.get("chaos_drop_after_processing")),
        down_after=options.get("chaos_down_after") or 0.0,
        down_for=options.get("chaos_down_for") or 0.0,
        down_mode=options.get("chaos_down_mode") or "close",
        seed=options.get("seed"),
    )


def build_emulator(
    options: Mapping[str, Any], environ: Mapping[str, str]
) -> tuple[Starlette, tuple[str, ...]]:
    """The app for the ``roasproof emulator`` options, and the keys it accepts.

    Raises :class:`~roasproof.ConfigurationError` for an invalid combination
    (a malformed custom event, chaos rates above 1, ...).
    """
    keys = api_keys_from(tuple(options.get("api_keys") or ()), environ)
    subscription: Subscription = (
        "none" if options.get("no_subscription") else options.get("subscription") or "trial"
    )
    app = create_app(
        api_keys=keys,
        destinations=tuple(options.get("destinations") or DESTINATIONS),
        custom_events=tuple(options.get("custom_events") or ()),
        plan_cap=options.get("plan_cap") or 1000,
        subscription=subscription,
        chaos=chaos_from(options),
        db_path=options.get("db"),
    )
    return app, keys


def print_banner(console: Console, options: Mapping[str, Any], keys: tuple[str, ...]) -> None:
    """Say where the emulator listens and how to point the SDK at it."""
    host, port = options["host"], options["port"]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}"
    console.print(f"[bold]roasproof emulator[/] listening on [bold]{url}[/]")
    console.print(f"  accepted API keys: {', '.join(mask_key(key) for key in keys)}")
    console.print(f"  conversion events page: {url}/   tracking script: {url}/t.js")
    storage = options.get("db") or "memory (use --db PATH to keep data)"
    console.print(f"  storage: {storage}")
    config = chaos_from(options)
    if config != ChaosConfig(seed=config.seed):
        console.print(f"  [yellow]chaos on[/]: {_describe(config)}")
    console.print("Point the SDK at it:")
    console.print(f"  export ROASPROOF_ENDPOINT={url} ROASPROOF_API_KEY={DEFAULT_API_KEY}")
    if host not in _LOOPBACK:
        console.print(
            f"[yellow]note[/]: bound to {host}, reachable from other machines; "
            "the emulator has no real security"
        )


def _describe(config: ChaosConfig) -> str:
    parts = []
    if config.fail_first:
        parts.append(f"first {config.fail_first} requests fail with {config.fail_status}")
    if config.fail_rate:
        parts.append(f"{config.fail_rate:.0%} fail with {config.fail_status}")
    if config.retry_after is not None:
        parts.append(f"Retry-After {config.retry_after:g}s")
    if config.latency:
        parts.append(f"+{config.latency:g}s latency")
    if config.drop_rate:
        when = " after processing" if config.drop_after_processing else ""
        parts.append(f"{config.drop_rate:.0%} connections dropped{when}")
    if config.down_for:
        parts.append(
            f"down ({config.down_mode}) from {config.down_after:g}s for {config.down_for:g}s"
        )
    seed = f" (seed {config.seed})" if config.seed is not None else ""
    return ", ".join(parts) + seed
