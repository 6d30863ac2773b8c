"""roasproof: send conversions from a Python backend to the roasproof ingest API.

The public API is what this module exports; everything in ``roasproof._*`` is
private and may change in any release::

    import roasproof

    roasproof.init(api_key="...")           # or ROASPROOF_API_KEY
    roasproof.track("purchase", value="249.00", currency="EUR",
                    user_data={"email": "ada@example.com"})

Names are imported on first use (PEP 562), so ``import roasproof`` stays cheap
for code that only needs a piece of it, such as the pytest plugin that pytest
loads in every test run of a project that has roasproof installed.
"""

import importlib as _importlib
import typing as _typing

from roasproof._version import __version__

if _typing.TYPE_CHECKING:
    from roasproof._api import (
        asend,
        build_payload,
        close,
        flush,
        get_client,
        init,
        send,
        track,
    )
    from roasproof._client import Client
    from roasproof._http import DeliveryResult, Destination
    from roasproof.context import RequestContext, bind_context, current_context
    from roasproof.decorators import ViewCall, conversion, track_conversion
    from roasproof.errors import (
        AuthenticationFailed,
        ConfigurationError,
        DeliveryError,
        EventRejected,
        FieldError,
        InvalidEvent,
        QuotaExceeded,
        RoasproofError,
        TransientError,
    )
    from roasproof.events import ActionSource, Event, StandardEvent, UserData, make_event_id

_WHERE = {
    "roasproof._api": (
        "asend",
        "build_payload",
        "close",
        "flush",
        "get_client",
        "init",
        "send",
        "track",
    ),
    "roasproof._client": ("Client",),
    "roasproof._http": ("DeliveryResult", "Destination"),
    "roasproof.context": ("RequestContext", "bind_context", "current_context"),
    "roasproof.decorators": ("ViewCall", "conversion", "track_conversion"),
    "roasproof.errors": (
        "AuthenticationFailed",
        "ConfigurationError",
        "DeliveryError",
        "EventRejected",
        "FieldError",
        "InvalidEvent",
        "QuotaExceeded",
        "RoasproofError",
        "TransientError",
    ),
    "roasproof.events": ("ActionSource", "Event", "StandardEvent", "UserData", "make_event_id"),
}
_MODULE_OF = {name: module for module, names in _WHERE.items() for name in names}

__all__ = [
    "ActionSource",
    "AuthenticationFailed",
    "Client",
    "ConfigurationError",
    "DeliveryError",
    "DeliveryResult",
    "Destination",
    "Event",
    "EventRejected",
    "FieldError",
    "InvalidEvent",
    "QuotaExceeded",
    "RequestContext",
    "RoasproofError",
    "StandardEvent",
    "TransientError",
    "UserData",
    "ViewCall",
    "__version__",
    "asend",
    "bind_context",
    "build_payload",
    "close",
    "conversion",
    "current_context",
    "flush",
    "get_client",
    "init",
    "make_event_id",
    "send",
    "track",
    "track_conversion",
]


def __getattr__(name: str) -> _typing.Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'roasproof' has no attribute {name!r}")
    value = getattr(_importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
