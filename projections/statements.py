"""The statements view: per organization and calendar month (UTC), the money that moved, as the
monthly statement shows it (`projections.statement_queries`, docs/statements.md).

A row is one figure of one month, split by what it is made of:

| figure        | detail                                             | from                          |
|---------------|----------------------------------------------------|-------------------------------|
| `funds_added` | the lot's source (`order`, `manual`, `auto_recharge`) | `FundsAdded.amount`        |
| `charged`     | the call's kind                                    | `CallRated.debited`           |
| `uncollected` | the call's kind                                    | `CallRated.uncollected`       |
| `overage`     | the call's kind                                    | `CallRated.overage`           |
| `expired`     | `""`                                               | `FundsExpired.amount`         |

The month is that of the event's business time in UTC: `added_at` for `FundsAdded`, `at` for
the others (for a call, the time it was rated, i.e. when its money moved; its pool month is that
of its start and may be the month before). Zero amounts write no row.

Balances are not stored: they are sums of these rows up to a month, so a row depends on its
events alone and the view rebuilt from the log equals the one built bit by bit.

A second table maps each credit account to its organization (and its name, currency and
commerce), learnt from `CreditAccount.Opened`: later events name only the account, and the event
that says whose it is may have been applied by an earlier process, so the mapping must outlive it.
"""

from decimal import Decimal
from typing import NamedTuple

from domain.money import format_money, to_money
from domain.timestamps import decode_timestamp, month_key
from projections.account_directory import AccountDirectory
from projections.records import EventRecord
from projections.view_database import ViewCursor

FUNDS_ADDED, CHARGED, EXPIRED, UNCOLLECTED, OVERAGE = "funds_added", "charged", "expired", "uncollected", "overage"
FIGURES = (FUNDS_ADDED, CHARGED, EXPIRED, UNCOLLECTED, OVERAGE)
NO_DETAIL = ""  # expired funds are not split


class Organization(NamedTuple):
    org: str
    name: str
    currency: str
    commerce: str


class Statements:
    def __init__(self, name: str = "statements") -> None:
        self.name = name
        self.organizations, self.amounts = f"view_{name}_organizations", f"view_{name}_amounts"
        self._directory = AccountDirectory(self.organizations, Organization._fields)
        self.tables = (
            self._directory.create,
            f"CREATE TABLE IF NOT EXISTS {self.amounts} (org TEXT NOT NULL, month TEXT NOT NULL, figure TEXT NOT NULL, "
            "detail TEXT NOT NULL, amount TEXT NOT NULL, PRIMARY KEY (org, month, figure, detail))",
        )
        self._handlers = {
            "CreditAccount.Opened": self._directory.opened, "CreditAccount.FundsAdded": self._funds_added,
            "CreditAccount.CallRated": self._call_rated, "CreditAccount.FundsExpired": self._expired,
        }
        self.event_types = frozenset(self._handlers)
        self.checksummed = ((self.organizations, "account_id"), (self.amounts, "org, month, figure, detail"))

    def apply(self, cursor: ViewCursor, record: EventRecord) -> None:
        self._handlers[record.type](cursor, record)

    def _funds_added(self, cursor: ViewCursor, record: EventRecord) -> None:
        data = record.data
        self._add(cursor, record, month_of(data["added_at"]), FUNDS_ADDED, data["source"], to_money(data["amount"]))

    def _call_rated(self, cursor: ViewCursor, record: EventRecord) -> None:
        data = record.data
        month = month_of(data["at"])
        for figure, field in ((CHARGED, "debited"), (UNCOLLECTED, "uncollected"), (OVERAGE, "overage")):
            self._add(cursor, record, month, figure, data["kind"], to_money(data[field]))

    def _expired(self, cursor: ViewCursor, record: EventRecord) -> None:
        data = record.data
        self._add(cursor, record, month_of(data["at"]), EXPIRED, NO_DETAIL, to_money(data["amount"]))

    def _add(self, cursor: ViewCursor, record: EventRecord, month: str, figure: str, detail: str,
             amount: Decimal) -> None:
        """Add to the month's figure. Amounts are exact decimal text, so the sum is made here, not
        in SQL (SQLite would add them as floats)."""
        if amount == 0:
            return
        org = self._directory.org(cursor, record)
        row = cursor.execute(f"SELECT amount FROM {self.amounts} WHERE org = ? AND month = ? AND figure = ? "
                             "AND detail = ?", (org, month, figure, detail)).fetchone()
        total = amount + (to_money(row[0]) if row else 0)
        cursor.execute(f"INSERT INTO {self.amounts} (org, month, figure, detail, amount) VALUES (?, ?, ?, ?, ?) "
                       "ON CONFLICT (org, month, figure, detail) DO UPDATE SET amount = excluded.amount",
                       (org, month, figure, detail, format_money(total)))


def month_of(event_time: str) -> str:
    """`YYYY-MM` of a time an event carries, in UTC (SPEC §2: months are calendar months in UTC)."""
    return month_key(decode_timestamp(event_time))
