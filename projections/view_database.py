"""The read models' database, beside the event store: a SQLite file next to the store's file
(or in memory), created readable by its owner only, or the store's own PostgreSQL database and
schema.

Projections write portable SQL with `?` placeholders; the cursor adapts them for psycopg. Each
projection's position is a row of `view_positions`, written in the same transaction as its rows:
a crash leaves both as they were, so nothing is applied twice or lost.
"""

import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg

from application.private_files import create_private_file
from application.schema_lock import lock_schema_setup_in_transaction
from application.settings import StoreSettings

POSITIONS_TABLE = "view_positions"
SQLITE_BUSY_TIMEOUT_S = 30.0  # another process (`project`, `balance`) may hold the write lock meanwhile


def _create_private(path: Path) -> None:
    """0600 before SQLite would make it (and its -wal and -shm files) 0644. Where the file cannot be
    made, SQLite cannot either and reports it as callers expect (sqlite3.Error)."""
    try:
        create_private_file(path)
    except OSError:
        pass


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
    def __init__(self, connection: Any, *, postgres: bool, description: str,
                 reconnect: Callable[[], Any] | None = None) -> None:
        self._connection, self.postgres, self.description = connection, postgres, description
        self._reconnect = reconnect
        self.create_tables([f"CREATE TABLE IF NOT EXISTS {POSITIONS_TABLE} "
                            "(projection TEXT PRIMARY KEY, position BIGINT NOT NULL)"])

    @classmethod
    def for_store(cls, store: StoreSettings) -> "ViewDatabase":
        env = store.env
        if env.get("PERSISTENCE_MODULE") == "eventsourcing.postgres":
            schema = env.get("POSTGRES_SCHEMA")

            def connect() -> psycopg.Connection:
                return psycopg.connect(
                    dbname=env["POSTGRES_DBNAME"], host=env.get("POSTGRES_HOST"), port=env.get("POSTGRES_PORT"),
                    user=env.get("POSTGRES_USER"), password=env.get("POSTGRES_PASSWORD") or None,
                    connect_timeout=int(env.get("POSTGRES_CONNECT_TIMEOUT", "5")),
                    options=f"-c search_path={schema}" if schema else None, autocommit=True)
            return cls(connect(), postgres=True, description=f"{store.description}, view_* tables", reconnect=connect)
        path = env.get("SQLITE_DBNAME", ":memory:")
        if path != ":memory:" and "mode=memory" not in path:
            path = str(Path(path).with_name(Path(path).stem + ".views.sqlite"))
            _create_private(Path(path))
        else:
            path = ":memory:"
        connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=SQLITE_BUSY_TIMEOUT_S)
        connection.execute("PRAGMA journal_mode=WAL")
        return cls(connection, postgres=False, description=f"SQLite {path}")

    @contextmanager
    def transaction(self) -> Iterator[ViewCursor]:
        """One database transaction: committed when the block ends, rolled back if it raises."""
        if self.postgres:
            connection = self._live_connection()
            with connection.transaction(), connection.cursor() as cursor:
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
        """Run `CREATE TABLE IF NOT EXISTS` statements in one transaction. On PostgreSQL two
        processes creating the same table at once collide in its catalogue (a duplicate type,
        "tuple concurrently updated"), so the transaction first takes the store's set-up lock
        (`application.schema_lock`); on SQLite `BEGIN IMMEDIATE` already serialises them."""
        with self.transaction() as cursor:
            if self.postgres:
                lock_schema_setup_in_transaction(cursor)
            for statement in statements:
                cursor.execute(statement)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self.transaction() as cursor:
            return cursor.execute(sql, params).fetchall()

    def position(self, projection: str) -> int:
        rows = self.query(f"SELECT position FROM {POSITIONS_TABLE} WHERE projection = ?", (projection,))
        return rows[0][0] if rows else 0

    def _live_connection(self) -> Any:
        """The PostgreSQL connection, opened anew when the server closed it (a restart): psycopg
        never reopens one, so every later call would fail with "the connection is lost". A server
        still away raises psycopg.OperationalError here, for the caller to retry later."""
        if self._connection.closed and self._reconnect is not None:
            self._connection = self._reconnect()
        return self._connection

    def close(self) -> None:
        self._reconnect = None  # closed on purpose: it stays closed
        self._connection.close()
