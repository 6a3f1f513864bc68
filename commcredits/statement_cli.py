"""`commcredits statement ORG --month YYYY-MM`: an organization's monthly statement
(docs/statements.md).

Steps: check the month (nothing is opened for a bad one); open the store the environment names
and its view database; bring the statements view up to the end of the store's log (so the
statement includes every event stored before the command started); read the statement; write it
as JSON, text or HTML to --output or stdout.

Exit status: 0 written, 1 `unknown_organization`, 2 bad usage (a month that is not `YYYY-MM`,
month 13, a year outside 2000-2199, an output file that cannot be written), 3 the event store or
view database is unavailable.
"""

import sqlite3
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, NoReturn, Optional

import psycopg
import typer
from eventsourcing.persistence import PersistenceError

from commcredits.application import BillingApplication
from commcredits.settings import SettingsError, StoreSettings, store_from_environment
from commcredits.statement_render import render
from domain.errors import InvalidInput, UnknownOrganization
from projections.projector import ConcurrentProjector, Projector
from projections.runner import catch_up
from projections.sources import StoreLog
from projections.statement_queries import parse_month, statement
from projections.statements import Statements
from projections.view_database import ViewDatabase

EXIT_REJECTED, EXIT_USAGE, EXIT_STORE_UNAVAILABLE = 1, 2, 3


class StatementFormat(str, Enum):
    json = "json"
    text = "text"
    html = "html"


def register(app: typer.Typer) -> None:
    app.command("statement")(statement_command)


def statement_command(
    org: Annotated[str, typer.Argument(help="Organization id.")],
    month: Annotated[str, typer.Option("--month", help="Calendar month in UTC, YYYY-MM.")],
    statement_format: Annotated[StatementFormat, typer.Option("--format", help="json, text or html.")] = (
        StatementFormat.json),
    output: Annotated[Optional[Path], typer.Option("--output", help="File to write (default: stdout).")] = None,
) -> None:
    """The monthly statement of ORG: opening balance, funds added, charges, expiry, closing balance."""
    try:
        month = parse_month(month, field="--month")
    except InvalidInput as error:
        _fail(error.message, EXIT_USAGE)
    _write(render(_read_statement(org, month), statement_format.value), output)


def read_statement(app: BillingApplication, store: StoreSettings, org: str, month: str) -> dict[str, Any] | None:
    """The statement from a statements view brought up to date first (None: no such organization)."""
    database = ViewDatabase.for_store(store)
    try:
        view = Statements()
        catch_up(Projector(view, database), StoreLog(app))
        return statement(database, view, org, month)
    finally:
        database.close()


def _read_statement(org: str, month: str) -> dict[str, Any]:
    try:
        store = store_from_environment()
    except SettingsError as error:
        _fail(str(error), EXIT_USAGE)
    try:
        app = BillingApplication(env=store.env)
    except PersistenceError as error:
        _fail(f"event store unavailable: {store.description}: {error}", EXIT_STORE_UNAVAILABLE)
    try:
        found = read_statement(app, store, org, month)
    except (PersistenceError, psycopg.Error, sqlite3.Error) as error:  # the store or its view database
        _fail(f"event store unavailable: {store.description}: {type(error).__name__}: {error}",
              EXIT_STORE_UNAVAILABLE)
    except ConcurrentProjector as error:
        _fail(f"the statements view is being updated by other processes; try again: {error}",
              EXIT_STORE_UNAVAILABLE)
    finally:
        app.close()
    if found is None:
        _fail(str(UnknownOrganization(org)), EXIT_REJECTED)
    return found


def _write(content: bytes, output: Optional[Path]) -> None:
    if output is None:
        sys.stdout.buffer.write(content)
        sys.stdout.buffer.flush()
        return
    try:
        output.write_bytes(content)
    except OSError as error:
        _fail(f"{output}: cannot be written: {error.strerror or error}", EXIT_USAGE)


def _fail(message: str, status: int) -> NoReturn:
    typer.echo(f"commcredits: {message}", err=True)
    raise typer.Exit(status)
