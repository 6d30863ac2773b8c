"""Settings: from arguments first, then ``ROASPROOF_*`` environment variables, then defaults.

Everything is checked once, when the client is built, so a typo in an endpoint
or an unknown phone region fails at start-up with a message naming the setting
(argument and environment variable) and the fix, rather than at the first
purchase. The API key is never shown: ``repr(settings)`` says ``'<set>'``.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import math
import os
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, cast
from urllib.parse import urlsplit

import phonenumbers

from roasproof.errors import ConfigurationError

if TYPE_CHECKING:
    from roasproof._http import DeliveryResult

__all__ = ["DEFAULT_ENDPOINT", "UNSET", "Settings", "default_outbox_path"]

DEFAULT_ENDPOINT: Final = "https://app.roasproof.com"
#: Ad platforms refuse events older than 7 days; give up a day before that.
DEFAULT_MAX_EVENT_AGE: Final = 6 * 24 * 3600.0
MEMORY: Final = ":memory:"

Durability = Literal["normal", "power"]
Senders = Literal["one", "all"]
Transport = Literal["auto", "httpx", "aiohttp"]
ErrorHook = Callable[[Exception], object]
DeliveredHook = Callable[["DeliveryResult"], object]

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_EVENT_KEY = re.compile(r"[a-z][a-z0-9_]{0,63}")
_T = TypeVar("_T")


class _Unset:
    """The "argument not given" marker, for settings where ``None`` means something."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Final = _Unset()


