"""Which of many aggregates exist, in one round trip to the store.

The authorization desk asks it once per batch for the decisions of the batch's call ids. Asking
once per request (eventsourcing's `select_events`) was, for the CDR consumer's usage claims
before they moved to a table of their own, a third of its time on PostgreSQL. The SQL
reads the recorder's own events table through its own connection pool; only the table name and
the id encoding are the library's, and both are taken from the recorder, not assumed.
"""

import sqlite3
from collections.abc import Sequence
from uuid import UUID

import psycopg
from eventsourcing.persistence import AggregateRecorder, OperationalError
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from psycopg.sql import SQL, Identifier

SQLITE_IDS_PER_STATEMENT = 500  # below SQLite's bound-parameter limit on every build


def existing_aggregates(recorder: AggregateRecorder, ids: Sequence[UUID]) -> set[UUID]:
    """The ids among `ids` that have at least one stored event. A failing store raises
    eventsourcing's `OperationalError`, as the library's own reads do, so callers that redo work
    on a `PersistenceError` treat it alike."""
    if not ids:
        return set()
    try:
        if isinstance(recorder, PostgresAggregateRecorder):
            return _on_postgres(recorder, ids)
        if isinstance(recorder, SQLiteAggregateRecorder):
            return _on_sqlite(recorder, ids)
    except (psycopg.Error, sqlite3.Error) as error:
        raise OperationalError(f"{type(error).__name__}: {error}") from error
    return {aggregate_id for aggregate_id in ids if recorder.select_events(aggregate_id, limit=1)}


def _on_postgres(recorder: PostgresAggregateRecorder, ids: Sequence[UUID]) -> set[UUID]:
    as_text = recorder.datastore.originator_id_type == "text"
    statement = SQL("SELECT originator_id FROM {schema}.{table} WHERE originator_id = ANY(%s) "
                    "AND originator_version = 1").format(schema=Identifier(recorder.datastore.schema),
                                                         table=Identifier(recorder.events_table_name))
    values = [str(aggregate_id) for aggregate_id in ids] if as_text else list(ids)
    with recorder.datastore.get_connection() as connection, connection.cursor() as cursor:
        cursor.execute(statement, [values])
        return {UUID(str(row["originator_id"])) for row in cursor.fetchall()}


def _on_sqlite(recorder: SQLiteAggregateRecorder, ids: Sequence[UUID]) -> set[UUID]:
    found: set[UUID] = set()
    for start in range(0, len(ids), SQLITE_IDS_PER_STATEMENT):
        chunk = ids[start:start + SQLITE_IDS_PER_STATEMENT]
        marks = ",".join("?" * len(chunk))
        statement = (f"SELECT originator_id FROM {recorder.events_table_name} "
                     f"WHERE originator_version = 1 AND originator_id IN ({marks})")
        with recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, [aggregate_id.hex for aggregate_id in chunk])  # as select_events binds them
            found.update(UUID(str(row["originator_id"])) for row in cursor.fetchall())
    return found
