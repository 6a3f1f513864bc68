"""`commcredits project` and `commcredits replay`: the projections (read models).

Each projection has its own tables and position in the view database beside the store
(`projections.view_database`). `project --once` catches every projection up and exits, printing
progress and throughput; without `--once` it follows the store until SIGTERM or Ctrl-C.
`replay NAME` rebuilds one projection from scratch into fresh tables and says whether the result
equals the live one (exit 1 when it does not).
"""

import logging
import signal
import sys
import threading
import time
from typing import Annotated

import typer

from application.settings import SettingsError, store_from_environment
from commcredits.composition import open_application
from projections.balance_view import BalanceView
from projections.ledger import Ledger
from projections.projector import Projector
from projections.replay import replay as rebuild
from projections.runner import catch_up, run_projectors
from projections.sources import StoreLog
from projections.statements import Statements
from projections.usage_report import UsageReport
from projections.view_database import ViewDatabase

EXIT_DIFFERENT, EXIT_USAGE, EXIT_STORE_UNAVAILABLE = 1, 2, 3
PROGRESS_EVERY_S = 2.0
# name → class taking the table prefix
PROJECTIONS = {"balance": BalanceView, "usage": UsageReport, "ledger": Ledger, "statements": Statements}


def register(app: typer.Typer) -> None:
    app.command("project")(project)
    app.command("replay")(replay)


def project(
    once: Annotated[bool, typer.Option("--once", help="Catch up with the store, then exit.")] = False,
) -> None:
    """Keep the projections (balance view, usage report, audit ledger, statements) up to date with the event store."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    log = logging.getLogger("commcredits.project")
    store, app, database = _open()
    projectors = [Projector(make(name), database) for name, make in PROJECTIONS.items()]
    log_source = StoreLog(app)
    try:
        if once:
            for projector in projectors:
                _catch_up_with_progress(projector, log_source)
            return
        stop = threading.Event()
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signal_number, lambda *_: stop.set())
        log.info("projecting %s from %s into %s", ", ".join(p.projection.name for p in projectors),
                 store.description, database.description)
        run_projectors(projectors, log_source, stop,
                       on_applied=lambda name, count: log.info("%s: %d event(s) applied", name, count))
    finally:
        database.close()
        app.close()


def replay(
    name: Annotated[str, typer.Argument(help=f"The projection: {', '.join(PROJECTIONS)}.")],
    keep: Annotated[bool, typer.Option("--keep", help="Keep the rebuilt tables (<name>_replay) to inspect them.")] = False,
) -> None:
    """Rebuild a projection from the whole event history and compare it with the live one."""
    if name not in PROJECTIONS:
        typer.echo(f"commcredits: no projection {name!r}; there are: {', '.join(PROJECTIONS)}", err=True)
        raise typer.Exit(EXIT_USAGE)
    _, app, database = _open()
    try:
        result = rebuild(PROJECTIONS[name], name, database, StoreLog(app), keep=keep,
                         progress=_progress_printer(f"{name} (replay)", 0))
    finally:
        database.close()
        app.close()
    typer.echo(f"{name}: rebuilt from {result.end:,} stored events ({result.applied:,} applied) in "
               f"{result.seconds:.1f} s, {result.events_per_second:,.0f} events/s")
    for table in result.live:
        same = "equal" if result.live[table] == result.rebuilt.get(table) else "DIFFERENT"
        typer.echo(f"  {table:<14} live {result.live[table][:16]}  rebuilt {result.rebuilt[table][:16]}  {same}")
    if not result.equal:
        typer.echo(f"commcredits: the rebuilt {name} differs from the live one", err=True)
        raise typer.Exit(EXIT_DIFFERENT)


def _open():
    try:
        store = store_from_environment()
        return store, open_application(store), ViewDatabase.for_store(store)
    except SettingsError as error:
        typer.echo(f"commcredits: {error}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except Exception as error:  # the store or the view database does not answer
        typer.echo(f"commcredits: store unavailable: {type(error).__name__}: {error}", err=True)
        raise typer.Exit(EXIT_STORE_UNAVAILABLE) from None


def _progress_printer(label: str, first: int):
    started, last_report = time.monotonic(), [0.0]

    def progress(position: int, end: int) -> None:
        now = time.monotonic()
        if now - last_report[0] >= PROGRESS_EVERY_S or position >= end:
            last_report[0] = now
            rate = (position - first) / max(now - started, 1e-9)
            typer.echo(f"{label}: position {position:,} of {end:,} ({rate:,.0f} events/s)", err=True)

    return progress


def _catch_up_with_progress(projector: Projector, log_source: StoreLog) -> None:
    started = time.monotonic()
    applied = catch_up(projector, log_source,
                       progress=_progress_printer(projector.projection.name, projector.position()))
    elapsed = time.monotonic() - started
    typer.echo(f"{projector.projection.name}: {applied:,} event(s) applied in {elapsed:.1f} s; "
               f"at position {projector.position():,}")
