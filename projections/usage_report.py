"""The usage report view: one row per rated call, with the columns of the Teams PSTN usage report
plus how the call was paid (pool, debited, uncollected, overage, the rate row used).

Every column is a function of the `CallRated` event and of its organization's `Opened` event
alone, so the rows can be rebuilt from the log at any time and equal what was built bit by bit.

Two derived columns follow rules of ours (docs/reports.md):

- **Domestic/International** compares the country of the *other party* with a *home country*.
  The other party is the destination for calls we place (outbound, dial-out, application
  outbound) and the caller for calls we receive (toll-free, inbound): the number SPEC §6 rates a
  toll-free call by. The home country is the user's usage location, or, for a call without a
  user (an auto attendant's), the organization's country. Same country → `Domestic`; another
  country, or a number with no country (SPEC §2: "domestic for no user") → `International`.
  Emergency calls are always `Domestic`: they reach the local emergency service, and their short
  numbers (`112`, `911`) have no country of their own.
- **Capability** says what paid for the call, as the parts that did, in this order, joined by
  ` + `: the pool (covered minutes > 0), `Communications Credits` (debited > 0), `Overage`
  (overage > 0), `Uncollected` (uncollected > 0). A call that none of them paid (free kinds,
  zero-second calls, zero rates) is `Free`.

The view keeps a second, small table: each credit account's organization, country and currency,
learnt from `CreditAccount.Opened`. A `CallRated` event names only its account, and the event
that says whose account it is may have been applied by an earlier process, so that mapping has
to outlive the process (and it tells an organization without calls from an unknown one).
"""

from datetime import timezone
from decimal import Decimal
from typing import Any, NamedTuple

import orjson

from domain.calls import APP_OUTBOUND, DIALOUT, EMERGENCY, INBOUND, OUTBOUND, TOLLFREE
from domain.money import ZERO, format_money, to_money
from domain.phone import country_of
from domain.timestamps import decode_timestamp
from projections.account_directory import AccountDirectory
from projections.records import EventRecord
from projections.view_database import ViewCursor

DOMESTIC, INTERNATIONAL = "Domestic", "International"
COMMUNICATIONS_CREDITS, OVERAGE, UNCOLLECTED, FREE = "Communications Credits", "Overage", "Uncollected", "Free"
# Kinds whose other party is the destination (we dial out) vs. the caller (we are called).
_PLACED_KINDS = frozenset({OUTBOUND, DIALOUT, APP_OUTBOUND})
_RECEIVED_KINDS = frozenset({TOLLFREE, INBOUND})

# Column name → SQL type, in report order (the Teams report's columns first, then ours).
CALL_COLUMNS = {
    "org": "TEXT NOT NULL", "usage_id": "TEXT NOT NULL", "call_id": "TEXT", "conference_id": "TEXT",
    "user_location": "TEXT", "upn": "TEXT", "caller_number": "TEXT NOT NULL", "call_type": "TEXT NOT NULL",
    "number_type": "TEXT", "domestic_international": "TEXT NOT NULL", "destination_dialed": "TEXT",
    "destination_number": "TEXT NOT NULL", "start_time": "TEXT NOT NULL", "end_time": "TEXT NOT NULL",
    "duration_seconds": "INTEGER NOT NULL", "connection_fee": "TEXT NOT NULL", "charge": "TEXT NOT NULL",
    "currency": "TEXT NOT NULL", "capability": "TEXT NOT NULL", "kind": "TEXT NOT NULL",
    "billed_minutes": "INTEGER NOT NULL", "pool": "TEXT", "covered_minutes": "INTEGER NOT NULL",
    "debited": "TEXT NOT NULL", "uncollected": "TEXT NOT NULL", "overage": "TEXT NOT NULL",
    "reason": "TEXT", "rate": "TEXT",
}


class Account(NamedTuple):
    org: str
    country: str
    currency: str


