"""Reading the statements view: one organization's statement for one calendar month (UTC).

The balance is never stored: the opening balance is the sum of every earlier month's funds added
less charged less expired, the closing balance adds the month's own. So a month without activity
has a statement too (opening = closing), and SPEC §11's `balance = funds_added − charged −
expired` holds at the end of every month. Uncollected amounts and overage never touch the
balance: they are shown beside it (overage is what an NCE organization is invoiced after use).
"""

import re
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from domain.calls import CALL_KINDS, FREE_KINDS
from domain.commerce import NCE
from domain.errors import InvalidInput
from domain.lots import LOT_SOURCES
from domain.money import ZERO, format_money, to_money
from domain.timestamps import EARLIEST_YEAR, LATEST_YEAR, first_instant_after_month, format_timestamp
from projections.statements import (
    CHARGED,
    EXPIRED,
    FIGURES,
    FUNDS_ADDED,
    OVERAGE,
    UNCOLLECTED,
    Organization,
    Statements,
)
from projections.view_database import ViewDatabase

BILLABLE_KINDS = tuple(kind for kind in CALL_KINDS if kind not in FREE_KINDS)
_MONTH_TEXT = re.compile(r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})")
# The figures split by a detail, and the details always shown (zero when nothing happened).
_SPLIT = {FUNDS_ADDED: LOT_SOURCES, CHARGED: BILLABLE_KINDS, UNCOLLECTED: BILLABLE_KINDS, OVERAGE: BILLABLE_KINDS}


def parse_month(text: str, *, field: str = "month") -> str:
    """A calendar month `YYYY-MM` in SPEC §2's years; anything else is `invalid_input`."""
    match = _MONTH_TEXT.fullmatch(text)
    if not match:
        raise InvalidInput(f"{field} must be a calendar month YYYY-MM (e.g. 2026-01), got {text!r}")
    if not 1 <= int(match["month"]) <= 12:
        raise InvalidInput(f"{field} {text!r} has no month {match['month']}: months are 01 to 12")
    if not EARLIEST_YEAR <= int(match["year"]) <= LATEST_YEAR:
        raise InvalidInput(f"{field} {text!r} must fall in the years {EARLIEST_YEAR}-{LATEST_YEAR}")
    return text


def month_period(month: str) -> tuple[datetime, datetime]:
    """[first instant, first instant of the next month), in UTC."""
    year, number = int(month[:4]), int(month[5:])
    return datetime(year, number, 1, tzinfo=timezone.utc), first_instant_after_month(year, number)


def organization(database: ViewDatabase, view: Statements, org: str) -> Organization | None:
    rows = database.query(f"SELECT org, name, currency, commerce FROM {view.organizations} WHERE org = ?", (org,))
    return Organization(*rows[0]) if rows else None


def active_months(database: ViewDatabase, view: Statements, org: str) -> list[str]:
    """The months in which any money moved for `org`, in order."""
    rows = database.query(f"SELECT DISTINCT month FROM {view.amounts} WHERE org = ?", (org,))
    return sorted(row[0] for row in rows)


def statement(database: ViewDatabase, view: Statements, org: str, month: str) -> dict[str, Any] | None:
    """The statement of `org` for `month` (`YYYY-MM`, checked by `parse_month`); None when the
    organization does not exist. Amounts are 4-decimal strings."""
    account = organization(database, view, org)
    if account is None:
        return None
    rows = database.query(f"SELECT month, figure, detail, amount FROM {view.amounts} WHERE org = ? AND month <= ?",
                          (org, month))
    earlier = _sum_by_figure(row for row in rows if row[0] < month)  # YYYY-MM text orders as time
    this_month = [row[1:] for row in rows if row[0] == month]
    opening = _balance(earlier)
    totals = _sum_by_figure(this_month)
    closing = opening + _balance(totals)
    assert closing >= 0, f"{org}: the balance at the end of {month} is negative ({closing})"
    start, end = month_period(month)
    return {
        "org": account.org, "name": account.name, "currency": account.currency, "commerce": account.commerce,
        "month": month, "period": {"from": format_timestamp(start), "to": format_timestamp(end)},
        "opening_balance": format_money(opening),
        **{figure: _split(this_month, figure) for figure in (FUNDS_ADDED, CHARGED, UNCOLLECTED, OVERAGE)},
        "totals": {figure: format_money(totals[figure]) for figure in FIGURES},
        "closing_balance": format_money(closing),
        "overage_to_invoice": format_money(totals[OVERAGE]) if account.commerce == NCE else None,
    }


def _sum_by_figure(rows) -> dict[str, Decimal]:
    """Figure → total, from rows ending in (figure, detail, amount)."""
    totals = dict.fromkeys(FIGURES, ZERO)
    for *_, figure, _detail, amount in rows:
        totals[figure] += to_money(amount)
    return totals


def _balance(totals: dict[str, Decimal]) -> Decimal:
    return totals[FUNDS_ADDED] - totals[CHARGED] - totals[EXPIRED]


def _split(rows: list[tuple], figure: str) -> dict[str, str]:
    """The figure by detail: every usual detail (zero when none), plus any other that occurred."""
    amounts = {detail: ZERO for detail in _SPLIT[figure]}
    for row_figure, detail, amount in rows:
        if row_figure == figure:
            amounts[detail] = amounts.get(detail, ZERO) + to_money(amount)
    return {detail: format_money(amount) for detail, amount in amounts.items()}
