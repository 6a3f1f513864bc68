"""Event recorders that seal the events in the transaction that stores them (`application.seal_chain`).

They are eventsourcing's SQLite and PostgreSQL process recorders with a seal table beside the
events table (`<events table>_seals`: one row per transaction that stored events, keyed by its
last `position`, with its `entries` and its `seal`). Storing events then also:
1. reads the last seal, after the events table is locked for writing (SQLite: the write lock
   taken by the first insert; PostgreSQL: eventsourcing's `LOCK TABLE ... IN EXCLUSIVE MODE`),
   so no other writer can append in between;
2. hashes the new events (one SHA-256 each), chains the batch's seal from the last one and
   inserts that one row;
all in the transaction of the events (and of the consumer's position, the usage ids claimed and
the call authorization decisions, when a save has them: `application.usage_claims`,
`application.authorization_table`):
an event is never stored without its seal, nor a seal without its events. One row per
transaction keeps the write path cheap: a 4,000-event save adds one insert, not 4,000.

A store made by the previous version has events and no seal table: the first open creates the
table and seals the events it finds, as found, in batches of `READ_PAGE_SIZE` (a checkpoint
taken then anchors them from that moment on). The seal table of a store that has one is never
rewritten.
"""

import logging
from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresDatastore, PostgresProcessRecorder
from eventsourcing.sqlite import SQLiteCursor, SQLiteDatastore, SQLiteProcessRecorder
from eventsourcing.utils import retry
from psycopg.sql import SQL, Identifier

from application import authorization_table, usage_claims
from application.seal_chain import GENESIS_SEAL, StoredRecord, batch_entries, batch_seal, field_bytes, stored_entries
from application.side_tables import postgres_table_exists, sqlite_table_exists

READ_PAGE_SIZE = 1000  # events per read (and per seal, when an old store is sealed)
log = logging.getLogger("commcredits.seals")


