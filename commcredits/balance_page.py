"""`commcredits balance`: an organization's credit position as a page or JSON.

`read_balance_page` brings the balance view (`projections.balance_view`) up to the end of the
store's log and reads the organization from it. `balance_document` reads the same figures from
the account aggregate: the two are compared by tests (and by the audit). The JSON has the shape
of an organization in `simulate`'s report (SPEC §11), plus who the organization is and how it
pays, so they can be compared line for line.
"""

from datetime import datetime
from typing import Any

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from application.settings import StoreSettings
from commcredits.terminal_text import terminal_safe
from commcredits.view_commands import read_caught_up
from domain.commerce import NCE
from domain.credit_account import CreditAccount
from domain.money import format_money
from domain.timestamps import decode_timestamp, format_timestamp
from projections.balance_queries import EXPIRY_WINDOWS_DAYS, balance_page, expiring_within
from projections.balance_view import BalanceView


def balance_document(account: CreditAccount) -> dict[str, Any]:
    settings = account.auto_recharge.as_data()
    return {
        "org": account.org,
        "name": account.name,
        "country": account.country,
        "commerce": account.commerce,
        "currency": account.currency,
        "balance": format_money(account.balance),
        "credits_active": account.credits_active,
        "auto_recharge": {**settings, "suspended": account.suspended},
        "payment": account.payment,
        "lots": [{"source": lot.source, "added_at": format_timestamp(lot.added_at),
                  "expires_at": format_timestamp(lot.expires_at), "amount": format_money(lot.amount),
                  "remaining": format_money(lot.remaining), "expired": format_money(lot.expired)}
                 for lot in account.lots],
        "pools": {month: dict(sorted(pools.items()))
                  for month, pools in sorted(account.pool_usage.items()) if any(pools.values())},
        "totals": {"funds_added": format_money(account.funds_added), "charged": format_money(account.charged),
                   "expired": format_money(account.expired), "uncollected": format_money(account.uncollected),
                   "overage": format_money(account.overage)},
        "recharges": {"triggered": account.recharges_triggered, "succeeded": account.recharges_succeeded,
                      "failed": account.recharges_failed},
        "depleted": account.depletions,
        "held": format_money(account.held_amount),
    }


def read_balance_page(app: BillingApplication, store: StoreSettings, org: str, now: datetime) -> dict[str, Any] | None:
    """The balance page of `org` at `now` (None: no such organization), from an up-to-date view."""
    view = BalanceView()
    return read_caught_up(app, store, view, lambda database: balance_page(database, view, org, load_catalog(None), now))


def balance_as_of(app: BillingApplication, org: str, as_of: datetime) -> dict[str, Any] | None:
    """The organization's account as it stood at `as_of` (business time: the `at` of its events),
    rebuilt from the event history: the account at the last version whose event happened at or
    before `as_of` (None: no such organization, or not yet opened then). An account's events are
    in time order (every writer's clock adopts the others'), so the version is found by binary
    search, reading one event per step, whatever the length of the history."""
    account_id = CreditAccount.create_id(org)
    last = app.recorder.select_events(account_id, desc=True, limit=1)
    if not last:
        return None
    low, high = 0, last[0].originator_version  # the answer is in [low, high]; 0: before the account existed
    while low < high:
        middle = (low + high + 1) // 2
        (stored,) = app.recorder.select_events(account_id, gt=middle - 1, lte=middle)
        if _business_time(app.mapper.to_domain_event(stored)) <= as_of:
            low = middle
        else:
            high = middle - 1
    if low == 0:
        return None
    document = balance_document(app.repository.get(account_id, version=low))
    open_lots = [lot for lot in document["lots"] if lot["remaining"] != "0.0000"]
    return {**document, "as_of": format_timestamp(as_of), "as_of_version": low,
            "expiring": {f"{days}_days": format_money(expiring_within(open_lots, as_of, days))
                         for days in EXPIRY_WINDOWS_DAYS}}


def _business_time(event) -> datetime:
    return decode_timestamp(getattr(event, "at", None) or event.added_at)


def render_balance(document: dict[str, Any], now: datetime) -> str:
    """A readable page; lots past their expiry that the engine has not yet expired are flagged."""
    currency = document["currency"]
    lines = [f"{terminal_safe(document['name'])} ({document['org']}): {document['commerce']}, {document['country']}, {currency}"]
    if not document["credits_active"]:
        lines.append("Communications Credits: not active"
                     + (" (NCE: pays overage)" if document["commerce"] == NCE else " (no order placed)"))
    lines.append(f"Balance: {document['balance']} {currency}" + (
        f" (held for calls in progress {document['held']}, available {document['available']})"
        if document.get("available") is not None and document["held"] != "0.0000" else ""))
    lines.append(auto_recharge_text(document["auto_recharge"], currency))
    if document["payment"]:
        lines.append(f"Payment method: {payment_text(document['payment'])}")
    open_lots = [lot for lot in document["lots"] if lot["remaining"] != "0.0000"]
    if open_lots:
        lines.append("Open lots (debited first to last):")
        for lot in sorted(open_lots, key=lambda lot: (lot["expires_at"], lot["added_at"])):
            overdue = "  (past expiry: removed at the engine's next step)" if lot["expires_at"] <= format_timestamp(now) else ""
            lines.append(f"  {lot['remaining']:>14} of {lot['amount']:>14}  {lot['source']:<13} "
                         f"added {lot['added_at']}  expires {lot['expires_at']}{overdue}")
    expiring = document.get("expiring")
    if expiring and any(value != "0.0000" for value in expiring.values()):
        lines.append("Expiring: " + ", ".join(f"{value} {currency} within {key.split('_')[0]} days"
                                             for key, value in expiring.items()))
    this_month = document.get("this_month")
    if this_month and this_month["pools"]:
        lines.append(f"Included minutes in {this_month['month']}:")
        for pool, figures in this_month["pools"].items():
            lines.append(f"  {pool:<18} {figures['used']:>8} used of {figures['capacity']:>8}")
    last = document.get("last_recharge")
    if last:
        lines.append(f"Last recharge: {last['outcome']} at {last['at']} ({last['detail']})")
    totals = document["totals"]
    lines.append("Totals: " + ", ".join(f"{name.replace('_', ' ')} {value}" for name, value in totals.items()))
    recharges = document["recharges"]
    lines.append(f"Recharges: {recharges['triggered']} triggered, {recharges['succeeded']} succeeded, "
                 f"{recharges['failed']} failed; depleted {document['depleted']} time(s)")
    return "\n".join(lines) + "\n"


def auto_recharge_text(settings: dict[str, Any], currency: str) -> str:
    if not settings["enabled"]:
        return "Auto-recharge: off"
    state = " — SUSPENDED after a failed payment" if settings["suspended"] else ""
    return (f"Auto-recharge: {settings['recharge_amount']} {currency} when the balance falls below "
            f"{settings['trigger_amount']} {currency}{state}")


def payment_text(payment: dict[str, Any]) -> str:
    if payment["method"] == "card":
        return f"card {payment['card']} (expires {payment['expires']})"
    po = f", PO {payment['po']}" if payment.get("po") else ""
    return f"Enterprise Agreement {payment['agreement']}{po}"
