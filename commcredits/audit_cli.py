"""`commcredits audit verify|checkpoint|export`: the event store and the audit ledger for auditors.

`verify` checks the event store against its seals (`projections.store_verify`: every event
against the digest sealed in its transaction, the seal chain, and each `--checkpoint` given),
then brings the ledger (and the balance view it is checked against) up to the end of the store's
log and checks it (`projections.ledger_verify`). It exits 0 when every check passes and 1 naming
the first problem (all problems follow on stderr); a stored event it cannot read is one of them,
never a traceback. `checkpoint` checks the seal chain and prints its head as one token
(`ck1-<position>-<seal>`) to keep outside the store: `verify --checkpoint TOKEN` later fails if
the history up to that position changed, even when every seal after it was rewritten to match.
`export` writes the journal, one line per posting (CSV) or one entry per line (JSON Lines), with
the chain hashes, so it can be checked outside this system. In the CSV, for spreadsheets, the
organization id (the one text from input) is made safe to open (`commcredits.spreadsheet_text`);
the hashes cover the id as stored, which the JSON Lines carry as it is.
"""

import csv
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import orjson
import psycopg
import typer
from eventsourcing.persistence import PersistenceError

from application.billing_application import BillingApplication
from application.seal_chain import Checkpoint
from application.settings import SettingsError, StoreSettings, store_from_environment
from commcredits.composition import open_application
from commcredits.spreadsheet_text import csv_text
from projections.balance_view import BalanceView
from projections.ledger import Ledger, ledger_entries
from projections.ledger_verify import Verification, verify_ledger
from projections.projector import Projector
from projections.runner import catch_up
from projections.sources import StoreLog
from projections.store_verify import StoreVerification, verify_store
from projections.view_database import ViewDatabase

EXIT_FAILED, EXIT_USAGE, EXIT_STORE_UNAVAILABLE = 1, 2, 3
CSV_COLUMNS = ("number", "position", "org", "event_type", "account", "debit", "credit", "event_digest",
               "previous_hash", "hash")

audit = typer.Typer(no_args_is_help=True, help="The event store's seals and the audit ledger: verify them, "
                                                "checkpoint the seals, export the ledger.")


def register(app: typer.Typer) -> None:
    app.add_typer(audit, name="audit")


class ExportFormat(str, Enum):
    csv = "csv"
    jsonl = "jsonl"


@audit.command()
def verify(
    checkpoint: Annotated[Optional[list[str]], typer.Option(
        "--checkpoint", metavar="TOKEN", help="A token printed by `audit checkpoint` earlier: fail if the "
                                              "history up to its position changed since (repeatable).")] = None,
) -> None:
    """Check every stored event against its seal, then recompute the ledger and check every entry."""
    anchors = _checkpoints(checkpoint or [])
    with _opened() as (app, database):
        store = verify_store(app, anchors)
        ledger, head = _verify_ledger(app, database)
    _fail_on(store.problems + ledger.problems)
    typer.echo(f"ledger verified: {ledger.entries:,} entries for {ledger.events:,} money events, "
               f"{ledger.organizations:,} organization(s) balanced; chain head {head}")
    typer.echo(f"store verified: {store.events:,} events match their seals in {store.batches:,} sealed batch(es)"
               f"{f', {store.checkpoints} checkpoint(s) matched' if anchors else ''}; seal chain head "
               f"{store.head.token}")


@audit.command()
def checkpoint() -> None:
    """Print the seal chain's head as a token to keep outside the store (for verify --checkpoint)."""
    with _opened(views=False) as (app, _):
        store: StoreVerification = verify_store(app, readable=False)
    _fail_on(store.problems)
    typer.echo(store.head.token)
    typer.echo(f"seal chain head: position {store.head.position}, seal {store.head.seal.hex()} "
               f"({store.events:,} events in {store.batches:,} sealed batch(es))", err=True)


def _checkpoints(tokens: list[str]) -> list[Checkpoint]:
    try:
        return [Checkpoint.parse(token) for token in tokens]
    except ValueError as error:
        typer.echo(f"commcredits: {error}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def _verify_ledger(app: BillingApplication, database: ViewDatabase) -> tuple[Verification, str]:
    """The ledger's verification and its chain head. A stored event the projections cannot
    apply or read (the store's check names it) is a problem of the verification, not a crash."""
    ledger, balances = Ledger(), BalanceView()
    try:
        for projection in (ledger, balances):
            catch_up(Projector(projection, database), StoreLog(app))
        result = verify_ledger(app, database, ledger, balances)
    except (PersistenceError, psycopg.Error, sqlite3.Error):
        raise
    except Exception as error:  # a stored event the projections cannot take
        result = Verification()
        result.found(f"the ledger cannot be brought up to date and checked: {type(error).__name__}: {error}")
        return result, "-"
    head = database.query(f"SELECT hash FROM {ledger.entries} ORDER BY number DESC LIMIT 1")
    return result, head[0][0] if head else "-"


def _fail_on(problems: list[str]) -> None:
    if problems:
        typer.echo(f"commcredits: audit_failed: {problems[0]}", err=True)
        for problem in problems[1:]:
            typer.echo(f"  also: {problem}", err=True)
        raise typer.Exit(EXIT_FAILED)


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
                writer.writerow((number, position, csv_text(org), event_type, line["account"], line["debit"],
                                 line["credit"], digest, previous_hash, entry_hash))
        else:
            target.write(orjson.dumps({"number": number, "position": position, "org": org, "event_type": event_type,
                                       "lines": postings, "event_digest": digest, "previous_hash": previous_hash,
                                       "hash": entry_hash}).decode() + "\n")
    return written


@contextmanager
def _opened(views: bool = True) -> Iterator[tuple[BillingApplication, ViewDatabase | None]]:
    try:
        store: StoreSettings = store_from_environment()
    except SettingsError as error:
        typer.echo(f"commcredits: {error}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    app = database = None
    try:
        app = open_application(store)
        database = ViewDatabase.for_store(store) if views else None
    except Exception as error:  # the store or the view database does not answer
        if app is not None:
            app.close()
        typer.echo(f"commcredits: event store unavailable: {type(error).__name__}: {error}", err=True)
        raise typer.Exit(EXIT_STORE_UNAVAILABLE) from None
    try:
        yield app, database
    finally:
        if database is not None:
            database.close()
        app.close()


@contextmanager
def _ledger() -> Iterator[tuple[BillingApplication, ViewDatabase, Ledger, BalanceView]]:
    with _opened() as (app, database):
        ledger, balances = Ledger(), BalanceView()
        for projection in (ledger, balances):
            catch_up(Projector(projection, database), StoreLog(app))
        yield app, database, ledger, balances
