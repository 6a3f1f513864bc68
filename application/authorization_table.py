"""Call authorization decisions (SPEC §13) kept in a table keyed by the call id, beside the events.

An organization's account records each decision (`CallAuthorized`) and how its reservation ended
(`ReservationEnded`): those sealed events are the record an auditor reads. This table
(`<events table>_authorizations`: call_id primary key, org, the decision's fields as JSON, status,
ended_at) is what makes a decision once for ever across organizations and servers cheap to keep:
a retried `call.authorize` finds the earlier answer by its key, `GET` reads it back, and two
writers deciding the same call at once cannot both store it (the second insert fails the whole
save with an `IntegrityError`). Rows are written in the transaction that stores the account's
events, so the table never disagrees with the history.

It replaces a `CallAuthorization` aggregate per call id, whose second event per decision cost
about a tenth of the authorization desk's time. Stores written before keep those events as they
are (they are sealed); the table is filled from them when it is created.

A recorder that keeps decisions takes them as `insert_events(..., authorizations=[row, ...])`
(`AuthorizationRow`: a new row is inserted, an ended one updated) and answers
`authorization_rows(call_ids)`.
"""

from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any, NamedTuple

import orjson
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Composed, Identifier

from application.side_tables import SQLITE_IDS_PER_STATEMENT, postgres_table_exists, sqlite_table_exists
from domain.call_authorization import AuthorizationRecord, CallAuthorization

AUTHORIZATIONS = "authorizations"  # the keyword of `insert_events` that carries a save's decisions
_DECIDED_TOPIC = get_topic(CallAuthorization.Decided)
_ENDED_TOPIC = get_topic(CallAuthorization.Ended)


class AuthorizationRow(NamedTuple):
    call_id: str
    org: str
    fields: str  # the decision's fields (`decision_fields`), as JSON
    status: str
    ended_at: str | None
    is_new: bool  # inserted by this save, or updated (its reservation ended)


StoredRow = tuple[str, str, str | None]  # fields, status, ended_at


def row_of(record: AuthorizationRecord) -> AuthorizationRow:
    return AuthorizationRow(record.call_id, record.org, orjson.dumps({"org": record.org, **record.fields}).decode(),
                            record.status, record.ended_at, record.is_new)


def record_of(call_id: str, row: StoredRow) -> AuthorizationRecord:
    """The record as the table holds it (the fields of an old store's `Decided` event carry more keys)."""
    fields, status, ended_at = row
    document = orjson.loads(fields)
    return AuthorizationRecord(call_id, document["org"], document, status, ended_at, is_new=False)


def rows_of(kwargs: dict[str, Any]) -> Sequence[AuthorizationRow]:
    return kwargs.get(AUTHORIZATIONS) or ()


def _split(rows: Sequence[AuthorizationRow]) -> tuple[list[tuple], list[tuple]]:
    """New rows to insert, ended ones to update, each in call id order (two writers updating the
    same rows lock them in the same order: no deadlock)."""
    ordered = sorted(rows, key=lambda row: row.call_id)
    return ([(row.call_id, row.org, row.fields, row.status, row.ended_at) for row in ordered if row.is_new],
            [(row.status, row.ended_at, row.call_id) for row in ordered if not row.is_new])


def table_name(events_table_name: str) -> str:
    return f"{events_table_name}_authorizations"


# ----- SQLite ---------------------------------------------------------------------------------

def create_sqlite_table(c: Any, events_table_name: str) -> None:
    """Create the table if it is missing, filled from the store's `CallAuthorization` events."""
    table = table_name(events_table_name)
    if sqlite_table_exists(c, table):
        return
    c.execute(f"CREATE TABLE {table} (call_id TEXT PRIMARY KEY, org TEXT NOT NULL, fields TEXT NOT NULL, "
              "status TEXT NOT NULL, ended_at TEXT) WITHOUT ROWID")
    c.execute(f"""
        INSERT INTO {table} (call_id, org, fields, status, ended_at)
        SELECT json_extract(CAST(decided.state AS TEXT), '$.call_id'),
               json_extract(CAST(decided.state AS TEXT), '$.org'), CAST(decided.state AS TEXT),
               coalesce(json_extract(CAST(ended.state AS TEXT), '$.status'),
                        CASE json_extract(CAST(decided.state AS TEXT), '$.decision')
                             WHEN 'denied' THEN 'denied' ELSE 'open' END),
               json_extract(CAST(ended.state AS TEXT), '$.at')
        FROM {events_table_name} AS decided
        LEFT JOIN {events_table_name} AS ended
               ON ended.originator_id = decided.originator_id AND ended.topic = ?
        WHERE decided.topic = ?""", (_ENDED_TOPIC, _DECIDED_TOPIC))


def write_sqlite(c: Any, events_table_name: str, rows: Sequence[AuthorizationRow]) -> None:
    if not rows:
        return
    table = table_name(events_table_name)
    new, ended = _split(rows)
    if new:
        c.executemany(f"INSERT INTO {table} (call_id, org, fields, status, ended_at) VALUES (?, ?, ?, ?, ?)", new)
    if ended:
        c.executemany(f"UPDATE {table} SET status = ?, ended_at = ? WHERE call_id = ?", ended)


