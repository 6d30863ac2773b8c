"""roasproof: send conversions from a Python backend to the roasproof ingest API.

The public API is what this module imports; everything in ``roasproof._*`` is
private and may change in any release::

    import roasproof

    roasproof.init(api_key="...")           # or ROASPROOF_API_KEY
    roasproof.track("purchase", value="249.00", currency="EUR",
                    user_data={"email": "ada@example.com"})
"""

from roasproof._api import asend, build_payload, close, flush, get_client, init, send, track
from roasproof._client import Client
from roasproof._http import DeliveryResult, Destination
from roasproof._version import __version__
from roasproof.context import RequestContext, bind_context, current_context
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
    "__version__",
    "asend",
    "bind_context",
    "build_payload",
    "close",
    "current_context",
    "flush",
    "get_client",
    "init",
    "make_event_id",
    "send",
    "track",
]
