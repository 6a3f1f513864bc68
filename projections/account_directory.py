"""Which organization (and which of its `Opened` fields) an account id stands for, kept by a
projection in a table of its own.

Only `CreditAccount.Opened` names the organization; the account's later events carry its id
alone. Each projection keeps the fields it needs in its own table (so it can be rebuilt alone),
and reads them back through a cache: an account's `Opened` fields never change.
"""

from typing import Any

from projections.records import EventRecord
from projections.view_database import ViewCursor


class AccountDirectory:
    def __init__(self, table: str, fields: tuple[str, ...]) -> None:
        """`fields`: the `Opened` fields to keep, `org` first."""
        assert fields[0] == "org", "the organization comes first"
        self.table, self.fields = table, fields
        columns = ", ".join(f"{field} TEXT NOT NULL" for field in fields[1:])
        self.create = (f"CREATE TABLE IF NOT EXISTS {table} (account_id TEXT PRIMARY KEY, org TEXT UNIQUE NOT NULL"
                       + (f", {columns}" if columns else "") + ")")
        self._cache: dict[str, tuple[Any, ...]] = {}

    def opened(self, cursor: ViewCursor, record: EventRecord) -> None:
        values = tuple(record.data[field] for field in self.fields)
        cursor.execute(f"INSERT INTO {self.table} (account_id, {', '.join(self.fields)}) "
                       f"VALUES (?, {', '.join('?' * len(values))})", (record.aggregate_id, *values))
        self._cache[record.aggregate_id] = values

    def of(self, cursor: ViewCursor, record: EventRecord) -> tuple[Any, ...]:
        """The kept fields of the record's account, in `fields` order."""
        values = self._cache.get(record.aggregate_id)
        if values is None:
            row = cursor.execute(f"SELECT {', '.join(self.fields)} FROM {self.table} WHERE account_id = ?",
                                 (record.aggregate_id,)).fetchone()
            assert row is not None, f"{record.type} at {record.position} for an account never opened"
            values = self._cache[record.aggregate_id] = tuple(row)
        return values

    def org(self, cursor: ViewCursor, record: EventRecord) -> str:
        return self.of(cursor, record)[0]
