"""Each organization's credit position as SPEC §11 shows it, folded from the events alone.

It keeps its own copy of balances and lots rather than asking the aggregates, so that comparing
it with the aggregates' state checks both (a test does).
"""

from decimal import Decimal
from typing import Any

from domain.credit_account import CreditAccount
from domain.money import ZERO, format_money, to_money
from domain.timestamps import decode_timestamp, format_timestamp

A = CreditAccount
EVENT_CLASSES = (A.Opened, A.CreditsActivated, A.FundsAdded, A.AutoRechargeConfigured, A.PaymentMethodUpdated,
                 A.CallRated, A.FundsExpired, A.RechargeTriggered, A.RechargeSucceeded, A.RechargeFailed,
                 A.BalanceDepleted, A.CallAuthorized, A.ReservationEnded)
_TOTALS = ("funds_added", "charged", "expired", "uncollected", "overage")


class OrganizationSummary:
    def __init__(self) -> None:
        self._orgs: dict[Any, dict[str, Any]] = {}  # by account id, in creation order

    def apply(self, event: Any) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)

    def document(self) -> dict[str, Any]:
        return {state["org"]: _render(state) for state in self._orgs.values()}

    def _opened(self, event: A.Opened) -> None:
        self._orgs[event.originator_id] = {
            "org": event.org, "currency": event.currency, "credits_active": False,
            "auto_recharge": {"enabled": False, "recharge_amount": None, "trigger_amount": None},
            "suspended": False, "lots": [], "pools": {}, "totals": dict.fromkeys(_TOTALS, ZERO),
            "recharges": {"triggered": 0, "succeeded": 0, "failed": 0}, "depleted": 0,
            "held": {},  # held amounts of open reservations, by call_id
        }

    def _activated(self, event: A.CreditsActivated) -> None:
        state = self._orgs[event.originator_id]
        state["credits_active"] = True
        state["auto_recharge"] = dict(event.auto_recharge)

    def _funds_added(self, event: A.FundsAdded) -> None:
        state = self._orgs[event.originator_id]
        amount = to_money(event.amount)
        state["lots"].append({"source": event.source, "added_at": decode_timestamp(event.added_at),
                              "expires_at": decode_timestamp(event.expires_at), "amount": amount,
                              "remaining": amount, "expired": ZERO})
        state["totals"]["funds_added"] += amount
        if event.source == "manual":
            state["suspended"] = False

    def _configured(self, event: A.AutoRechargeConfigured) -> None:
        state = self._orgs[event.originator_id]
        state["auto_recharge"] = dict(event.auto_recharge)
        state["suspended"] = False

    def _payment_updated(self, event: A.PaymentMethodUpdated) -> None:
        self._orgs[event.originator_id]["suspended"] = False

    def _call_rated(self, event: A.CallRated) -> None:
        state = self._orgs[event.originator_id]
        if event.covered_minutes:
            month = state["pools"].setdefault(event.pool_month, {})
            month[event.pool] = month.get(event.pool, 0) + event.covered_minutes
        for debit in event.debits:
            state["lots"][debit["lot"] - 1]["remaining"] -= to_money(debit["amount"])
        totals = state["totals"]
        totals["charged"] += to_money(event.debited)
        totals["uncollected"] += to_money(event.uncollected)
        totals["overage"] += to_money(event.overage)

    def _expired(self, event: A.FundsExpired) -> None:
        state = self._orgs[event.originator_id]
        lot, amount = state["lots"][event.lot_number - 1], to_money(event.amount)
        lot["remaining"] -= amount
        lot["expired"] += amount
        state["totals"]["expired"] += amount

    def _recharge_triggered(self, event: A.RechargeTriggered) -> None:
        self._orgs[event.originator_id]["recharges"]["triggered"] += 1

    def _recharge_succeeded(self, event: A.RechargeSucceeded) -> None:
        self._orgs[event.originator_id]["recharges"]["succeeded"] += 1

    def _recharge_failed(self, event: A.RechargeFailed) -> None:
        state = self._orgs[event.originator_id]
        state["recharges"]["failed"] += 1
        state["suspended"] = True

    def _depleted(self, event: A.BalanceDepleted) -> None:
        self._orgs[event.originator_id]["depleted"] += 1

    def _authorized(self, event: A.CallAuthorized) -> None:
        if event.expires_at is not None:  # allowed: a reservation opened
            self._orgs[event.originator_id]["held"][event.call_id] = to_money(event.held_amount)

    def _reservation_ended(self, event: A.ReservationEnded) -> None:
        del self._orgs[event.originator_id]["held"][event.call_id]


_HANDLERS = {
    A.Opened: OrganizationSummary._opened, A.CreditsActivated: OrganizationSummary._activated,
    A.FundsAdded: OrganizationSummary._funds_added, A.AutoRechargeConfigured: OrganizationSummary._configured,
    A.PaymentMethodUpdated: OrganizationSummary._payment_updated, A.CallRated: OrganizationSummary._call_rated,
    A.FundsExpired: OrganizationSummary._expired, A.RechargeTriggered: OrganizationSummary._recharge_triggered,
    A.RechargeSucceeded: OrganizationSummary._recharge_succeeded,
    A.RechargeFailed: OrganizationSummary._recharge_failed, A.BalanceDepleted: OrganizationSummary._depleted,
    A.CallAuthorized: OrganizationSummary._authorized, A.ReservationEnded: OrganizationSummary._reservation_ended,
}


def _render(state: dict[str, Any]) -> dict[str, Any]:
    totals = state["totals"]
    balance: Decimal = totals["funds_added"] - totals["charged"] - totals["expired"]
    return {
        "currency": state["currency"],
        "balance": format_money(balance),
        "credits_active": state["credits_active"],
        "auto_recharge": {**state["auto_recharge"], "suspended": state["suspended"]},
        "lots": [{"source": lot["source"], "added_at": format_timestamp(lot["added_at"]),
                  "expires_at": format_timestamp(lot["expires_at"]), "amount": format_money(lot["amount"]),
                  "remaining": format_money(lot["remaining"]), "expired": format_money(lot["expired"])}
                 for lot in state["lots"]],
        "pools": {month: dict(sorted(pools.items())) for month, pools in sorted(state["pools"].items())},
        "totals": {name: format_money(value) for name, value in totals.items()},
        "recharges": dict(state["recharges"]),
        "depleted": state["depleted"],
        "held": format_money(sum(state["held"].values(), ZERO)),
    }