class SealedSQLiteProcessRecorder(SQLiteProcessRecorder):
    def __init__(self, datastore: SQLiteDatastore, *, events_table_name: str = "stored_events") -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        self.seals_table_name = f"{events_table_name}_seals"

    def _create_table(self, c: SQLiteCursor) -> None:
        super()._create_table(c)
        if not sqlite_table_exists(c, self.seals_table_name):
            c.execute(f"CREATE TABLE {self.seals_table_name} "
                      "(position INTEGER PRIMARY KEY, entries BLOB NOT NULL, seal BLOB NOT NULL)")
            self._seal_existing(c)
        usage_claims.create_sqlite_table(c, self.events_table_name)
        authorization_table.create_sqlite_table(c, self.events_table_name)

    def _seal_existing(self, c: SQLiteCursor) -> None:
        after = 0
        while records := self._read_records(c, after, READ_PAGE_SIZE):
            self._write_seal(c, records[-1].position, batch_entries(records))
            after = records[-1].position
        _sealed_as_found(self.events_table_name, after)

    def _insert_events(self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int]:
        positions = super()._insert_events(c, stored_events, **kwargs)
        if stored_events:
            self._write_seal(c, max(positions), stored_entries(positions, stored_events))
        usage_claims.insert_sqlite(c, self.events_table_name, usage_claims.claims_of(kwargs))
        authorization_table.write_sqlite(c, self.events_table_name, authorization_table.rows_of(kwargs))
        return positions

    def claimed_usage_ids(self, usage_ids: Sequence[str]) -> set[str]:
        return usage_claims.select_sqlite(self.datastore, self.events_table_name, usage_ids)

    def authorization_rows(self, call_ids: Sequence[str]) -> dict[str, authorization_table.StoredRow]:
        return authorization_table.select_sqlite(self.datastore, self.events_table_name, call_ids)

    def _write_seal(self, c: SQLiteCursor, position: int, entries: bytes) -> None:
        """Chain the batch of `entries`, whose last event is at `position`, to the last seal."""
        c.execute(f"SELECT seal FROM {self.seals_table_name} ORDER BY position DESC LIMIT 1")
        last = c.fetchone()
        c.execute(f"INSERT INTO {self.seals_table_name} (position, entries, seal) VALUES (?, ?, ?)",
                  (position, entries, batch_seal(last[0] if last else GENESIS_SEAL, entries)))

    def _read_records(self, c: SQLiteCursor, after: int, limit: int, up_to: int | None = None) -> list[StoredRecord]:
        c.execute(f"SELECT rowid, originator_id, originator_version, topic, state FROM {self.events_table_name} "
                  "WHERE rowid > ? AND rowid <= ? ORDER BY rowid LIMIT ?", (after, _no_end(up_to), limit))
        return [StoredRecord(*row) for row in c.fetchall()]

    # ----- reading, for verification -----------------------------------------------------------

    def select_records(self, after: int, limit: int, up_to: int | None = None) -> list[StoredRecord]:
        """Events after position `after` as stored, not decoded: a tampered row is read as it is."""
        with self.datastore.transaction(commit=False) as c:
            return self._read_records(c, after, limit, up_to)

    def select_seals(self, after: int, limit: int, up_to: int | None = None) -> list[tuple[int, bytes, bytes]]:
        """(last position, entries, seal) of the batches after position `after`, as stored."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT position, entries, seal FROM {self.seals_table_name} WHERE position > ? "
                      "AND position <= ? ORDER BY position LIMIT ?", (after, _no_end(up_to), limit))
            # as bytes, whatever a tampered row holds
            return [(row[0], field_bytes(row[1]), field_bytes(row[2])) for row in c.fetchall()]

    def last_seal(self) -> tuple[int, bytes] | None:
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT position, seal FROM {self.seals_table_name} ORDER BY position DESC LIMIT 1")
            row = c.fetchone()
            return (row[0], field_bytes(row[1])) if row else None


class SealedPostgresProcessRecorder(PostgresProcessRecorder):
    """Stores events with eventsourcing's statements (table lock, NOTIFY, insert returning the
    notification ids) and their seals in one transaction of its own, without the library's
    pipeline: an error anywhere rolls the whole transaction back."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events",
                 tracking_table_name: str = "notification_tracking") -> None:
        assert not datastore.enable_db_functions, "sealed events are inserted by the recorder, not a database function"
        super().__init__(datastore, events_table_name=events_table_name, tracking_table_name=tracking_table_name)
        self.seals_table_name = f"{events_table_name}_seals"
        self.check_identifier_length(self.seals_table_name)
        self._seals = Identifier(datastore.schema, self.seals_table_name)
        self._events = Identifier(datastore.schema, events_table_name)
        id_type = SQL("uuid" if datastore.originator_id_type == "uuid" else "text")
        self._insert_columns = SQL(
            "INSERT INTO {} (originator_id, originator_version, topic, state) "
            "SELECT * FROM unnest(%b::{}[], %b::bigint[], %b::text[], %b::bytea[]) RETURNING notification_id"
        ).format(self._events, id_type)

    def _create_table(self, curs: Any) -> None:
        super()._create_table(curs)
        if not postgres_table_exists(curs, self.datastore.schema, self.seals_table_name):
            curs.execute(SQL("CREATE TABLE {} (position bigint PRIMARY KEY, entries bytea NOT NULL, "
                             "seal bytea NOT NULL)").format(self._seals))
            curs.execute(SQL("ALTER TABLE {} ALTER COLUMN entries SET STORAGE EXTERNAL").format(self._seals))
            self._lock_table(curs)  # nothing is appended while the existing events are sealed
            self._seal_existing(curs)
        usage_claims.create_postgres_table(curs, self.datastore.schema, self.events_table_name)
        authorization_table.create_postgres_table(curs, self.datastore.schema, self.events_table_name)

    def _seal_existing(self, curs: Any) -> None:
        after = 0
        while records := self._read_records(curs, after, READ_PAGE_SIZE):
            self._write_seal(curs, records[-1].position, batch_entries(records))
            after = records[-1].position
        _sealed_as_found(self.events_table_name, after)

    @retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)
    def insert_events(self, stored_events: Sequence[StoredEvent], **kwargs: Any) -> Sequence[int] | None:
        with self.datastore.get_connection() as conn, conn.transaction(), conn.cursor() as curs:
            self._insert_events(curs, stored_events, **kwargs)  # the tracking record, if any
            usage_claims.insert_postgres(curs, self.datastore.schema, self.events_table_name,
                                         usage_claims.claims_of(kwargs))
            authorization_table.write_postgres(curs, self.datastore.schema, self.events_table_name,
                                               authorization_table.rows_of(kwargs))
            if not stored_events:
                return None
            self._insert_stored_events(curs, stored_events)  # lock the table, NOTIFY, insert returning the ids
            positions = [row["notification_id"] for row in curs.fetchall()]
            self._write_seal(curs, max(positions), stored_entries(positions, stored_events))
            return positions

    def _insert_stored_events(self, curs: Any, stored_events: Sequence[StoredEvent], **kwargs: Any) -> None:
        """eventsourcing's statements (lock the table, NOTIFY, insert returning the ids in order),
        with the events sent as four column arrays in binary rather than one array of a composite
        type: psycopg adapts the composite values one by one in Python, the columns in C. On
        PostgreSQL that was two thirds of the time of a consumer's save."""
        self._lock_table(curs)
        self._notify_channel(curs)
        curs.execute(self._insert_columns, ([event.originator_id for event in stored_events],
                                            [event.originator_version for event in stored_events],
                                            [event.topic for event in stored_events],
                                            [event.state for event in stored_events]), prepare=True)

    def _write_seal(self, curs: Any, position: int, entries: bytes) -> None:
        """Chain the batch of `entries`, whose last event is at `position`, to the last seal."""
        curs.execute(SQL("SELECT seal FROM {} ORDER BY position DESC LIMIT 1").format(self._seals), prepare=True)
        last = curs.fetchone()
        curs.execute(SQL("INSERT INTO {} (position, entries, seal) VALUES (%s, %b, %b)").format(self._seals),
                     (position, entries, batch_seal(bytes(last["seal"]) if last else GENESIS_SEAL, entries)),
                     prepare=True)

    def claimed_usage_ids(self, usage_ids: Sequence[str]) -> set[str]:
        return usage_claims.select_postgres(self.datastore, self.events_table_name, usage_ids)

    def authorization_rows(self, call_ids: Sequence[str]) -> dict[str, authorization_table.StoredRow]:
        return authorization_table.select_postgres(self.datastore, self.events_table_name, call_ids)

    def _read_records(self, curs: Any, after: int, limit: int, up_to: int | None = None) -> list[StoredRecord]:
        curs.execute(SQL("SELECT notification_id, originator_id, originator_version, topic, state FROM {} "
                         "WHERE notification_id > %s AND notification_id <= %s ORDER BY notification_id LIMIT %s")
                     .format(self._events), (after, _no_end(up_to), limit), prepare=True)
        return [StoredRecord(row["notification_id"], row["originator_id"], row["originator_version"], row["topic"],
                             None if row["state"] is None else bytes(row["state"])) for row in curs.fetchall()]

    # ----- reading, for verification -----------------------------------------------------------

    def select_records(self, after: int, limit: int, up_to: int | None = None) -> list[StoredRecord]:
        """Events after position `after` as stored, not decoded: a tampered row is read as it is."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            return self._read_records(curs, after, limit, up_to)

    def select_seals(self, after: int, limit: int, up_to: int | None = None) -> list[tuple[int, bytes, bytes]]:
        """(last position, entries, seal) of the batches after position `after`, as stored."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("SELECT position, entries, seal FROM {} WHERE position > %s AND position <= %s "
                             "ORDER BY position LIMIT %s").format(self._seals), (after, _no_end(up_to), limit))
            return [(row["position"], bytes(row["entries"]), bytes(row["seal"])) for row in curs.fetchall()]

    def last_seal(self) -> tuple[int, bytes] | None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("SELECT position, seal FROM {} ORDER BY position DESC LIMIT 1").format(self._seals))
            row = curs.fetchone()
            return (row["position"], bytes(row["seal"])) if row else None


def _sealed_as_found(events_table_name: str, up_to: int) -> None:
    """Said loudly: a seal table that went missing is re-created as found, so this also follows
    whoever dropped it (`audit verify --checkpoint` with an earlier token tells)."""
    if up_to:
        log.warning("%s had no seal table: its events up to position %d are sealed as they are now; take an "
                    "`audit checkpoint` to anchor them", events_table_name, up_to)


def _no_end(up_to: int | None) -> int:
    return (1 << 63) - 1 if up_to is None else up_to
