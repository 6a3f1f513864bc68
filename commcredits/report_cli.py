"""`commcredits report usage`: an organization's PSTN usage report (docs/reports.md).

Steps: read and check the arguments (nothing is opened for a bad window); open the store the
environment names and its view database; bring the usage view up to the end of the store's log
(so the report includes every call rated before the command started); read the organization's
calls that started in [--from, --to); write them to --output or stdout.

Exit status: 0 written, 1 `unknown_organization`, 2 bad usage (a date without an offset, an empty
window, XLSX to a terminal), 3 the event store or view database is unavailable.
"""

import sqlite3
import sys
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import psycopg
import typer
from eventsourcing.persistence import PersistenceError

from commcredits.application import BillingApplication
from commcredits.settings import SettingsError, StoreSettings, store_from_environment
from commcredits.usage_export import render
from domain.errors import InvalidInput, UnknownOrganization
from domain.timestamps import format_timestamp, parse_timestamp
from projections.projector import ConcurrentProjector, Projector
from projections.runner import catch_up
from projections.sources import StoreLog
from projections.usage_queries import UsageRow, usage_rows
from projections.usage_report import UsageReport
from projections.view_database import ViewDatabase

EXIT_REJECTED, EXIT_USAGE, EXIT_STORE_UNAVAILABLE = 1, 2, 3


class ReportFormat(str, Enum):
    csv = "csv"
    xlsx = "xlsx"
    json = "json"


report_commands = typer.Typer(no_args_is_help=True, help="Reports read from the event store's views.")


def register(app: typer.Typer) -> None:
    app.add_typer(report_commands, name="report")


@report_commands.command("usage")
def usage(
    org: Annotated[str, typer.Argument(help="Organization id.")],
    start: Annotated[str, typer.Option("--from", help="First instant included (ISO 8601 with offset).")],
    end: Annotated[str, typer.Option("--to", help="First instant excluded (ISO 8601 with offset).")],
    report_format: Annotated[ReportFormat, typer.Option("--format", help="csv, xlsx or json.")] = ReportFormat.csv,
    output: Annotated[Optional[Path], typer.Option("--output", help="File to write (default: stdout; "
                                                                    "required for xlsx).")] = None,
) -> None:
    """The PSTN usage report of ORG: one row per rated call that started in [--from, --to)."""
    window = _window(start, end)
    if report_format is ReportFormat.xlsx and output is None:
        _fail("--format xlsx writes a binary workbook: give --output FILE.xlsx", EXIT_USAGE)
    rows = _read_rows(org, *window)
    _write(render(rows, report_format.value), output)


def read_usage_rows(app: BillingApplication, store: StoreSettings, org: str, start: datetime,
                    end: datetime) -> list[UsageRow] | None:
    """The calls of `org` in [start, end) from a usage view brought up to date first (None: no
    such organization)."""
    return _read_from_view(app, store, org, start, end)


def _read_from_view(app: BillingApplication, store: StoreSettings, org: str, start: datetime,
                    end: datetime) -> list[UsageRow] | None:
    database = ViewDatabase.for_store(store)
    try:
        view = UsageReport()
        catch_up(Projector(view, database), StoreLog(app))
        return usage_rows(database, view, org, start, end)
    finally:
        database.close()


def _window(start: str, end: str) -> tuple[datetime, datetime]:
    try:
        window = parse_timestamp(start, field="--from"), parse_timestamp(end, field="--to")
    except InvalidInput as error:
        _fail(error.message, EXIT_USAGE)
    if window[0] >= window[1]:
        _fail(f"--from ({format_timestamp(window[0])}) must be before --to ({format_timestamp(window[1])}): "
              "the report covers calls that started in [--from, --to)", EXIT_USAGE)
    return window


def _read_rows(org: str, start: datetime, end: datetime) -> list[UsageRow]:
    try:
        store = store_from_environment()
    except SettingsError as error:
        _fail(str(error), EXIT_USAGE)
    try:
        app = BillingApplication(env=store.env)
    except PersistenceError as error:
        _fail(f"event store unavailable: {store.description}: {error}", EXIT_STORE_UNAVAILABLE)
    try:
        rows = read_usage_rows(app, store, org, start, end)
    except (PersistenceError, psycopg.Error, sqlite3.Error) as error:  # the store or its view database
        _fail(f"event store unavailable: {store.description}: {type(error).__name__}: {error}",
              EXIT_STORE_UNAVAILABLE)
    except ConcurrentProjector as error:
        _fail(f"the usage view is being updated by other processes; try again: {error}", EXIT_STORE_UNAVAILABLE)
    finally:
        app.close()
    if rows is None:
        _fail(str(UnknownOrganization(org)), EXIT_REJECTED)
    return rows


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
