"""What the tables kept beside the events (seals, usage claims, call authorizations) share: each is
created when a store lacks it, in the transaction that sets the store up, and read by key in
statements of bounded size."""

from typing import Any

SQLITE_IDS_PER_STATEMENT = 500  # below SQLite's bound-parameter limit on every build


def sqlite_table_exists(c: Any, table: str) -> bool:
    c.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
    return bool(c.fetchone()[0])


def postgres_table_exists(curs: Any, schema: str, table: str) -> bool:
    curs.execute("SELECT count(*) AS n FROM pg_tables WHERE schemaname = %s AND tablename = %s", (schema, table))
    return bool(curs.fetchone()["n"])
