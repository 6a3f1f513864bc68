"""Applying events to a projection exactly once.

A projection is a pure function of the event sequence with tables of its own: `tables` (its
`CREATE TABLE IF NOT EXISTS` statements), `event_types` (the record types it reads) and
`apply(cursor, record)`. The projector applies a batch of records and moves the projection's
position in one transaction, skipping records at or below the position: a batch read twice
(a crash before the commit, a topic replayed) changes nothing the second time.

A stream is where the records come from: the store's log is one stream, ordered by position;
each partition of `billing-events.v1` is another (a partition keeps its organizations' events
in store order, so its positions increase too).
"""

import sqlite3
from collections.abc import Sequence
from typing import Protocol

import psycopg

from projections.records import EventRecord
from projections.view_database import POSITIONS_TABLE, ViewCursor, ViewDatabase


class Projection(Protocol):
    name: str
    tables: Sequence[str]
    event_types: frozenset[str]

    def apply(self, cursor: ViewCursor, record: EventRecord) -> None: ...


class ConcurrentProjector(RuntimeError):
    """Another projector moved this projection's position since we read it."""


class Projector:
    def __init__(self, projection: Projection, database: ViewDatabase) -> None:
        self.projection, self.database = projection, database
        database.create_tables(projection.tables)

    def tracking_key(self, stream: str = "") -> str:
        return f"{self.projection.name}@{stream}" if stream else self.projection.name

    def position(self, stream: str = "") -> int:
        return self.database.position(self.tracking_key(stream))

    def apply(self, records: Sequence[EventRecord], *, up_to: int | None = None, stream: str = "",
              also_track: dict[str, int] | None = None) -> int:
        """Apply the records above the stream's position, in their order, and move the position
        to the last record's (or to `up_to`, the end of what was read, when that is further: the
        records are filtered by type). `also_track` are further tracking keys and values (e.g. a
        Kafka partition's next offset) written in the same transaction, whatever their old
        values. Returns how many were applied."""
        try:
            return self._apply(records, up_to, stream, also_track)
        except (sqlite3.IntegrityError, psycopg.errors.UniqueViolation) as error:
            # another projector of the same projection inserted the same rows or position first
            raise ConcurrentProjector(f"{self.tracking_key(stream)}: {error}") from error

    def _apply(self, records: Sequence[EventRecord], up_to: int | None, stream: str,
               also_track: dict[str, int] | None) -> int:
        key, applied = self.tracking_key(stream), 0
        lock = " FOR UPDATE" if self.database.postgres else ""  # SQLite's BEGIN IMMEDIATE already serialises
        with self.database.transaction() as cursor:
            row = cursor.execute(f"SELECT position FROM {POSITIONS_TABLE} WHERE projection = ?{lock}",
                                 (key,)).fetchone()
            start = row[0] if row else 0
            position = start
            for record in records:
                if record.position <= position:
                    continue
                if record.type in self.projection.event_types:
                    self.projection.apply(cursor, record)
                    applied += 1
                position = record.position
            if up_to is not None and up_to > position:
                position = up_to
            if position != start:
                _move(cursor, key, start, position, exists=row is not None)
            for extra_key, value in (also_track or {}).items():
                _track(cursor, extra_key, value)
        return applied


def _move(cursor: ViewCursor, key: str, start: int, position: int, *, exists: bool) -> None:
    if exists:
        cursor.execute(f"UPDATE {POSITIONS_TABLE} SET position = ? WHERE projection = ? AND position = ?",
                       (position, key, start))
        if cursor.rowcount != 1:
            raise ConcurrentProjector(f"{key} moved past {start} while this batch was applied")
    else:
        cursor.execute(f"INSERT INTO {POSITIONS_TABLE} (projection, position) VALUES (?, ?)", (key, position))


def _track(cursor: ViewCursor, key: str, value: int) -> None:
    cursor.execute(f"INSERT INTO {POSITIONS_TABLE} (projection, position) VALUES (?, ?) "
                   "ON CONFLICT (projection) DO UPDATE SET position = excluded.position", (key, value))