def sortable_time(text_or_moment: Any) -> str:
    """Fixed-width UTC text (`YYYY-MM-DDTHH:MM:SS.ffffffZ`): compared as text it orders as time.
    The events' own form drops zero microseconds, and `...:00.5Z` < `...:00Z` as text."""
    moment = decode_timestamp(text_or_moment) if isinstance(text_or_moment, str) else text_or_moment
    assert moment.tzinfo is not None, "report times are compared in UTC: give an aware datetime"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def domestic_or_international(kind: str, caller_number: str, destination_number: str,
                              home_country: str) -> str:
    if kind == EMERGENCY:
        return DOMESTIC
    assert kind in _PLACED_KINDS | _RECEIVED_KINDS, kind
    other_party = destination_number if kind in _PLACED_KINDS else caller_number
    return DOMESTIC if country_of(other_party) == home_country else INTERNATIONAL


def destination_dialed(destination_number: str) -> str | None:
    """The destination's region as `phonenumbers` resolves it (SPEC §2); None without one."""
    return country_of(destination_number)


def capability(pool: str | None, covered_minutes: int, debited: Decimal, overage: Decimal,
               uncollected: Decimal) -> str:
    parts = [name for name, paid in ((pool, covered_minutes > 0), (COMMUNICATIONS_CREDITS, debited > 0),
                                     (OVERAGE, overage > 0), (UNCOLLECTED, uncollected > 0)) if paid]
    return " + ".join(parts) or FREE


class UsageReport:
    def __init__(self, name: str = "usage") -> None:
        self.name = name
        self.calls, self.accounts = f"view_{name}_calls", f"view_{name}_accounts"
        self._directory = AccountDirectory(self.accounts, Account._fields)
        self.tables = (
            self._directory.create,
            f"CREATE TABLE IF NOT EXISTS {self.calls} ("
            + ", ".join(f"{column} {sql_type}" for column, sql_type in CALL_COLUMNS.items())
            + ", PRIMARY KEY (org, usage_id))",
            f"CREATE INDEX IF NOT EXISTS {self.calls}_by_start ON {self.calls} (org, start_time)",
        )
        self._handlers = {"CreditAccount.Opened": self._directory.opened, "CreditAccount.CallRated": self._call_rated}
        self.event_types = frozenset(self._handlers)
        self.checksummed = ((self.accounts, "account_id"), (self.calls, "org, usage_id"))

    def apply(self, cursor: ViewCursor, record: EventRecord) -> None:
        self._handlers[record.type](cursor, record)

    def _call_rated(self, cursor: ViewCursor, record: EventRecord) -> None:
        row = call_row(self._account(cursor, record), record)
        cursor.execute(f"INSERT INTO {self.calls} ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})",
                       tuple(row.values()))

    def _account(self, cursor: ViewCursor, record: EventRecord) -> Account:
        return Account(*self._directory.of(cursor, record))

def call_row(account: Account, record: EventRecord) -> dict[str, Any]:
    """The view's row for one `CallRated` event: amounts as 4-decimal strings, times sortable."""
    data = record.data
    debited, uncollected, overage = (to_money(data[name]) for name in ("debited", "uncollected", "overage"))
    rate = data["rate"]
    return {
        "org": account.org, "usage_id": data["usage_id"], "call_id": data["call_id"],
        "conference_id": data["conference_id"], "user_location": data["user_location"], "upn": data["user"],
        "caller_number": data["caller_number"], "call_type": data["call_type"], "number_type": data["number_type"],
        "domestic_international": domestic_or_international(
            data["kind"], data["caller_number"], data["destination_number"],
            data["user_location"] or account.country),
        "destination_dialed": destination_dialed(data["destination_number"]),
        "destination_number": data["destination_number"],
        "start_time": sortable_time(data["start_time"]), "end_time": sortable_time(data["end_time"]),
        "duration_seconds": data["duration_seconds"],
        "connection_fee": format_money(to_money(rate["connection_fee"]) if rate else ZERO),
        "charge": format_money(to_money(data["charge"])), "currency": account.currency,
        "capability": capability(data["pool"], data["covered_minutes"], debited, overage, uncollected),
        "kind": data["kind"], "billed_minutes": data["billed_minutes"], "pool": data["pool"],
        "covered_minutes": data["covered_minutes"], "debited": format_money(debited),
        "uncollected": format_money(uncollected), "overage": format_money(overage), "reason": data["reason"],
        "rate": None if rate is None else orjson.dumps(rate, option=orjson.OPT_SORT_KEYS).decode(),
    }
