"""One process at a time sets up a store's tables.

Setting up tables is not safe to run concurrently. On PostgreSQL, sessions running eventsourcing's
`CREATE TYPE`, `CREATE TABLE IF NOT EXISTS` and `CREATE OR REPLACE FUNCTION` at the same moment
fail with "tuple concurrently updated", a duplicate key in the catalogue or "relation already
exists"; on a new SQLite file, two processes both insert the library's tracking-migration row and
one fails. (`docker compose --scale` starts such processes together.) So whatever creates tables
at start-up holds a lock while it does, and only then:

- PostgreSQL: the advisory lock `SCHEMA_SETUP_LOCK_KEY` of the database. The application's set-up
  runs several transactions, so it holds the lock on a connection of its own
  (`schema_setup_lock`); the view database's set-up is one transaction and takes the
  transaction-level lock inside it (`lock_schema_setup_in_transaction`).
- SQLite file: an exclusive `flock` on `<file>.setup-lock` beside the store.

A start-up waits at most `SCHEMA_SETUP_TIMEOUT_S` for the lock, then fails as if the store did
not answer.
"""

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from eventsourcing.persistence import InfrastructureFactory, OperationalError
from eventsourcing.postgres import PostgresFactory
from eventsourcing.sqlite import SQLiteFactory

SCHEMA_SETUP_LOCK_KEY = 0x6363736368656D61  # b"ccschema": one key for every commcredits table set-up
SCHEMA_SETUP_TIMEOUT_S = 60
FILE_LOCK_POLL_S = 0.01


@contextmanager
def schema_setup_lock(factory: InfrastructureFactory) -> Iterator[None]:
    """Hold the store's set-up lock for the block (nothing to hold for an in-memory store)."""
    if isinstance(factory, PostgresFactory):
        with _advisory_lock(_connection_arguments(factory)):
            yield
    elif isinstance(factory, SQLiteFactory) and not factory.datastore.pool.is_sqlite_memory_mode:
        with _file_lock(f"{factory.datastore.pool.db_name}.setup-lock"):
            yield
    else:
        yield


def lock_schema_setup_in_transaction(cursor: Any) -> None:
    """Take the set-up lock for the rest of this PostgreSQL transaction (released at its end)."""
    cursor.execute(f"SET LOCAL lock_timeout = '{SCHEMA_SETUP_TIMEOUT_S}s'")
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_SETUP_LOCK_KEY,))


def _connection_arguments(factory: PostgresFactory) -> dict[str, Any]:
    pool = factory.datastore.pool
    arguments = {name: value for name, value in (pool.kwargs or {}).items() if name != "row_factory"}
    return {**arguments, "connect_timeout": max(1, round(pool.timeout))}


@contextmanager
def _advisory_lock(connection_arguments: dict[str, Any]) -> Iterator[None]:
    """The session-level lock, on a connection that is closed (and so releases it) at the end."""
    try:
        connection = psycopg.connect(**connection_arguments, autocommit=True)
    except psycopg.Error as error:
        raise OperationalError(f"cannot take the schema set-up lock: {error}") from error
    with connection:
        try:
            connection.execute(f"SET lock_timeout = '{SCHEMA_SETUP_TIMEOUT_S}s'")
            connection.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_SETUP_LOCK_KEY,))
        except psycopg.Error as error:  # another start-up held the lock too long
            raise OperationalError(f"cannot take the schema set-up lock: {error}") from error
        yield


@contextmanager
def _file_lock(path: str) -> Iterator[None]:
    """An empty file beside the store, readable by its owner only (like the store)."""
    deadline = time.monotonic() + SCHEMA_SETUP_TIMEOUT_S
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise OperationalError(f"cannot take the schema set-up lock {path}: another start-up "
                                           f"held it for {SCHEMA_SETUP_TIMEOUT_S} s") from None
                time.sleep(FILE_LOCK_POLL_S)
        yield
    finally:
        os.close(descriptor)  # releases the lock
