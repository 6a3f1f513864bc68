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

from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from application.billing_application import BillingApplication
from application.settings import StoreSettings
from commcredits.statement_render import render
from commcredits.view_commands import EXIT_REJECTED, EXIT_USAGE, fail, read_caught_up, read_view, write_output
from domain.errors import InvalidInput, UnknownOrganization
from projections.statement_queries import parse_month, statement
from projections.statements import Statements


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
        fail(error.message, EXIT_USAGE)
    write_output(render(_read_statement(org, month), statement_format.value), output)


def read_statement(app: BillingApplication, store: StoreSettings, org: str, month: str) -> dict[str, Any] | None:
    """The statement of `org` for `month` from a statements view brought up to date first (None:
    no such organization)."""
    view = Statements()
    return read_caught_up(app, store, view, lambda database: statement(database, view, org, month))


def _read_statement(org: str, month: str) -> dict[str, Any]:
    found = read_view(Statements(), lambda app, store: read_statement(app, store, org, month))
    if found is None:
        fail(str(UnknownOrganization(org)), EXIT_REJECTED)
    return found
