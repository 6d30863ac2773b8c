"""The ``roasproof`` command line.

``roasproof demo`` shows the whole path of a conversion on loopback;
``roasproof emulator`` runs the local ingest API; ``send``, ``verify`` and
``payload`` talk to (or prepare requests for) the real one. Every command reads
the same ``ROASPROOF_*`` settings as the library (``ROASPROOF_API_KEY``,
``ROASPROOF_ENDPOINT``, ``ROASPROOF_DEFAULT_PHONE_REGION``, ...); options given
on the command line win.

Exit codes: 0 success, 1 the server refused or could not be reached, 2 bad
input or settings (including click's own usage errors).

Heavy imports (the emulator's Starlette and uvicorn) wait until the command
that needs them runs, so ``roasproof payload`` works with only the ``cli`` extra.

.. versionadded:: 0.1.0
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import click
from rich.syntax import Syntax

from roasproof._cli_events import (
    api_options,
    event_fields,
    event_options,
    explain,
    fail,
    make_client,
    make_console,
    pretty_json,
    show_invalid,
)
from roasproof._cli_outbox import outbox_group, worker_command
from roasproof._version import __version__
from roasproof.errors import (
    ConfigurationError,
    DeliveryError,
    InvalidEvent,
)

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="roasproof", message="%(prog)s %(version)s")
def main() -> None:
    """Send conversions to the roasproof ingest API, or try everything locally.

    \b
    Start here:   roasproof demo
    Settings:     ROASPROOF_API_KEY, ROASPROOF_ENDPOINT, ROASPROOF_DEFAULT_PHONE_REGION
                  and the other ROASPROOF_* variables the library reads.
    """


# -- payload ----------------------------------------------------------------------------


@main.command()
@event_options
@click.option("--compact", is_flag=True, help="Print the exact bytes that would be sent.")
def payload(compact: bool, **options: Any) -> None:
    """Print the exact JSON body for EVENT, hashing applied, without sending it.

    \b
    Example:
      roasproof payload purchase --value 249.00 --currency EUR \\
          --email jane@example.com --phone "+359 88 123 4567"
    """
    from roasproof._payload import encode_payload

    event, fields = event_fields(options)
    client = make_client(None, None, options.get("phone_region"))
    try:
        body = client.build_payload(event, **fields)
    except InvalidEvent as exc:
        show_invalid(exc)
    if compact:
        click.echo(encode_payload(body).decode())
        return
    text = pretty_json(body)
    console = make_console()
    if console.is_terminal:
        console.print(Syntax(text, "json", theme="ansi_dark", background_color="default"))
    else:
        click.echo(text)


# -- send ---------------------------------------------------------------------------------


@main.command()
@event_options
@api_options
def send(api_key: str | None, endpoint: str | None, **options: Any) -> None:
    """Send one EVENT now and print the server's answer.

    \b
    Examples:
      roasproof send purchase --value 249.00 --currency EUR --event-id purchase_10023 \\
          --email jane@example.com --visitor-id "$SGNL_VID"
      roasproof send --json order.json
    Exits 1 when the server refuses the event or cannot be reached, 2 on bad input.
    """
    event, fields = event_fields(options)
    client = make_client(api_key, endpoint, options.get("phone_region"))
    try:
        result = client.send(event, **fields)
    except InvalidEvent as exc:
        show_invalid(exc)
    except ConfigurationError as exc:
        fail(str(exc), 2)
    except DeliveryError as exc:
        fail(explain(exc))
    finally:
        client.close()
    console = make_console()
    statuses = ", ".join(f"{item.destination} ({item.status})" for item in result.destinations)
    console.print(
        f"[bold green]accepted[/] ({result.status_code}) {event} "
        f"event_id={result.event_id}: {statuses or 'no active destination'}"
    )


# -- verify -------------------------------------------------------------------------------


@main.command()
@api_options
def verify(api_key: str | None, endpoint: str | None) -> None:
    """Check the API key and endpoint with one unmetered page_view event.

    Explains what is wrong when it fails: a missing or refused key, an endpoint
    that cannot be reached, a TLS problem. A page_view never counts against the plan.
    """
    client = make_client(api_key, endpoint, None)
    target = client.settings.endpoint
    try:
        result = client.send("page_view", event_id=f"verify_{uuid.uuid4().hex}")
    except ConfigurationError as exc:
        fail(str(exc), 2)
    except DeliveryError as exc:
        fail(f"{target} did not accept the check: {explain(exc)}")
    finally:
        client.close()
    names = ", ".join(item.destination for item in result.destinations) or "none"
    make_console().print(
        f"[bold green]ok[/]: {target} accepted the key with an unmetered page_view "
        f"({result.status_code}); active destinations: {names}"
    )


# -- emulator -----------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port to listen on.")
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    help="A key the emulator accepts (repeatable). Default: rp_test_emulator and "
    "$ROASPROOF_API_KEY when set.",
)
@click.option(
    "--custom-event",
    "custom_events",
    multiple=True,
    metavar="KEY[:billable]",
    help="Define a custom event (repeatable); ':billable' counts it against the plan.",
)
@click.option(
    "--destination",
    "destinations",
    multiple=True,
    type=click.Choice(["meta", "google", "tiktok"]),
    help="An active destination (repeatable). Default: all three.",
)
@click.option("--plan-cap", default=1000, show_default=True, type=click.IntRange(min=1))
@click.option(
    "--subscription",
    type=click.Choice(["active", "trial", "none"]),
    default="trial",
    show_default=True,
    help="Billing status: overage is billed unless it is 'none'.",
)
@click.option("--no-subscription", is_flag=True, help="Same as --subscription none.")
@click.option("--db", type=click.Path(dir_okay=False, path_type=Path), help="Keep data in SQLite.")
@click.option("--chaos-fail-first", type=click.IntRange(min=0), default=0, help="Fail the first N.")
@click.option("--chaos-fail-rate", type=click.FloatRange(0, 1), default=0.0, help="Fail share.")
@click.option("--chaos-status", type=click.IntRange(500, 599), default=503, show_default=True)
@click.option("--chaos-retry-after", type=click.FloatRange(min=0), help="Retry-After on failures.")
@click.option("--chaos-latency", type=click.FloatRange(min=0), default=0.0, help="Seconds added.")
@click.option("--chaos-drop-rate", type=click.FloatRange(0, 1), default=0.0, help="Drop share.")
@click.option(
    "--chaos-drop-after-processing",
    is_flag=True,
    help="Store dropped events, lose only the answer.",
)
@click.option("--chaos-down-after", type=click.FloatRange(min=0), default=0.0, help="Seconds.")
@click.option("--chaos-down-for", type=click.FloatRange(min=0), default=0.0, help="Outage length.")
@click.option("--chaos-down-mode", type=click.Choice(["close", "503"]), default="close")
@click.option("--seed", type=int, help="Seed for the chaos draws (deterministic runs).")
def emulator(**options: Any) -> None:
    """Run the local ingest API emulator (needs the 'emulator' extra).

    \b
    Then, in another shell:
      export ROASPROOF_ENDPOINT=http://127.0.0.1:8765 ROASPROOF_API_KEY=rp_test_emulator
      roasproof send purchase --value 49 --currency EUR --email jane@example.com
    and open http://127.0.0.1:8765/ to see the conversion events.
    """
    from roasproof.emulator.options import build_emulator, print_banner

    try:
        app, keys = build_emulator(options, os.environ)
    except (ConfigurationError, ImportError) as exc:
        fail(str(exc), 2)
    print_banner(make_console(), options, keys)
    from roasproof.emulator import serve

    serve(app, options["host"], options["port"])


# -- demo ---------------------------------------------------------------------------------


@main.command()
def demo() -> None:
    """See it work in 2 minutes: a purchase from ad click to ad platforms, on loopback.

    Starts the emulator and a tiny shop on free loopback ports, lands a visitor
    from an ad, checks out with a raw email and phone through the SDK, and
    shows what the ingest API received, that PII arrived hashed, what each ad
    platform gets, and the click ids the visitor join recovered. Needs the
    'emulator' extra; writes nothing outside a temporary directory.
    """
    try:
        from roasproof._demo import run_demo
    except ImportError as exc:  # pragma: no cover - only without the emulator extra
        fail(f"{exc}. Install it with: pip install 'roasproof[emulator]'", 2)
    raise SystemExit(run_demo(make_console()))


main.add_command(outbox_group)
main.add_command(worker_command)
