"""What the commands that read a projection share (`report`, `statement`, `recommend`): the store
from the environment, the view caught up with it first, and every failure as a message and an
exit status (1: a SPEC code such as `unknown_organization`; 2: bad usage; 3: the store or its
view database does not answer, or other processes keep moving the view)."""

import sqlite3
import sys
from collections.abc import Callable
from typing import NoReturn, TypeVar

import psycopg
import typer
from eventsourcing.persistence import PersistenceError

from application.billing_application import BillingApplication
from application.settings import SettingsError, StoreSettings, store_from_environment
from commcredits.composition import open_application
from projections.projector import ConcurrentProjector, Projection, Projector
from projections.runner import catch_up
from projections.sources import StoreLog
from projections.view_database import ViewDatabase

EXIT_REJECTED, EXIT_USAGE, EXIT_STORE_UNAVAILABLE = 1, 2, 3
T = TypeVar("T")


def fail(message: str, status: int) -> NoReturn:
    typer.echo(f"commcredits: {message}", err=True)
    raise typer.Exit(status)


def read_caught_up(app: BillingApplication, store: StoreSettings, projection: Projection,
                   read: Callable[[ViewDatabase], T]) -> T:
    """`read(database)` on the projection's tables once they hold everything the store holds."""
    database = ViewDatabase.for_store(store)
    try:
        catch_up(Projector(projection, database), StoreLog(app))
        return read(database)
    finally:
        database.close()


def read_view(projection: Projection, read: Callable[[BillingApplication, StoreSettings], T]) -> T:
    """Open the store the environment names, run `read(app, store)`, and turn failures into exits."""
    try:
        store = store_from_environment()
    except SettingsError as error:
        fail(str(error), EXIT_USAGE)
    try:
        app = open_application(store)
    except PersistenceError as error:
        fail(f"event store unavailable: {store.description}: {error}", EXIT_STORE_UNAVAILABLE)
    try:
        return read(app, store)
    except (PersistenceError, psycopg.Error, sqlite3.Error) as error:  # the store or its view database
        fail(f"event store unavailable: {store.description}: {type(error).__name__}: {error}",
             EXIT_STORE_UNAVAILABLE)
    except ConcurrentProjector as error:
        fail(f"the {projection.name} view is being updated by other processes; try again: {error}",
             EXIT_STORE_UNAVAILABLE)
    finally:
        app.close()


def write_output(content: bytes, output) -> None:
    """To stdout, or to the file asked for (exit 2 when it cannot be written)."""
    if output is None:
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        return
    try:
        output.write_bytes(content)
    except OSError as error:
        fail(f"{output}: cannot be written: {error.strerror or error}", EXIT_USAGE)
