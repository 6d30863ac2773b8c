"""The plan and its tracked-conversion ceiling, exactly as the ingest guide states it.

* Only billable conversions count: ``purchase``, ``lead``, ``signup``,
  ``subscribe`` and custom events marked billable. Funnel events
  (``page_view``, ``add_to_cart``, ...) are unmetered and never refused.
* One conversion counts once, however many destinations receive it, and a
  duplicate (same ``event_id``) never counts again.
* Past the plan's cap, conversions are still accepted and billed as metered
  overage. ``429`` fires only when there is no active subscription or trial to
  bill the overage to and usage is at the cap, or once usage reaches three
  times the cap whatever the billing status (the abuse safeguard).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from roasproof.errors import ConfigurationError

__all__ = [
    "BILLABLE_STANDARD_EVENTS",
    "HARD_LIMIT_FACTOR",
    "SUBSCRIPTIONS",
    "Plan",
    "Subscription",
]

BILLABLE_STANDARD_EVENTS = frozenset({"purchase", "lead", "signup", "subscribe"})
#: Usage at this multiple of the cap is refused whatever the billing status.
HARD_LIMIT_FACTOR = 3
Subscription = Literal["active", "trial", "none"]
SUBSCRIPTIONS: tuple[Subscription, ...] = ("active", "trial", "none")


@dataclass(frozen=True, slots=True)
class Plan:
    """A workspace's plan: ``cap`` billable conversions, and how overage is paid.

    ``subscription`` is ``"active"`` (a paid plan), ``"trial"`` (the free
    14-day trial, which also bills overage) or ``"none"`` (lapsed: nothing to
    bill overage to, so the cap is a hard stop).
    """

    cap: int = 1000
    subscription: Subscription = "trial"

    def __post_init__(self) -> None:
        if isinstance(self.cap, bool) or not isinstance(self.cap, int) or self.cap < 1:
            raise ConfigurationError(
                f"plan_cap must be a whole number of conversions, 1 or more; got {self.cap!r}"
            )
        if self.subscription not in SUBSCRIPTIONS:
            raise ConfigurationError(
                f"subscription must be one of {', '.join(SUBSCRIPTIONS)}; got {self.subscription!r}"
            )

    @property
    def hard_limit(self) -> int:
        """The usage at which even a paying workspace is refused."""
        return self.cap * HARD_LIMIT_FACTOR

    @property
    def bills_overage(self) -> bool:
        """Whether conversions past the cap can be billed (an active plan or trial)."""
        return self.subscription != "none"

    def decide(self, usage: int) -> Literal["included", "overage", "refused"]:
        """How the next billable conversion is treated, given ``usage`` counted so far."""
        if usage >= self.hard_limit or (usage >= self.cap and not self.bills_overage):
            return "refused"
        return "included" if usage < self.cap else "overage"

    def refusal_message(self, usage: int) -> str:
        """Why a conversion was refused (the 429 body's message)."""
        if usage >= self.hard_limit:
            return (
                f"usage reached {HARD_LIMIT_FACTOR}x the plan cap ({usage} of {self.cap}); "
                "this safeguard applies whatever the billing status. Contact support to raise it"
            )
        return (
            f"the plan cap of {self.cap} tracked conversions is reached and there is no active "
            "subscription or trial to bill overage to. Renew the subscription to resume"
        )

    def summary(self, usage: int, counters: Mapping[str, int]) -> dict[str, Any]:
        """The ``GET /api/v1/usage`` body: what is used, included, overage, refused."""
        return {
            "plan_cap": self.cap,
            "subscription": self.subscription,
            "hard_limit": self.hard_limit,
            "tracked_conversions": usage,
            "included": min(usage, self.cap),
            "overage": max(usage - self.cap, 0),
            "refused": counters.get("refused", 0),
            "unmetered_events": counters.get("unmetered", 0),
            "duplicates": counters.get("duplicates", 0),
            "rejected": counters.get("rejected", 0),
        }


def is_billable(event: str, custom_events: Mapping[str, bool]) -> bool:
    """Whether an event counts against the plan: four standard ones, and billable customs."""
    return event in BILLABLE_STANDARD_EVENTS or custom_events.get(event, False)
