"""The pieces ``roasproof send``, ``payload`` and ``verify`` share.

The event options (``--value``, ``--email``, ``--gclid``, ``--json FILE``, ...)
and their translation into the fields :func:`roasproof.events.make_event`
takes; how an invalid event or a refused delivery is explained in plain words;
and exact JSON printing (a ``Decimal`` such as ``249.00`` is written as is).
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from rich.console import Console

from roasproof.errors import (
    AuthenticationFailed,
    ConfigurationError,
    DeliveryError,
    EventRejected,
    InvalidEvent,
    QuotaExceeded,
    TransientError,
)

if TYPE_CHECKING:
    from roasproof._client import Client

__all__ = [
    "api_options",
    "event_fields",
    "event_options",
    "explain",
    "fail",
    "is_tls",
    "make_client",
    "make_console",
    "pretty_json",
    "show_invalid",
]

_F = TypeVar("_F", bound=Callable[..., Any])
_USER_FIELDS = {
    "email": "email address (hashed before sending)",
    "phone": "phone number with country code (hashed before sending)",
    "external_id": "your customer id (hashed before sending)",
    "visitor_id": "the _sgnl_vid cookie value",
    "client_ip_address": "the visitor's IP address",
    "client_user_agent": "the visitor's User-Agent",
    "fbc": "the _fbc cookie",
    "fbp": "the _fbp cookie",
    "fbclid": "Meta click id",
    "gclid": "Google click id",
    "wbraid": "Google iOS web-to-app click id",
    "gbraid": "Google iOS app click id",
    "ttclid": "TikTok click id",
}
_ALIASES = {"client_ip_address": "--ip", "client_user_agent": "--user-agent"}


def make_console(stderr: bool = False) -> Console:
    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def fail(message: str, code: int = 1) -> NoReturn:
    make_console(stderr=True).print(f"[bold red]error:[/] {message}")
    raise SystemExit(code)


def event_options(command: _F) -> _F:
    """Add the event fields as options: --value, --currency, ..., --email, --gclid, --json."""
    options = [
        click.argument("event", required=False),
        click.option("--value", help="Order value, e.g. 249.00 (exact decimal)."),
        click.option("--currency", help="3-letter ISO 4217 code, e.g. EUR."),
        click.option(
            "--event-id", help="Deterministic id, e.g. purchase_10023 (random if omitted)."
        ),
        click.option("--occurred-at", help="ISO 8601 time of the conversion (default: now)."),
        click.option("--url", help="The page where the conversion happened."),
        click.option("--action-source", help="website (default), app, phone_call, email, ..."),
        click.option("--site-key", help="Ties the event to a site when there is no visitor id."),
        *[
            click.option(_ALIASES.get(name, "--" + name.replace("_", "-")), name, help=text)
            for name, text in _USER_FIELDS.items()
        ],
        click.option(
            "--data", "custom", multiple=True, metavar="KEY=VALUE", help="custom_data entry."
        ),
        click.option(
            "--json",
            "json_file",
            type=click.File("r"),
            help="Read the event (fields as in the API) from a JSON file, '-' for stdin; "
            "options given as well override it.",
        ),
        click.option(
            "--phone-region",
            help="Region for numbers without a country code (ROASPROOF_DEFAULT_PHONE_REGION).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def event_fields(options: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """(event name, fields for make_event) from the JSON file and the options."""
    fields: dict[str, Any] = {}
    if options.get("json_file") is not None:
        try:
            loaded = json.load(options["json_file"], parse_float=Decimal)
        except ValueError as exc:
            fail(f"--json: the file is not valid JSON ({exc.args[0]})", 2)
        if not isinstance(loaded, dict):
            fail("--json: the file must hold one JSON object, the event", 2)
        fields = loaded
    user = dict(fields.pop("user_data", None) or {})
    user.update({name: options[name] for name in _USER_FIELDS if options.get(name)})
    custom = dict(fields.pop("custom_data", None) or {})
    for item in options.get("custom") or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--data {item!r}: write it as KEY=VALUE", 2)
        custom[key] = value
    for name in (
        "value",
        "currency",
        "event_id",
        "occurred_at",
        "url",
        "action_source",
        "site_key",
    ):
        if options.get(name) is not None:
            fields[name] = options[name]
    if isinstance(fields.get("value"), str):
        try:
            fields["value"] = Decimal(fields["value"])
        except ArithmeticError:
            fail("--value: write a number such as 249.00", 2)
    event = options.get("event") or fields.pop("event", None)
    fields.pop("event", None)
    if not event:
        fail("give the EVENT (e.g. purchase) as an argument or as 'event' in --json", 2)
    if user:
        fields["user_data"] = user
    if custom:
        fields["custom_data"] = custom
    return str(event), fields


def make_client(api_key: str | None, endpoint: str | None, phone_region: str | None) -> Client:
    from roasproof._client import Client

    try:
        return Client(api_key, endpoint=endpoint, default_phone_region=phone_region, outbox=None)
    except ConfigurationError as exc:
        fail(str(exc), 2)


def api_options(command: _F) -> _F:
    """Add --api-key and --endpoint (their defaults come from the ROASPROOF_* variables)."""
    command = click.option(
        "--endpoint", help="Ingest API base URL (ROASPROOF_ENDPOINT; default the hosted API)."
    )(command)
    return click.option("--api-key", help="Workspace API key (ROASPROOF_API_KEY).")(command)


def show_invalid(exc: InvalidEvent) -> NoReturn:
    console = make_console(stderr=True)
    console.print(
        f"[bold red]error:[/] the event is invalid, nothing was sent ({len(exc.errors)}):"
    )
    for error in exc.errors:
        console.print(f"  [bold]{error.path}[/]: {error.problem}. Fix: {error.fix}")
    raise SystemExit(2)


def pretty_json(payload: Mapping[str, Any]) -> str:
    """Indented JSON with every Decimal written exactly (249.00 stays 249.00).

    Each Decimal is first written as a marker string holding a NUL and a random
    token (neither can come out of a real string unescaped), then swapped back.
    """
    token = os.urandom(6).hex()
    numbers: list[str] = []

    def default(value: object) -> str:
        if isinstance(value, Decimal):
            numbers.append(format(value, "f"))
            return f"\x00{token}:{len(numbers) - 1}"
        raise TypeError(f"{type(value).__name__} is not JSON-serializable")

    text = json.dumps(payload, indent=2, ensure_ascii=False, default=default)
    for index, number in enumerate(numbers):
        text = text.replace(f'"\\u0000{token}:{index}"', number)
    return text


def explain(exc: DeliveryError) -> str:
    """What a failed send means, in plain words."""
    if isinstance(exc, AuthenticationFailed):
        return f"the API key was refused. {exc}"
    if isinstance(exc, EventRejected):
        where = f" (field {exc.field!r})" if exc.field else ""
        return f"the server rejected the event{where}: {exc.reason or exc}"
    if isinstance(exc, QuotaExceeded):
        return f"the workspace is at its tracked-conversion ceiling. {exc}"
    if isinstance(exc, TransientError) and is_tls(exc):
        return (
            "the TLS connection failed: the endpoint's certificate could not be verified or it "
            "does not speak https. Check the URL (https://...) and the system's CA certificates "
            f"(SSL_CERT_FILE). Details: {exc}"
        )
    if isinstance(exc, TransientError) and exc.status_code is None:
        return (
            f"could not reach the endpoint: check ROASPROOF_ENDPOINT / --endpoint and the "
            f"network. Details: {exc}"
        )
    return str(exc)


def is_tls(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError) or "SSL" in str(seen) or "CERTIFICATE" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