def default_outbox_path(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/roasproof/outbox.sqlite3``, else ``~/.local/state/roasproof/...``."""
    env = os.environ if environ is None else environ
    state = env.get("XDG_STATE_HOME", "")
    base = Path(state) if state and Path(state).is_absolute() else Path.home() / ".local" / "state"
    return base / "roasproof" / "outbox.sqlite3"


@dataclass(frozen=True, slots=True)
class Settings:
    """The resolved configuration of a :class:`~roasproof.Client`.

    Build it with :meth:`resolve`, which reads arguments, then the environment,
    then defaults, and validates everything. ``outbox=None`` is the in-memory
    queue (not durable).
    """

    api_key: str | None = None
    endpoint: str = DEFAULT_ENDPOINT
    strict: bool = False
    enabled: bool = True
    default_phone_region: str | None = None
    custom_events: frozenset[str] | None = None
    outbox: Path | None = field(default_factory=default_outbox_path)
    durability: Durability = "normal"
    senders: Senders = "one"
    max_in_flight: int = 32
    max_event_age: float = DEFAULT_MAX_EVENT_AGE
    connect_timeout: float = 3.0
    read_timeout: float = 10.0
    transport: Transport = "auto"
    on_error: ErrorHook | None = None
    on_delivered: DeliveredHook | None = None

    def __repr__(self) -> str:
        shown = {name: getattr(self, name) for name in self.__dataclass_fields__}
        shown["api_key"] = "<set>" if self.api_key else "<missing>"
        inner = ", ".join(f"{name}={value!r}" for name, value in shown.items())
        return f"Settings({inner})"

    __str__ = __repr__

    @property
    def configured(self) -> bool:
        """Whether events can be delivered: enabled and an API key present."""
        return self.enabled and self.api_key is not None

    @classmethod
    def resolve(
        cls,
        api_key: str | None = None,
        *,
        endpoint: str | None = None,
        strict: bool | None = None,
        enabled: bool | None = None,
        default_phone_region: str | None = None,
        custom_events: Collection[str] | str | None = None,
        outbox: str | os.PathLike[str] | _Unset | None = UNSET,
        durability: str | None = None,
        senders: str | None = None,
        max_in_flight: int | None = None,
        max_event_age: float | timedelta | None = None,
        connect_timeout: float | None = None,
        read_timeout: float | None = None,
        transport: str | None = None,
        on_error: ErrorHook | None = None,
        on_delivered: DeliveredHook | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Settings:
        """Settings from the arguments given, then ``ROASPROOF_*`` variables, then defaults.

        Raises :class:`~roasproof.ConfigurationError` naming the first invalid setting.
        """
        env = os.environ if environ is None else environ
        pick = _Picker(env)
        return cls(
            api_key=pick("api_key", api_key, _api_key, None),
            endpoint=pick("endpoint", endpoint, _endpoint, DEFAULT_ENDPOINT),
            strict=pick("strict", strict, _bool, False),
            enabled=pick("enabled", enabled, _bool, True),
            default_phone_region=pick("default_phone_region", default_phone_region, _region, None),
            custom_events=pick("custom_events", custom_events, _custom_events, None),
            outbox=pick.outbox(outbox),
            durability=cast(Durability, pick("durability", durability, _choice, "normal")),
            senders=cast(Senders, pick("senders", senders, _choice, "one")),
            max_in_flight=pick("max_in_flight", max_in_flight, _positive_int, 32),
            max_event_age=pick("max_event_age", max_event_age, _seconds, DEFAULT_MAX_EVENT_AGE),
            connect_timeout=pick("connect_timeout", connect_timeout, _seconds, 3.0),
            read_timeout=pick("read_timeout", read_timeout, _seconds, 10.0),
            transport=cast(Transport, pick("transport", transport, _transport, "auto")),
            on_error=_hook("on_error", on_error),
            on_delivered=_hook("on_delivered", on_delivered),
        )


class _Invalid(Exception):
    """Raised by a parser; :class:`_Picker` turns it into a ConfigurationError with names."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


def _env_name(setting: str) -> str:
    return "ROASPROOF_" + setting.upper()


def _error(setting: str, from_env: bool, problem: str, fix: str) -> ConfigurationError:
    env = _env_name(setting)
    origin = f" (read from the environment variable {env})" if from_env else ""
    return ConfigurationError(
        f"invalid roasproof setting {setting!r} (argument {setting}=, environment variable "
        f"{env}){origin}: {problem}. Fix: {fix}"
    )


class _Picker:
    """Chooses argument, else environment variable, else default, and parses it."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def __call__(
        self, setting: str, given: object, parse: Callable[[str, object], _T], default: _T
    ) -> _T:
        from_env = given is None
        raw = self._env.get(_env_name(setting), "").strip() if from_env else given
        if raw is None or raw == "":
            return default
        try:
            return parse(setting, raw)
        except _Invalid as invalid:
            raise _error(setting, from_env, invalid.problem, invalid.fix) from None

    def outbox(self, given: str | os.PathLike[str] | _Unset | None) -> Path | None:
        if isinstance(given, _Unset):
            raw = self._env.get("ROASPROOF_OUTBOX", "").strip()
            return default_outbox_path(self._env) if not raw else _outbox(raw)
        return None if given is None else _outbox(given)


def _outbox(value: str | os.PathLike[str]) -> Path | None:
    text = os.fspath(value)
    if text == MEMORY:
        return None
    return Path(text).expanduser()


def _api_key(setting: str, value: object) -> str:
    if not isinstance(value, str):
        raise _Invalid(f"expected a string, got {type(value).__name__}", "pass the key as a str")
    key = value.strip()
    if key.lower().startswith("bearer "):
        raise _Invalid(
            "the value starts with 'Bearer '", "pass only the key; the SDK adds 'Bearer'"
        )
    if any(char.isspace() or not char.isprintable() for char in key):
        raise _Invalid(
            "the key contains whitespace or control characters",
            "copy the key again from the Setup & API keys page",
        )
    return key


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _endpoint(setting: str, value: object) -> str:
    text = str(value).strip().rstrip("/")
    parts = urlsplit(text)
    fix = f"use the ingest API's base URL, e.g. {DEFAULT_ENDPOINT}"
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise _Invalid(f"{text!r} is not an absolute http(s) URL", fix)
    try:
        parts.port  # noqa: B018 - urlsplit only checks the port when it is read
    except ValueError:
        raise _Invalid(f"{text!r} has an invalid port", fix) from None
    if parts.username or parts.password:
        raise _Invalid("the URL contains credentials", "pass the API key as api_key= instead")
    if parts.query or parts.fragment:
        raise _Invalid(f"{text!r} has a query or fragment", fix)
    if parts.path.endswith("/api/v1/events"):
        raise _Invalid(f"{text!r} includes the /api/v1/events path", "drop the path; " + fix)
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise _Invalid(
            f"{text!r} uses plain http, which would send the API key unencrypted",
            "use https (plain http is only allowed for loopback hosts such as 127.0.0.1)",
        )
    return text


def _bool(setting: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _Invalid(f"{value!r} is not a boolean", "use one of 1/true/yes/on or 0/false/no/off")


def _region(setting: str, value: object) -> str:
    region = str(value).strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise _Invalid(
            f"{value!r} is not a region known to phonenumbers",
            "use a two-letter ISO 3166 code such as 'US', 'GB' or 'DE'",
        )
    return region


def _custom_events(setting: str, value: object) -> frozenset[str]:
    if isinstance(value, str):
        items = [item.strip() for item in value.split(",") if item.strip()]
    elif isinstance(value, Collection):
        items = [str(item).strip() for item in value]
    else:
        raise _Invalid(f"expected a list of event keys, got {type(value).__name__}", "pass a list")
    bad = [item for item in items if not _EVENT_KEY.fullmatch(item)]
    if bad:
        raise _Invalid(
            f"{', '.join(map(repr, bad))} not valid event key(s)",
            "use lowercase letters, digits and underscores, starting with a letter, "
            "at most 64 characters (comma-separated in the environment variable)",
        )
    return frozenset(items)


_CHOICES: Final = {"durability": ("normal", "power"), "senders": ("one", "all")}


def _choice(setting: str, value: object) -> str:
    allowed = _CHOICES[setting]
    text = str(value).strip().lower()
    if text not in allowed:
        raise _Invalid(f"{value!r} is not allowed", "use one of " + ", ".join(map(repr, allowed)))
    return text


def _transport(setting: str, value: object) -> str:
    text = str(value).strip().lower()
    if text not in ("auto", "httpx", "aiohttp"):
        raise _Invalid(f"{value!r} is not allowed", "use one of 'auto', 'httpx', 'aiohttp'")
    if text == "aiohttp" and importlib.util.find_spec("aiohttp") is None:
        raise _Invalid("aiohttp is not installed", "pip install 'roasproof[fast]', or use 'auto'")
    return text


def _number(value: object) -> float:
    if isinstance(value, bool):
        raise _Invalid("a boolean is not a number", "pass a number")
    if isinstance(value, timedelta):
        return value.total_seconds()
    try:
        return float(cast(Any, value))
    except (TypeError, ValueError):
        raise _Invalid(f"{value!r} is not a number", "pass a number") from None


def _positive_int(setting: str, value: object) -> int:
    number = _number(value)
    if not math.isfinite(number) or number != int(number):
        raise _Invalid(f"{value!r} is not a whole number", "pass an integer such as 32")
    if not 1 <= number <= 1024:
        raise _Invalid(f"{value!r} is out of range", "pass an integer from 1 to 1024")
    return int(number)


def _seconds(setting: str, value: object) -> float:
    number = _number(value)
    if not math.isfinite(number) or number <= 0:
        raise _Invalid(f"{value!r} is not a positive number of seconds", "pass seconds > 0")
    return number


def _hook(setting: str, value: _T | None) -> _T | None:
    if value is not None and not callable(value):
        raise ConfigurationError(
            f"invalid roasproof setting {setting!r} (argument {setting}=): expected a "
            f"callable, got {type(value).__name__}. Fix: pass a function (argument only; "
            "there is no environment variable for it)"
        )
    return value
