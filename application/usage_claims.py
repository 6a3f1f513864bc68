"""Rated usage ids (SPEC §10's duplicate rule) kept in a unique-keyed table beside the events.

A `CallRated` event names its `usage_id`. The claims table (`<events table>_usage_claims`, one
row per rated usage id, its primary key the usage id) is written in the transaction that stores
that event, so a second rating of the same usage id, by this process after a restart or by
another process racing on it, fails the whole save with an `IntegrityError`: nothing is charged
twice. It replaces an aggregate with one `UsageClaimed` event per CDR, which cost a third of the
events of a busy store and a fifth of the consumer's time, and told an auditor nothing the
`CallRated` event does not. Old stores keep their `UsageClaimed` events; the table is filled from
them when it is created, so their usage ids stay claimed.

A recorder that keeps claims takes them as `insert_events(..., usage_claims=[(usage_id, org)])`
(the keyword reaches it from `BillingApplication.save`) and answers `claimed_usage_ids(ids)`.
"""

from collections.abc import Iterable, Sequence
from typing import Any

from eventsourcing.persistence import IntegrityError
from eventsourcing.popo import POPOProcessRecorder
from eventsourcing.utils import get_topic
from psycopg.sql import SQL, Identifier

from application import authorization_table
from application.side_tables import SQLITE_IDS_PER_STATEMENT, postgres_table_exists, sqlite_table_exists
from domain.usage_claim import UsageClaim

USAGE_CLAIMS = "usage_claims"  # the keyword of `insert_events` that carries a save's claims
_CLAIMED_TOPIC = get_topic(UsageClaim.UsageClaimed)

Claims = Sequence[tuple[str, str]]  # (usage_id, org)


def claims_of(kwargs: dict[str, Any]) -> Claims:
    return kwargs.get(USAGE_CLAIMS) or ()


def claims_table_name(events_table_name: str) -> str:
    return f"{events_table_name}_usage_claims"


# ----- SQLite ---------------------------------------------------------------------------------

def create_sqlite_table(c: Any, events_table_name: str) -> None:
    """Create the table if it is missing, filled with the usage ids of the store's `UsageClaimed` events."""
    table = claims_table_name(events_table_name)
    if sqlite_table_exists(c, table):
        return
    c.execute(f"CREATE TABLE {table} (usage_id TEXT PRIMARY KEY, org TEXT NOT NULL) WITHOUT ROWID")
    c.execute(f"INSERT INTO {table} (usage_id, org) SELECT json_extract(CAST(state AS TEXT), '$.usage_id'), "
              f"json_extract(CAST(state AS TEXT), '$.org') FROM {events_table_name} WHERE topic = ?",
              (_CLAIMED_TOPIC,))


def insert_sqlite(c: Any, events_table_name: str, claims: Claims) -> None:
    if claims:
        c.executemany(f"INSERT INTO {claims_table_name(events_table_name)} (usage_id, org) VALUES (?, ?)", claims)


def select_sqlite(datastore: Any, events_table_name: str, usage_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    table = claims_table_name(events_table_name)
    with datastore.transaction(commit=False) as c:
        for start in range(0, len(usage_ids), SQLITE_IDS_PER_STATEMENT):
            chunk = usage_ids[start:start + SQLITE_IDS_PER_STATEMENT]
            c.execute(f"SELECT usage_id FROM {table} WHERE usage_id IN ({','.join('?' * len(chunk))})", chunk)
            found.update(row[0] for row in c.fetchall())
    return found


# ----- PostgreSQL -----------------------------------------------------------------------------

def create_postgres_table(curs: Any, schema: str, events_table_name: str) -> None:
    table = claims_table_name(events_table_name)
    if postgres_table_exists(curs, schema, table):
        return
    curs.execute(SQL("CREATE TABLE {} (usage_id text PRIMARY KEY, org text NOT NULL)").format(
        Identifier(schema, table)))
    curs.execute(SQL("INSERT INTO {} (usage_id, org) SELECT document ->> 'usage_id', document ->> 'org' FROM "
                     "(SELECT convert_from(state, 'UTF8')::jsonb AS document FROM {} WHERE topic = %s) AS claimed")
                 .format(Identifier(schema, table), Identifier(schema, events_table_name)), (_CLAIMED_TOPIC,))


def insert_postgres(curs: Any, schema: str, events_table_name: str, claims: Claims) -> None:
    if claims:
        curs.execute(SQL("INSERT INTO {} (usage_id, org) SELECT * FROM unnest(%s::text[], %s::text[])")
                     .format(Identifier(schema, claims_table_name(events_table_name))),
                     ([usage_id for usage_id, _ in claims], [org for _, org in claims]), prepare=True)


def select_postgres(datastore: Any, events_table_name: str, usage_ids: Sequence[str]) -> set[str]:
    statement = SQL("SELECT usage_id FROM {} WHERE usage_id = ANY(%s)").format(
        Identifier(datastore.schema, claims_table_name(events_table_name)))
    with datastore.get_connection() as connection, connection.cursor() as cursor:
        cursor.execute(statement, [list(usage_ids)])
        return {row["usage_id"] for row in cursor.fetchall()}


# ----- in memory ------------------------------------------------------------------------------

class ClaimingPOPOProcessRecorder(POPOProcessRecorder):
    """eventsourcing's in-memory recorder, with the claims and the call authorization decisions
    (`application.authorization_table`) kept beside its events."""

    def __init__(self) -> None:
        super().__init__()
        self._claims: dict[str, str] = {}
        self._authorizations = authorization_table.MemoryAuthorizations()

    def _assert_uniqueness(self, stored_events: Any, **kwargs: Any) -> None:
        super()._assert_uniqueness(stored_events, **kwargs)
        claimed = [usage_id for usage_id, _ in claims_of(kwargs)]
        if len(set(claimed)) < len(claimed) or any(usage_id in self._claims for usage_id in claimed):
            raise IntegrityError(f"a usage id is claimed already: {sorted(set(claimed) & set(self._claims))}")
        self._authorizations.check(authorization_table.rows_of(kwargs))

    def _update_table(self, stored_events: Any, **kwargs: Any) -> Any:
        positions = super()._update_table(stored_events, **kwargs)
        self._claims.update(claims_of(kwargs))
        self._authorizations.write(authorization_table.rows_of(kwargs))
        return positions

    def claimed_usage_ids(self, usage_ids: Iterable[str]) -> set[str]:
        with self._database_lock:
            return {usage_id for usage_id in usage_ids if usage_id in self._claims}

    def authorization_rows(self, call_ids: Iterable[str]) -> dict[str, authorization_table.StoredRow]:
        with self._database_lock:
            return self._authorizations.select(call_ids)
