"""`commcredits project`: keep the projections (read models) up to date with the event store.

Each projection has its own tables and position in the view database beside the store
(`projections.view_database`). With `--once` it catches up and exits, printing progress and
throughput; otherwise it follows the store until SIGTERM or Ctrl-C.
"""

import logging
import signal
import sys
import threading
import time
from typing import Annotated

import typer

from commcredits.application import BillingApplication
from commcredits.settings import SettingsError, store_from_environment
from projections.balance_view import BalanceView
from projections.projector import Projector
from projections.runner import catch_up, run_projectors
from projections.sources import StoreLog
from projections.view_database import ViewDatabase

EXIT_USAGE, EXIT_STORE_UNAVAILABLE = 2, 3
PROGRESS_EVERY_S = 2.0


def register(app: typer.Typer) -> None:
    app.command("project")(project)


def project(
    once: Annotated[bool, typer.Option("--once", help="Catch up with the store, then exit.")] = False,
) -> None:
    """Keep the projections (the balance view) up to date with the event store."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    log = logging.getLogger("commcredits.project")
    try:
        store = store_from_environment()
        app = BillingApplication(env=store.env)
        database = ViewDatabase.for_store(store)
    except SettingsError as error:
        typer.echo(f"commcredits: {error}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except Exception as error:  # the store or the view database does not answer
        typer.echo(f"commcredits: store unavailable: {type(error).__name__}: {error}", err=True)
        raise typer.Exit(EXIT_STORE_UNAVAILABLE) from None
    projectors = [Projector(BalanceView(), database)]
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


def _catch_up_with_progress(projector: Projector, log_source: StoreLog) -> None:
    started, last_report = time.monotonic(), 0.0
    first = projector.position()

    def progress(position: int, end: int) -> None:
        nonlocal last_report
        now = time.monotonic()
        if now - last_report >= PROGRESS_EVERY_S or position >= end:
            last_report = now
            rate = (position - first) / max(now - started, 1e-9)
            typer.echo(f"{projector.projection.name}: position {position:,} of {end:,} ({rate:,.0f} events/s)", err=True)

    applied = catch_up(projector, log_source, progress=progress)
    elapsed = time.monotonic() - started
    typer.echo(f"{projector.projection.name}: {applied:,} event(s) applied in {elapsed:.1f} s; "
               f"at position {projector.position():,}")
