"""The read models' database, beside the event store: a SQLite file next to the store's file
(or in memory), or the store's own PostgreSQL database and schema.

Projections write portable SQL with `?` placeholders; the cursor adapts them for psycopg. Each
projection's position is a row of `view_positions`, written in the same transaction as its rows:
a crash leaves both as they were, so nothing is applied twice or lost.
"""

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from commcredits.settings import StoreSettings

POSITIONS_TABLE = "view_positions"
TABLE_CREATION_ATTEMPTS = 3
SQLITE_BUSY_TIMEOUT_S = 30.0  # another process (`project`, `balance`) may hold the write lock meanwhile


class ViewCursor:
    def __init__(self, cursor: Any, placeholder: str) -> None:
        self._cursor, self._placeholder = cursor, placeholder

    def execute(self, sql: str, params: Sequence[Any] = ()) -> "ViewCursor":
        self._cursor.execute(sql.replace("?", self._placeholder) if self._placeholder != "?" else sql, params)
        return self

    def fetchone(self) -> tuple | None:
        return self._cursor.fetchone()

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall()

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount


class ViewDatabase:
    def __init__(self, connection: Any, *, postgres: bool, description: str) -> None:
        self._connection, self.postgres, self.description = connection, postgres, description
        self.create_tables([f"CREATE TABLE IF NOT EXISTS {POSITIONS_TABLE} "
                            "(projection TEXT PRIMARY KEY, position BIGINT NOT NULL)"])

    @classmethod
    def for_store(cls, store: StoreSettings) -> "ViewDatabase":
        env = store.env
        if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
            schema = env.get("POSTGRES_SCHEMA")
            connection = psycopg.connect(
                dbname=env["POSTGRES_DBNAME"], host=env.get("POSTGRES_HOST"), port=env.get("POSTGRES_PORT"),
                user=env.get("POSTGRES_USER"), password=env.get("POSTGRES_PASSWORD") or None,
                connect_timeout=int(env.get("POSTGRES_CONNECT_TIMEOUT", "5")),
                options=f"-c search_path={schema}" if schema else None, autocommit=True)
            return cls(connection, postgres=True, description=f"{store.description}, view_* tables")
        path = env.get("SQLITE_DBNAME", ":memory:")
        if path != ":memory:" and "mode=memory" not in path:
            path = str(Path(path).with_name(Path(path).stem + ".views.sqlite"))
        else:
            path = ":memory:"
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=SQLITE_BUSY_TIMEOUT_S)
        connection.execute("PRAGMA journal_mode=WAL")
        return cls(connection, postgres=False, description=f"SQLite {path}")

    @contextmanager
    def transaction(self) -> Iterator[ViewCursor]:
        """One database transaction: committed when the block ends, rolled back if it raises."""
        if self.postgres:
            with self._connection.transaction(), self._connection.cursor() as cursor:
                yield ViewCursor(cursor, "%s")
            return
        cursor = self._connection.cursor()
        cursor.execute("BEGIN IMMEDIATE")
        try:
            yield ViewCursor(cursor, "?")
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")

    def create_tables(self, statements: Sequence[str]) -> None:
        """Run `CREATE TABLE IF NOT EXISTS` statements. On PostgreSQL two processes creating the
        same table at once can still collide in its catalogue (a duplicate type, "tuple
        concurrently updated"): the loser tries again and then finds the table there."""
        for attempt in range(TABLE_CREATION_ATTEMPTS):
            try:
                with self.transaction() as cursor:
                    for statement in statements:
                        cursor.execute(statement)
                return
            except psycopg.Error:
                if attempt == TABLE_CREATION_ATTEMPTS - 1:
                    raise

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self.transaction() as cursor:
            return cursor.execute(sql, params).fetchall()

    def position(self, projection: str) -> int:
        rows = self.query(f"SELECT position FROM {POSITIONS_TABLE} WHERE projection = ?", (projection,))
        return rows[0][0] if rows else 0

    def close(self) -> None:
        self._connection.close()
