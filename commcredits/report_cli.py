"""`commcredits report usage`: an organization's PSTN usage report (docs/reports.md).

Steps: read and check the arguments (nothing is opened for a bad window); open the store the
environment names and its view database; bring the usage view up to the end of the store's log
(so the report includes every call rated before the command started); read the organization's
calls that started in [--from, --to); write them to --output or stdout.

Exit status: 0 written, 1 `unknown_organization`, 2 bad usage (a date without an offset, an empty
window, XLSX to a terminal), 3 the event store or view database is unavailable.
"""

from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from application.billing_application import BillingApplication
from application.settings import StoreSettings
from commcredits.usage_export import render
from commcredits.view_commands import EXIT_REJECTED, EXIT_USAGE, fail, read_caught_up, read_view, write_output
from domain.errors import InvalidInput, UnknownOrganization
from domain.timestamps import format_timestamp, parse_timestamp
from projections.usage_queries import UsageRow, usage_rows
from projections.usage_report import UsageReport


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
        fail("--format xlsx writes a binary workbook: give --output FILE.xlsx", EXIT_USAGE)
    rows = usage_rows_or_exit(org, *window)
    write_output(render(rows, report_format.value), output)


def read_usage_rows(app: BillingApplication, store: StoreSettings, org: str, start: datetime,
                    end: datetime) -> list[UsageRow] | None:
    """The calls of `org` in [start, end) from a usage view brought up to date first (None: no
    such organization)."""
    view = UsageReport()
    return read_caught_up(app, store, view, lambda database: usage_rows(database, view, org, start, end))


def _window(start: str, end: str) -> tuple[datetime, datetime]:
    try:
        window = parse_timestamp(start, field="--from"), parse_timestamp(end, field="--to")
    except InvalidInput as error:
        fail(error.message, EXIT_USAGE)
    if window[0] >= window[1]:
        fail(f"--from ({format_timestamp(window[0])}) must be before --to ({format_timestamp(window[1])}): "
              "the report covers calls that started in [--from, --to)", EXIT_USAGE)
    return window


def usage_rows_or_exit(org: str, start: datetime, end: datetime) -> list[UsageRow]:
    """The calls of `org` in [start, end), or exit with the reason (unknown organization, store down)."""
    rows = read_view(UsageReport(), lambda app, store: read_usage_rows(app, store, org, start, end))
    if rows is None:
        fail(str(UnknownOrganization(org)), EXIT_REJECTED)
    return rows
