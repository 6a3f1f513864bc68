"""What the alert consumer tells an organization's billing contacts, and the facts each alert carries.

An alert is born from one stored event (its `position` in the store's log) and is identified by
that position and its kind: the same event read twice gives the same identity, so it is never
sent twice. The facts are JSON-ready (amounts as 4-decimal
strings, times as ISO 8601 UTC strings): they are the webhook's payload, the `alerts.v1`
message, and what the e-mail templates format in the organization's currency and locale.
"""

from dataclasses import dataclass
from typing import Any

RECHARGE_SUCCEEDED = "recharge_succeeded"
RECHARGE_FAILED = "recharge_failed"
AUTO_RECHARGE_SUSPENDED = "auto_recharge_suspended"
BALANCE_DEPLETED = "balance_depleted"
BALANCE_BELOW_TRIGGER = "balance_below_trigger"
FUNDS_EXPIRING = "funds_expiring"
FUNDS_EXPIRED = "funds_expired"
ORDER_PLACED = "order_placed"
CALLS_UNCOLLECTED = "calls_uncollected"

# The facts of each kind, by name (every alert also has id, kind, org, position and at).
FACTS: dict[str, tuple[str, ...]] = {
    # RechargeSucceeded: the attempt's number, the amount charged, the gateway's reference
    RECHARGE_SUCCEEDED: ("attempt", "amount", "payment_reference"),
    # RechargeFailed: decline_reason may be null; payment is the method that was declined
    # ({"method": "card", "card": ..., "expires": ...} or {"method": "enterprise_agreement", ...})
    RECHARGE_FAILED: ("attempt", "amount", "decline_reason", "payment"),
    # the same RechargeFailed: auto-recharge stays off until the payment method or the settings
    # change, or funds are added by hand
    AUTO_RECHARGE_SUSPENDED: ("decline_reason",),
    # BalanceDepleted: cause is "expiry" or the usage_id of the call that took the last funds
    BALANCE_DEPLETED: ("cause",),
    # the balance fell below the trigger while auto-recharge is "off" or "suspended"
    BALANCE_BELOW_TRIGGER: ("balance", "trigger_amount", "auto_recharge"),
    # ExpiryApproached: a lot with funds left expires within 30 days (the engine announces each lot once)
    FUNDS_EXPIRING: ("lot_number", "remaining", "expires_at"),
    # FundsExpired
    FUNDS_EXPIRED: ("lot_number", "amount"),
    # OrderPlaced: recharge_amount and trigger_amount are null when auto-recharge is off
    ORDER_PLACED: ("order_id", "funds", "auto_recharge_enabled", "recharge_amount", "trigger_amount"),
    # a call charged as uncollected (the balance could not pay it): at most one alert per
    # organization and UTC day; `day` is that day, `usage_id` and `amount` the first such call's
    CALLS_UNCOLLECTED: ("day", "usage_id", "amount"),
}
KINDS = frozenset(FACTS)


@dataclass(frozen=True)
class Alert:
    id: str  # f"{position}:{kind}"
    kind: str
    org: str
    position: int  # the store position of the event it was born from
    at: str  # the event's time (the engine's clock), ISO 8601 UTC
    facts: dict[str, Any]

    def document(self) -> dict[str, Any]:
        """The alert as the webhook and `alerts.v1` carry it."""
        return {"id": self.id, "kind": self.kind, "org": self.org, "position": self.position, "at": self.at,
                "facts": self.facts}


@dataclass(frozen=True)
class OrgProfile:
    """Who the alert is for, as the templates need it."""
    org: str
    name: str
    country: str  # ISO 3166-1 alpha-2
    currency: str  # ISO 4217
    locale: str | None = None  # e.g. "fr_FR"; None: the usual locale of `country`
