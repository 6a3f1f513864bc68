"""`commcredits audit verify|export`: the audit ledger for auditors.

Both commands first bring the ledger (and the balance view it is checked against) up to the end
of the store's log. `verify` exits 0 when every check passes and 1 naming the first problem
(all problems follow on stderr); `export` writes the journal, one line per posting (CSV) or one
entry per line (JSON Lines), with the chain hashes, so it can be checked outside this system.
"""

import csv
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import orjson
import typer

from commcredits.application import BillingApplication
from commcredits.settings import SettingsError, StoreSettings, store_from_environment
from projections.balance_view import BalanceView
from projections.ledger import Ledger, ledger_entries
from projections.ledger_verify import verify_ledger
from projections.projector import Projector
from projections.runner import catch_up
from projections.sources import StoreLog
from projections.view_database import ViewDatabase

EXIT_FAILED, EXIT_USAGE, EXIT_STORE_UNAVAILABLE = 1, 2, 3
CSV_COLUMNS = ("number", "position", "org", "event_type", "account", "debit", "credit", "event_digest",
               "previous_hash", "hash")

audit = typer.Typer(no_args_is_help=True, help="The audit ledger: verify it, export it.")


def register(app: typer.Typer) -> None:
    app.add_typer(audit, name="audit")


class ExportFormat(str, Enum):
    csv = "csv"
    jsonl = "jsonl"


@audit.command()
def verify() -> None:
    """Recompute the ledger from the events and check the chain, the balances and every entry."""
    with _ledger() as (app, database, ledger, balances):
        result = verify_ledger(app, database, ledger, balances)
        head = database.query(f"SELECT hash FROM {ledger.entries} ORDER BY number DESC LIMIT 1")
    if not result.ok:
        typer.echo(f"commcredits: audit_failed: {result.problems[0]}", err=True)
        for problem in result.problems[1:]:
            typer.echo(f"  also: {problem}", err=True)
        raise typer.Exit(EXIT_FAILED)
    typer.echo(f"ledger verified: {result.entries:,} entries for {result.events:,} money events, "
               f"{result.organizations:,} organization(s) balanced; chain head {head[0][0] if head else '-'}")


@audit.command()
def export(
    format: Annotated[ExportFormat, typer.Option("--format", help="csv (one row per posting) or jsonl "
                                                                  "(one entry per line).")] = ExportFormat.csv,
    output: Annotated[Optional[Path], typer.Option("--output", help="File to write (default: stdout).")] = None,
) -> None:
    """Write the journal with its chain hashes for an external auditor."""
    with _ledger() as (_, database, ledger, _balances):
        target = open(output, "w", newline="", encoding="utf-8") if output else sys.stdout
        try:
            written = _write(database, ledger, format, target)
        finally:
            if output:
                target.close()
    if output:
        typer.echo(f"{written:,} entries written to {output}", err=True)


def _write(database: ViewDatabase, ledger: Ledger, format: ExportFormat, target) -> int:
    writer = csv.writer(target) if format is ExportFormat.csv else None
    if writer:
        writer.writerow(CSV_COLUMNS)
    written = 0
    for number, position, org, event_type, digest, lines, previous_hash, entry_hash in ledger_entries(database, ledger):
        written += 1
        postings = orjson.loads(lines)
        if writer:
            for line in postings:
                writer.writerow((number, position, org, event_type, line["account"], line["debit"], line["credit"],
                                 digest, previous_hash, entry_hash))
        else:
            target.write(orjson.dumps({"number": number, "position": position, "org": org, "event_type": event_type,
                                       "lines": postings, "event_digest": digest, "previous_hash": previous_hash,
                                       "hash": entry_hash}).decode() + "\n")
    return written


@contextmanager
def _ledger() -> Iterator[tuple[BillingApplication, ViewDatabase, Ledger, BalanceView]]:
    try:
        store: StoreSettings = store_from_environment()
    except SettingsError as error:
        typer.echo(f"commcredits: {error}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    try:
        app = BillingApplication(env=store.env)
        database = ViewDatabase.for_store(store)
    except Exception as error:  # the store or the view database does not answer
        typer.echo(f"commcredits: event store unavailable: {type(error).__name__}: {error}", err=True)
        raise typer.Exit(EXIT_STORE_UNAVAILABLE) from None
    try:
        ledger, balances = Ledger(), BalanceView()
        for projection in (ledger, balances):
            catch_up(Projector(projection, database), StoreLog(app))
        yield app, database, ledger, balances
    finally:
        database.close()
        app.close()
