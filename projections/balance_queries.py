"""Reading the balance view: an organization as SPEC §11 reports it, and the balance page of
`commcredits balance` (funds expiring soon, this month's pools with their capacity, the last
recharge attempt), computed from the view's rows at the time asked."""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson

from domain.catalog import Catalog
from domain.licences import pool_kinds_contributed
from domain.money import ZERO, format_money, to_money
from domain.pools import PoolKey, pool_capacity
from domain.timestamps import decode_timestamp
from projections.balance_view import TOTALS, BalanceView
from projections.view_database import ViewDatabase

EXPIRY_WINDOWS_DAYS = (30, 60, 90)
_ACCOUNT_COLUMNS = ("org", "currency", "credits_active", "balance", *TOTALS, "auto_recharge", "suspended",
                    "recharges_triggered", "recharges_succeeded", "recharges_failed", "depletions",
                    "last_recharge_at", "last_recharge_outcome", "last_recharge_detail", "name", "commerce",
                    "country", "payment", "last_position")


def organizations(database: ViewDatabase, view: BalanceView) -> list[str]:
    return [row[0] for row in database.query(f"SELECT org FROM {view.accounts} ORDER BY org")]


def organization_report(database: ViewDatabase, view: BalanceView, org: str) -> dict[str, Any] | None:
    """The organization as `simulate` reports it (SPEC §11's `organizations` entry)."""
    account = _account(database, view, org)
    if account is None:
        return None
    lots = database.query(f"SELECT source, added_at, expires_at, amount, remaining, expired FROM {view.lots} "
                          "WHERE org = ? ORDER BY lot_number", (org,))
    pools: dict[str, dict[str, int]] = {}
    for month, pool, minutes in database.query(f"SELECT month, pool, minutes FROM {view.pools} WHERE org = ? "
                                               "ORDER BY month, pool", (org,)):
        pools.setdefault(month, {})[pool] = minutes
    return {
        "currency": account["currency"],
        "balance": account["balance"],
        "credits_active": bool(account["credits_active"]),
        "auto_recharge": {**orjson.loads(account["auto_recharge"]), "suspended": bool(account["suspended"])},
        "lots": [dict(zip(("source", "added_at", "expires_at", "amount", "remaining", "expired"), lot)) for lot in lots],
        "pools": pools,
        "totals": {name: account[name] for name in TOTALS},
        "recharges": {"triggered": account["recharges_triggered"], "succeeded": account["recharges_succeeded"],
                      "failed": account["recharges_failed"]},
        "depleted": account["depletions"],
        "held": format_money(held_total(database, view, org)),
    }


def held_total(database: ViewDatabase, view: BalanceView, org: str) -> Decimal:
    """The held amounts of the organization's open reservations (SPEC §13.3's `held`)."""
    rows = database.query(f"SELECT held_amount FROM {view.reservations} WHERE org = ?", (org,))
    return sum((to_money(amount) for (amount,) in rows), ZERO)


def balance_page(database: ViewDatabase, view: BalanceView, org: str, catalog: Catalog,
                 now: datetime) -> dict[str, Any] | None:
    """What an administrator asks about an organization's credit at `now`: the SPEC §11 entry,
    who the organization is and how it pays, funds expiring soon, this month's pools with their
    capacity, and the last recharge attempt."""
    report = organization_report(database, view, org)
    if report is None:
        return None
    account = _account(database, view, org)
    open_lots = [lot for lot in report["lots"] if to_money(lot["remaining"]) > 0]
    month = now.strftime("%Y-%m")
    used = report["pools"].get(month, {})
    capacity = pool_capacities(database, view, org, catalog)
    return {
        "org": org, "name": account["name"], "country": account["country"], "commerce": account["commerce"],
        "payment": orjson.loads(account["payment"]) if account["payment"] else None,
        **report,
        "available": format_money(max(ZERO, to_money(report["balance"]) - to_money(report["held"]))),
        "expiring": {f"{days}_days": format_money(expiring_within(open_lots, now, days)) for days in EXPIRY_WINDOWS_DAYS},
        "this_month": {"month": month, "pools": {pool: {"used": used.get(pool, 0), "capacity": capacity.get(pool, 0)}
                                                 for pool in sorted(set(used) | set(capacity))}},
        "last_recharge": None if account["last_recharge_at"] is None else {
            "at": account["last_recharge_at"], "outcome": account["last_recharge_outcome"],
            "detail": account["last_recharge_detail"]},
        "as_of_position": account["last_position"],
    }


def expiring_within(lots: list[dict[str, Any]], now: datetime, days: int) -> Decimal:
    """What is left of the lots that expire after `now` and at most `days` days from it."""
    horizon = now + timedelta(days=days)
    return sum((to_money(lot["remaining"]) for lot in lots if now < decode_timestamp(lot["expires_at"]) <= horizon),
               ZERO)


def pool_capacities(database: ViewDatabase, view: BalanceView, org: str, catalog: Catalog) -> dict[str, int]:
    """Minutes each pool holds per month: the catalogue's minutes per contributing user (SPEC §5)."""
    contributors: dict[PoolKey, int] = {}
    for location, licences in database.query(f"SELECT usage_location, licences FROM {view.users} WHERE org = ?",
                                             (org,)):
        for kind in pool_kinds_contributed(filter(None, licences.split(","))):
            pool = PoolKey(kind, location)
            contributors[pool] = contributors.get(pool, 0) + 1
    return {str(pool): pool_capacity(catalog, pool, count) for pool, count in sorted(contributors.items())}


def _account(database: ViewDatabase, view: BalanceView, org: str) -> dict[str, Any] | None:
    rows = database.query(f"SELECT {', '.join(_ACCOUNT_COLUMNS)} FROM {view.accounts} WHERE org = ?", (org,))
    return dict(zip(_ACCOUNT_COLUMNS, rows[0])) if rows else None
