"""roasproof: send conversions from a Python backend to the roasproof ingest API.

The public API is what this module imports; everything in ``roasproof._*`` is
private and may change in any release.
"""

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
from roasproof.events import Event, UserData, make_event_id

__all__ = [
    "AuthenticationFailed",
    "ConfigurationError",
    "DeliveryError",
    "Event",
    "EventRejected",
    "FieldError",
    "InvalidEvent",
    "QuotaExceeded",
    "RequestContext",
    "RoasproofError",
    "TransientError",
    "UserData",
    "__version__",
    "bind_context",
    "current_context",
    "make_event_id",
]
