"""Which alerts one organization's billing events give rise to: pure rules over a small state.

The caller feeds one organization's events (plain documents, in store order) to
`alerts_for_event`; between events it keeps the organization's `OrgAlertState` as JSON
(`as_data` / `from_data`, an exact round trip). Guarantees:

- the same events give the same alerts in the same order, whatever the batches they came in
  (the state carries everything the rules remember: the balance, the last uncollected day,
  whether the balance-below-trigger alert has been given since the balance last went back above);
- only the organization's own events count, never the engine clock's: those live in another
  partition, so where they fall among an organization's events is arbitrary. Coming expiries are
  the domain's decision, announced by the account's `ExpiryApproached` (once per lot, only for a
  lot with funds left, 30 days before it expires), and passed on as they are;
- alert ids are `f"{position}:{kind}"`: an event belongs to one organization and gives at most
  one alert of each kind (one lot per `ExpiryApproached`), so every id is unique, and a replay of
  the same events yields the same ids, so the sender can drop what it already sent;
- unknown or irrelevant event types give no alert and change nothing.

No I/O and no clock reads: "now" is always an event's `at`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from consumers.alerts.kinds import (
    AUTO_RECHARGE_SUSPENDED,
    BALANCE_BELOW_TRIGGER,
    BALANCE_DEPLETED,
    CALLS_UNCOLLECTED,
    FUNDS_EXPIRED,
    FUNDS_EXPIRING,
    ORDER_PLACED,
    RECHARGE_FAILED,
    RECHARGE_SUCCEEDED,
    Alert,
)
from domain.money import ZERO, format_money, to_money

AUTO_RECHARGE_OFF, AUTO_RECHARGE_SUSPENDED_STATE = "off", "suspended"
MANUAL_SOURCE = "manual"

Facts = dict[str, Any]
Found = list[tuple[str, Facts]]  # (kind, facts) in the order the alerts go out


# ----- values ------------------------------------------------------------------------------------

def parse_moment(text: str) -> datetime:
    """An event's time as an aware UTC datetime: `Z` or an offset, with or without fractions
    (a time without an offset is taken as UTC, the engine's only zone)."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _money(text: str | None) -> Decimal | None:
    return None if text is None else to_money(text)


def _text(amount: Decimal | None) -> str | None:
    return None if amount is None else format_money(amount)


# ----- state -------------------------------------------------------------------------------------

@dataclass
class OrgAlertState:
    """What the rules remember of one organization. The balance follows the amounts: FundsAdded
    adds its amount, CallRated takes what it debited, FundsExpired what expired."""
    org: str
    name: str
    country: str
    currency: str
    balance: Decimal = ZERO
    auto_recharge_enabled: bool = False
    trigger_amount: Decimal | None = None
    suspended: bool = False
    last_uncollected_day: str | None = None  # "YYYY-MM-DD" (UTC)
    below_trigger_alerted: bool = False

    @classmethod
    def opened(cls, data: dict[str, Any]) -> "OrgAlertState":
        """From `CreditAccount.Opened`'s data."""
        return cls(data["org"], data["name"], data["country"], data["currency"])

    @property
    def below_trigger(self) -> bool:
        """Below the trigger with nothing to lift the balance: auto-recharge off or suspended."""
        return (self.trigger_amount is not None and self.balance < self.trigger_amount
                and (not self.auto_recharge_enabled or self.suspended))

    @property
    def auto_recharge_state(self) -> str:
        return AUTO_RECHARGE_SUSPENDED_STATE if self.suspended else AUTO_RECHARGE_OFF

    def as_data(self) -> dict[str, Any]:
        """JSON-ready: amounts as 4-decimal strings."""
        return {
            "org": self.org, "name": self.name, "country": self.country, "currency": self.currency,
            "balance": format_money(self.balance), "auto_recharge_enabled": self.auto_recharge_enabled,
            "trigger_amount": _text(self.trigger_amount), "suspended": self.suspended,
            "last_uncollected_day": self.last_uncollected_day, "below_trigger_alerted": self.below_trigger_alerted,
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> "OrgAlertState":
        """The inverse of `as_data`; other keys (the `lots` that states kept before the domain
        announced expiries) are ignored."""
        return cls(
            data["org"], data["name"], data["country"], data["currency"], to_money(data["balance"]),
            data["auto_recharge_enabled"], _money(data["trigger_amount"]), data["suspended"],
            data["last_uncollected_day"], data["below_trigger_alerted"],
        )


# ----- one rule per event type: apply to the state, return the event's own alerts ---------------

def _configure(state: OrgAlertState, settings: dict[str, Any]) -> None:
    state.auto_recharge_enabled = bool(settings.get("enabled"))
    state.trigger_amount = _money(settings.get("trigger_amount"))


def _credits_activated(state: OrgAlertState, data: dict[str, Any]) -> Found:
    _configure(state, data["auto_recharge"])
    return []  # Order.OrderPlaced announces the order


def _auto_recharge_configured(state: OrgAlertState, data: dict[str, Any]) -> Found:
    _configure(state, data["auto_recharge"])
    state.suspended = False
    return []


def _payment_method_updated(state: OrgAlertState, data: dict[str, Any]) -> Found:
    state.suspended = False
    return []


def _funds_added(state: OrgAlertState, data: dict[str, Any]) -> Found:
    state.balance += to_money(data["amount"])
    if data.get("source") == MANUAL_SOURCE:
        state.suspended = False
    return []  # the recharge and order alerts cover it


def _call_rated(state: OrgAlertState, data: dict[str, Any]) -> Found:
    state.balance -= to_money(data.get("debited") or "0")
    uncollected = to_money(data.get("uncollected") or "0")
    day = parse_moment(data["at"]).date().isoformat()
    if uncollected <= 0 or day == state.last_uncollected_day:
        return []
    state.last_uncollected_day = day
    return [(CALLS_UNCOLLECTED, {"day": day, "usage_id": data["usage_id"], "amount": format_money(uncollected)})]


def _funds_expired(state: OrgAlertState, data: dict[str, Any]) -> Found:
    amount = to_money(data["amount"])
    state.balance -= amount
    if amount <= 0:
        return []
    return [(FUNDS_EXPIRED, {"lot_number": data["lot_number"], "amount": format_money(amount)})]


def _expiry_approached(state: OrgAlertState, data: dict[str, Any]) -> Found:
    return [(FUNDS_EXPIRING, {"lot_number": data["lot_number"], "remaining": format_money(to_money(data["remaining"])),
                              "expires_at": data["expires_at"]})]


def _recharge_succeeded(state: OrgAlertState, data: dict[str, Any]) -> Found:
    return [(RECHARGE_SUCCEEDED, {"attempt": data["attempt"], "amount": format_money(to_money(data["amount"])),
                                  "payment_reference": data["payment_reference"]})]


def _recharge_failed(state: OrgAlertState, data: dict[str, Any]) -> Found:
    state.suspended = True
    reason = data.get("decline_reason")
    failed = {"attempt": data["attempt"], "amount": format_money(to_money(data["amount"])),
              "decline_reason": reason, "payment": data.get("payment")}
    return [(RECHARGE_FAILED, failed), (AUTO_RECHARGE_SUSPENDED, {"decline_reason": reason})]


def _balance_depleted(state: OrgAlertState, data: dict[str, Any]) -> Found:
    return [(BALANCE_DEPLETED, {"cause": data["cause"]})]


def _order_placed(state: OrgAlertState, data: dict[str, Any]) -> Found:
    settings = data.get("auto_recharge") or {}
    enabled = bool(settings.get("enabled"))
    amounts = {key: _text(_money(settings.get(key))) if enabled else None  # null when auto-recharge is off
               for key in ("recharge_amount", "trigger_amount")}
    return [(ORDER_PLACED, {"order_id": data["order_id"], "funds": format_money(to_money(data["funds"])),
                            "auto_recharge_enabled": enabled, **amounts})]


RULES: dict[str, Callable[[OrgAlertState, dict[str, Any]], Found]] = {
    "CreditAccount.CreditsActivated": _credits_activated,
    "CreditAccount.AutoRechargeConfigured": _auto_recharge_configured,
    "CreditAccount.PaymentMethodUpdated": _payment_method_updated,
    "CreditAccount.FundsAdded": _funds_added,
    "CreditAccount.CallRated": _call_rated,
    "CreditAccount.FundsExpired": _funds_expired,
    "CreditAccount.ExpiryApproached": _expiry_approached,
    "CreditAccount.RechargeSucceeded": _recharge_succeeded,
    "CreditAccount.RechargeFailed": _recharge_failed,
    "CreditAccount.BalanceDepleted": _balance_depleted,
    "Order.OrderPlaced": _order_placed,
}
RECHARGE_FAILED_EVENT = "CreditAccount.RechargeFailed"


# ----- rules across events -----------------------------------------------------------------------

def _below_trigger(state: OrgAlertState, lowered: bool, failed: bool) -> Found:
    """Once per crossing below the trigger (re-armed when the condition ends); a failed
    recharge's suspension alert already says it, so it counts as the alert."""
    if not state.below_trigger:
        state.below_trigger_alerted = False
        return []
    if failed:
        state.below_trigger_alerted = True
    if not lowered or state.below_trigger_alerted:
        return []
    state.below_trigger_alerted = True
    return [(BALANCE_BELOW_TRIGGER, {"balance": format_money(state.balance),
                                     "trigger_amount": format_money(state.trigger_amount),
                                     "auto_recharge": state.auto_recharge_state})]


# ----- entry point -------------------------------------------------------------------------------

def alerts_for_event(state: OrgAlertState, event_type: str, data: dict[str, Any], position: int) -> list[Alert]:
    """Apply one event of this organization to `state` (mutating it); its alerts in a fixed order:
    the event's own, then balance-below-trigger. Each alert's `at` is the event's."""
    rule = RULES.get(event_type)
    if rule is None:
        return []
    balance_before = state.balance
    found = rule(state, data)
    found += _below_trigger(state, lowered=state.balance < balance_before, failed=event_type == RECHARGE_FAILED_EVENT)
    return [Alert(f"{position}:{kind}", kind, state.org, position, data.get("at"), facts) for kind, facts in found]
