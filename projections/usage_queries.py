"""Reading the usage report view: an organization's calls that started in [start, end).

Rows come back typed (exact `Decimal` amounts, aware UTC datetimes, whole minutes and seconds),
so every writer formats the same values and sums them exactly.
"""

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

from domain.money import to_money
from domain.timestamps import decode_timestamp
from projections.usage_report import UsageReport, sortable_time
from projections.view_database import ViewDatabase


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One call, in report column order: the Teams PSTN usage report's columns, then ours."""
    usage_id: str
    call_id: str | None
    conference_id: str | None
    user_location: str | None
    upn: str | None
    caller_number: str
    call_type: str
    number_type: str | None
    domestic_international: str
    destination_dialed: str | None
    destination_number: str
    start_time: datetime
    end_time: datetime
    duration_seconds: int
    connection_fee: Decimal
    charge: Decimal
    currency: str
    capability: str
    kind: str
    billed_minutes: int
    pool: str | None
    covered_minutes: int
    debited: Decimal
    uncollected: Decimal
    overage: Decimal
    reason: str | None
    rate: dict[str, str] | None


ROW_FIELDS = tuple(field.name for field in fields(UsageRow))
AMOUNT_FIELDS = frozenset({"connection_fee", "charge", "debited", "uncollected", "overage"})
TIME_FIELDS = frozenset({"start_time", "end_time"})


def organization_known(database: ViewDatabase, view: UsageReport, org: str) -> bool:
    return bool(database.query(f"SELECT 1 FROM {view.accounts} WHERE org = ?", (org,)))


def usage_rows(database: ViewDatabase, view: UsageReport, org: str, start: datetime,
               end: datetime) -> list[UsageRow] | None:
    """The calls of `org` whose start time is in [start, end), by start time then usage id;
    None when the organization does not exist. `start` and `end` must carry an offset: they are
    compared in UTC. The usage-id tie-break is done here, in code-point order, because
    PostgreSQL's ORDER BY on text follows the database's collation and SQLite's does not."""
    if not organization_known(database, view, org):
        return None
    rows = database.query(f"SELECT {', '.join(ROW_FIELDS)} FROM {view.calls} "
                          "WHERE org = ? AND start_time >= ? AND start_time < ?",
                          (org, sortable_time(start), sortable_time(end)))
    typed = [_typed(dict(zip(ROW_FIELDS, row))) for row in rows]
    return sorted(typed, key=lambda row: (row.start_time, row.usage_id))


def _typed(row: dict[str, Any]) -> UsageRow:
    for name in AMOUNT_FIELDS:
        row[name] = to_money(row[name])
    for name in TIME_FIELDS:
        row[name] = decode_timestamp(row[name])
    row["rate"] = None if row["rate"] is None else orjson.loads(row["rate"])
    return UsageRow(**row)
