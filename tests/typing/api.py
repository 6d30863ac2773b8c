"""Examples of the public API that ``mypy --strict`` must accept (checked in CI, never run)."""

from __future__ import annotations

import datetime
from decimal import Decimal

import roasproof
from roasproof.capture import context_from_mappings, parse_trusted_proxies


def configure() -> roasproof.Client:
    return roasproof.init(api_key="rp_test_key", endpoint="http://127.0.0.1:8765", strict=True)


def checkout(client: roasproof.Client, order_id: int, total: Decimal) -> str:
    event_id: str = client.track(
        "purchase",
        event_id=roasproof.make_event_id("purchase", order_id),
        value=total,
        currency="EUR",
        occurred_at=datetime.datetime.now(datetime.UTC),
        user_data={"email": "ada@example.com", "phone": "+359881234567"},
        custom_data={"order_number": str(order_id)},
    )
    return event_id


def direct(client: roasproof.Client) -> tuple[str, ...]:
    try:
        result: roasproof.DeliveryResult = client.send("lead")
    except roasproof.EventRejected as exc:
        return (exc.field or "",)
    except roasproof.QuotaExceeded as exc:
        return (str(exc.retry_after),)
    except roasproof.DeliveryError:
        return ()
    return tuple(d.destination for d in result.destinations)


async def direct_async(client: roasproof.Client) -> str:
    result = await client.asend("signup")
    await client.aclose()
    return result.event_id


def with_context() -> roasproof.RequestContext | None:
    ctx = context_from_mappings(
        headers={"user-agent": "Mozilla/5.0"},
        query="gclid=abc",
        peer="203.0.113.7",
        trusted_proxies=parse_trusted_proxies(1),
    )
    with roasproof.bind_context(ctx):
        payload: dict[str, object] = roasproof.build_payload("lead")
        assert payload["event"] == "lead"
        return roasproof.current_context()


def invalid() -> list[str]:
    try:
        roasproof.Event(event="Not Valid")
    except roasproof.InvalidEvent as exc:
        return exc.fields
    return []


def lifecycle() -> bool:
    delivered: bool = roasproof.flush(timeout=2.0)
    roasproof.close(timeout=2.0)
    return delivered
