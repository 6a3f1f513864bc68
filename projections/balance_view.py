"""The balance view: each organization's balance, lots, auto-recharge state, pool usage and
users, folded from the events into tables of its own.

Amounts are kept as exact decimal strings. Everything a reader asks (funds expiring within N
days, a pool's capacity this month) is computed from these rows at query time
(`projections.balance_queries`), so the rows depend on the events alone.
"""

from decimal import Decimal

import orjson

from domain.money import ZERO, format_money, to_money
from projections.records import EventRecord
from projections.view_database import ViewCursor

TOTALS = ("funds_added", "charged", "expired", "uncollected", "overage")
NO_AUTO_RECHARGE = {"enabled": False, "recharge_amount": None, "trigger_amount": None}


class BalanceView:
    def __init__(self, name: str = "balance") -> None:
        self.name = name
        self.accounts, self.lots, self.pools, self.users, self.reservations = (
            f"view_{name}_{table}" for table in ("accounts", "lots", "pools", "users", "reservations"))
        self.tables = (
            f"CREATE TABLE IF NOT EXISTS {self.accounts} (org TEXT PRIMARY KEY, account_id TEXT UNIQUE NOT NULL, "
            "registry_id TEXT UNIQUE, name TEXT NOT NULL, country TEXT NOT NULL, currency TEXT NOT NULL, "
            "commerce TEXT NOT NULL, credits_active INTEGER NOT NULL, balance TEXT NOT NULL, "
            + ", ".join(f"{total} TEXT NOT NULL" for total in TOTALS) + ", "
            "auto_recharge TEXT NOT NULL, payment TEXT, suspended INTEGER NOT NULL, last_recharge_at TEXT, last_recharge_outcome TEXT, "
            "last_recharge_detail TEXT, recharges_triggered INTEGER NOT NULL, recharges_succeeded INTEGER NOT NULL, "
            "recharges_failed INTEGER NOT NULL, depletions INTEGER NOT NULL, last_position BIGINT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {self.lots} (org TEXT NOT NULL, lot_number INTEGER NOT NULL, "
            "source TEXT NOT NULL, added_at TEXT NOT NULL, expires_at TEXT NOT NULL, amount TEXT NOT NULL, "
            "remaining TEXT NOT NULL, expired TEXT NOT NULL, PRIMARY KEY (org, lot_number))",
            f"CREATE TABLE IF NOT EXISTS {self.pools} (org TEXT NOT NULL, month TEXT NOT NULL, pool TEXT NOT NULL, "
            "minutes INTEGER NOT NULL, PRIMARY KEY (org, month, pool))",
            f"CREATE TABLE IF NOT EXISTS {self.users} (org TEXT NOT NULL, username TEXT NOT NULL, "
            "usage_location TEXT NOT NULL, licences TEXT NOT NULL, PRIMARY KEY (org, username))",
            f"CREATE TABLE IF NOT EXISTS {self.reservations} (org TEXT NOT NULL, call_id TEXT NOT NULL, pool TEXT, "
            "pool_month TEXT NOT NULL, held_minutes INTEGER NOT NULL, held_amount TEXT NOT NULL, "
            "expires_at TEXT NOT NULL, PRIMARY KEY (org, call_id))",
        )
        self._handlers = {
            "CreditAccount.Opened": self._opened, "CreditAccount.CreditsActivated": self._activated,
            "CreditAccount.FundsAdded": self._funds_added, "CreditAccount.AutoRechargeConfigured": self._configured,
            "CreditAccount.PaymentMethodUpdated": self._payment_updated, "CreditAccount.CallRated": self._call_rated,
            "CreditAccount.FundsExpired": self._expired, "CreditAccount.RechargeTriggered": self._recharge_triggered,
            "CreditAccount.RechargeSucceeded": self._recharge_succeeded,
            "CreditAccount.RechargeFailed": self._recharge_failed, "CreditAccount.BalanceDepleted": self._depleted,
            "CreditAccount.CallAuthorized": self._authorized, "CreditAccount.ReservationEnded": self._reservation_ended,
            "LicenceRegistry.Opened": self._registry_opened, "LicenceRegistry.UserAdded": self._user_added,
            "LicenceRegistry.LicencesAssigned": self._licences_assigned,
            "LicenceRegistry.LicencesRemoved": self._licences_removed,
        }
        self.event_types = frozenset(self._handlers)
        self.checksummed = ((self.accounts, "org"), (self.lots, "org, lot_number"),
                            (self.pools, "org, month, pool"), (self.users, "org, username"),
                            (self.reservations, "org, call_id"))
        self._org_of: dict[str, str] = {}  # account and registry ids: immutable, so safe to cache

    def apply(self, cursor: ViewCursor, record: EventRecord) -> None:
        self._handlers[record.type](cursor, record)

    # ----- credit account ----------------------------------------------------------------------

    def _opened(self, cursor: ViewCursor, record: EventRecord) -> None:
        data = record.data
        cursor.execute(
            f"INSERT INTO {self.accounts} (org, account_id, name, country, currency, commerce, credits_active, "
            f"balance, {', '.join(TOTALS)}, auto_recharge, suspended, recharges_triggered, "
            "recharges_succeeded, recharges_failed, depletions, last_position) "
            f"VALUES (?, ?, ?, ?, ?, ?, 0, ?, {', '.join('?' * len(TOTALS))}, ?, 0, 0, 0, 0, 0, ?)",
            (data["org"], record.aggregate_id, data["name"], data["country"], data["currency"], data["commerce"],
             format_money(ZERO), *(format_money(ZERO) for _ in TOTALS), orjson.dumps(NO_AUTO_RECHARGE).decode(),
             record.position))
        self._org_of[record.aggregate_id] = data["org"]

    def _activated(self, cursor: ViewCursor, record: EventRecord) -> None:
        self._set_auto_recharge(cursor, record, credits_active=True)
        self._set_payment(cursor, record)

    def _configured(self, cursor: ViewCursor, record: EventRecord) -> None:
        self._set_auto_recharge(cursor, record)

    def _set_auto_recharge(self, cursor: ViewCursor, record: EventRecord, *, credits_active: bool = False) -> None:
        cursor.execute(
            f"UPDATE {self.accounts} SET auto_recharge = ?, suspended = 0, credits_active = credits_active | ?, "
            "last_position = ? WHERE org = ?",
            (orjson.dumps(record.data["auto_recharge"], option=orjson.OPT_SORT_KEYS).decode(),
             1 if credits_active else 0, record.position, self._org(cursor, record)))

    def _payment_updated(self, cursor: ViewCursor, record: EventRecord) -> None:
        cursor.execute(f"UPDATE {self.accounts} SET suspended = 0, last_position = ? WHERE org = ?",
                       (record.position, self._org(cursor, record)))
        self._set_payment(cursor, record)

    def _set_payment(self, cursor: ViewCursor, record: EventRecord) -> None:
        payment = record.data.get("payment")
        cursor.execute(f"UPDATE {self.accounts} SET payment = ? WHERE org = ?",
                       (None if payment is None else orjson.dumps(payment, option=orjson.OPT_SORT_KEYS).decode(),
                        self._org(cursor, record)))

    def _funds_added(self, cursor: ViewCursor, record: EventRecord) -> None:
        data, org = record.data, self._org(cursor, record)
        amount = to_money(data["amount"])
        cursor.execute(f"INSERT INTO {self.lots} (org, lot_number, source, added_at, expires_at, amount, remaining, "
                       "expired) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (org, data["lot_number"], data["source"], data["added_at"], data["expires_at"],
                        format_money(amount), format_money(amount), format_money(ZERO)))
        self._add_to_totals(cursor, org, record, funds_added=amount)
        if data["source"] == "manual":  # funds added by hand lift a suspension (SPEC §8)
            cursor.execute(f"UPDATE {self.accounts} SET suspended = 0 WHERE org = ?", (org,))

    def _call_rated(self, cursor: ViewCursor, record: EventRecord) -> None:
        data, org = record.data, self._org(cursor, record)
        if data["covered_minutes"]:
            cursor.execute(
                f"INSERT INTO {self.pools} (org, month, pool, minutes) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (org, month, pool) DO UPDATE SET minutes = "
                f"{self.pools}.minutes + excluded.minutes",
                (org, data["pool_month"], data["pool"], data["covered_minutes"]))
        for debit in data["debits"]:
            self._take_from_lot(cursor, org, debit["lot"], to_money(debit["amount"]), expiring=False)
        self._add_to_totals(cursor, org, record, charged=to_money(data["debited"]),
                            uncollected=to_money(data["uncollected"]), overage=to_money(data["overage"]))

    def _expired(self, cursor: ViewCursor, record: EventRecord) -> None:
        org, amount = self._org(cursor, record), to_money(record.data["amount"])
        self._take_from_lot(cursor, org, record.data["lot_number"], amount, expiring=True)
        self._add_to_totals(cursor, org, record, expired=amount)

    def _recharge_triggered(self, cursor: ViewCursor, record: EventRecord) -> None:
        self._count(cursor, record, "recharges_triggered")

    def _recharge_succeeded(self, cursor: ViewCursor, record: EventRecord) -> None:
        self._count(cursor, record, "recharges_succeeded")
        cursor.execute(f"UPDATE {self.accounts} SET last_recharge_at = ?, last_recharge_outcome = 'succeeded', "
                       "last_recharge_detail = ? WHERE org = ?",
                       (record.data["at"], f"{record.data['amount']} charged, reference "
                                           f"{record.data['payment_reference']}", self._org(cursor, record)))

    def _recharge_failed(self, cursor: ViewCursor, record: EventRecord) -> None:
        self._count(cursor, record, "recharges_failed")
        cursor.execute(f"UPDATE {self.accounts} SET suspended = 1, last_recharge_at = ?, "
                       "last_recharge_outcome = 'failed', last_recharge_detail = ? WHERE org = ?",
                       (record.data["at"], record.data.get("decline_reason") or "declined", self._org(cursor, record)))

    def _depleted(self, cursor: ViewCursor, record: EventRecord) -> None:
        self._count(cursor, record, "depletions")

    def _authorized(self, cursor: ViewCursor, record: EventRecord) -> None:
        data = record.data
        if data["expires_at"] is None:
            return  # denied: nothing held
        cursor.execute(f"INSERT INTO {self.reservations} (org, call_id, pool, pool_month, held_minutes, held_amount, "
                       "expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (self._org(cursor, record), data["call_id"], data["pool"], data["pool_month"],
                        data["held_minutes"], data["held_amount"], data["expires_at"]))

    def _reservation_ended(self, cursor: ViewCursor, record: EventRecord) -> None:
        cursor.execute(f"DELETE FROM {self.reservations} WHERE org = ? AND call_id = ?",
                       (self._org(cursor, record), record.data["call_id"]))

    # ----- licence registry --------------------------------------------------------------------

    def _registry_opened(self, cursor: ViewCursor, record: EventRecord) -> None:
        org = record.data["org"]
        cursor.execute(f"UPDATE {self.accounts} SET registry_id = ? WHERE org = ?", (record.aggregate_id, org))
        self._org_of[record.aggregate_id] = org

    def _user_added(self, cursor: ViewCursor, record: EventRecord) -> None:
        cursor.execute(f"INSERT INTO {self.users} (org, username, usage_location, licences) VALUES (?, ?, ?, '')",
                       (self._org(cursor, record), record.data["user"], record.data["usage_location"]))

    def _licences_assigned(self, cursor: ViewCursor, record: EventRecord) -> None:
        self._change_licences(cursor, record, lambda held, licences: held | licences)

    def _licences_removed(self, cursor: ViewCursor, record: EventRecord) -> None:
        self._change_licences(cursor, record, lambda held, licences: held - licences)

    def _change_licences(self, cursor: ViewCursor, record: EventRecord, change) -> None:
        org, licences = self._org(cursor, record), set(record.data["licences"])
        for user in record.data["users"]:
            row = cursor.execute(f"SELECT licences FROM {self.users} WHERE org = ? AND username = ?",
                                 (org, user)).fetchone()
            held = change(set(filter(None, row[0].split(","))), licences)
            cursor.execute(f"UPDATE {self.users} SET licences = ? WHERE org = ? AND username = ?",
                           (",".join(sorted(held)), org, user))

    # ----- helpers -----------------------------------------------------------------------------

    def _org(self, cursor: ViewCursor, record: EventRecord) -> str:
        org = self._org_of.get(record.aggregate_id)
        if org is None:
            row = cursor.execute(f"SELECT org FROM {self.accounts} WHERE account_id = ? OR registry_id = ?",
                                 (record.aggregate_id, record.aggregate_id)).fetchone()
            assert row is not None, f"{record.type} at {record.position} for an organization never opened"
            org = self._org_of[record.aggregate_id] = row[0]
        return org

    def _take_from_lot(self, cursor: ViewCursor, org: str, lot_number: int, amount: Decimal, *, expiring: bool) -> None:
        remaining, expired = cursor.execute(f"SELECT remaining, expired FROM {self.lots} WHERE org = ? AND lot_number = ?",
                                            (org, lot_number)).fetchone()
        cursor.execute(f"UPDATE {self.lots} SET remaining = ?, expired = ? WHERE org = ? AND lot_number = ?",
                       (format_money(to_money(remaining) - amount),
                        format_money(to_money(expired) + (amount if expiring else ZERO)), org, lot_number))

    def _add_to_totals(self, cursor: ViewCursor, org: str, record: EventRecord, **amounts: Decimal) -> None:
        row = cursor.execute(f"SELECT {', '.join(TOTALS)} FROM {self.accounts} WHERE org = ?", (org,)).fetchone()
        totals = {name: to_money(value) + amounts.get(name, ZERO) for name, value in zip(TOTALS, row)}
        balance = totals["funds_added"] - totals["charged"] - totals["expired"]
        cursor.execute(f"UPDATE {self.accounts} SET balance = ?, {', '.join(f'{name} = ?' for name in TOTALS)}, "
                       "last_position = ? WHERE org = ?",
                       (format_money(balance), *(format_money(totals[name]) for name in TOTALS), record.position, org))

    def _count(self, cursor: ViewCursor, record: EventRecord, column: str) -> None:
        cursor.execute(f"UPDATE {self.accounts} SET {column} = {column} + 1, last_position = ? WHERE org = ?",
                       (record.position, self._org(cursor, record)))