def select_sqlite(datastore: Any, events_table_name: str, call_ids: Sequence[str]) -> dict[str, StoredRow]:
    found: dict[str, StoredRow] = {}
    table = table_name(events_table_name)
    with datastore.transaction(commit=False) as c:
        for start in range(0, len(call_ids), SQLITE_IDS_PER_STATEMENT):
            chunk = call_ids[start:start + SQLITE_IDS_PER_STATEMENT]
            c.execute(f"SELECT call_id, fields, status, ended_at FROM {table} "
                      f"WHERE call_id IN ({','.join('?' * len(chunk))})", chunk)
            found.update((row[0], (row[1], row[2], row[3])) for row in c.fetchall())
    return found


# ----- PostgreSQL -----------------------------------------------------------------------------

def create_postgres_table(curs: Any, schema: str, events_table_name: str) -> None:
    table = table_name(events_table_name)
    if postgres_table_exists(curs, schema, table):
        return
    curs.execute(SQL("CREATE TABLE {} (call_id text PRIMARY KEY, org text NOT NULL, fields text NOT NULL, "
                     "status text NOT NULL, ended_at text)").format(Identifier(schema, table)))
    curs.execute(SQL("""
        INSERT INTO {} (call_id, org, fields, status, ended_at)
        SELECT decided.document ->> 'call_id', decided.document ->> 'org', decided.document::text,
               coalesce(ended.document ->> 'status',
                        CASE decided.document ->> 'decision' WHEN 'denied' THEN 'denied' ELSE 'open' END),
               ended.document ->> 'at'
        FROM (SELECT originator_id, convert_from(state, 'UTF8')::jsonb AS document FROM {} WHERE topic = %s)
             AS decided
        LEFT JOIN (SELECT originator_id, convert_from(state, 'UTF8')::jsonb AS document FROM {} WHERE topic = %s)
             AS ended ON ended.originator_id = decided.originator_id""").format(
        Identifier(schema, table), Identifier(schema, events_table_name), Identifier(schema, events_table_name)),
        (_DECIDED_TOPIC, _ENDED_TOPIC))


@lru_cache(maxsize=16)
def _postgres_writes(schema: str, events_table_name: str) -> tuple[Composed, Composed]:
    """The insert and the update, composed once per table (they run in every save of decisions).
    Columns go as binary arrays: psycopg builds text-mode arrays value by value in Python."""
    table = Identifier(schema, table_name(events_table_name))
    return (SQL("INSERT INTO {} (call_id, org, fields, status, ended_at) "
                "SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::text[], %b::text[])").format(table),
            SQL("UPDATE {} AS row SET status = ended.status, ended_at = ended.ended_at FROM "
                "unnest(%b::text[], %b::text[], %b::text[]) AS ended (status, ended_at, call_id) "
                "WHERE row.call_id = ended.call_id").format(table))


def write_postgres(curs: Any, schema: str, events_table_name: str, rows: Sequence[AuthorizationRow]) -> None:
    if not rows:
        return
    insert, update = _postgres_writes(schema, events_table_name)
    for statement, values in zip((insert, update), _split(rows)):
        if values:
            curs.execute(statement, [list(column) for column in zip(*values)], prepare=True)


def select_postgres(datastore: Any, events_table_name: str, call_ids: Sequence[str]) -> dict[str, StoredRow]:
    statement = SQL("SELECT call_id, fields, status, ended_at FROM {} WHERE call_id = ANY(%s)").format(
        Identifier(datastore.schema, table_name(events_table_name)))
    with datastore.get_connection() as connection, connection.cursor() as cursor:
        cursor.execute(statement, [list(call_ids)])
        return {row["call_id"]: (row["fields"], row["status"], row["ended_at"]) for row in cursor.fetchall()}


# ----- in memory ------------------------------------------------------------------------------

class MemoryAuthorizations:
    """The table for eventsourcing's in-memory recorder (`ClaimingPOPOProcessRecorder`)."""

    def __init__(self) -> None:
        self._rows: dict[str, StoredRow] = {}

    def check(self, rows: Sequence[AuthorizationRow]) -> None:
        new = [row.call_id for row in rows if row.is_new]
        if len(set(new)) < len(new) or any(call_id in self._rows for call_id in new):
            raise IntegrityError(f"a call id is decided already: {sorted(set(new) & set(self._rows))}")

    def write(self, rows: Sequence[AuthorizationRow]) -> None:
        for row in rows:
            if row.is_new or row.call_id in self._rows:
                self._rows[row.call_id] = (row.fields, row.status, row.ended_at)

    def select(self, call_ids: Iterable[str]) -> dict[str, StoredRow]:
        return {call_id: self._rows[call_id] for call_id in call_ids if call_id in self._rows}
