"""`commcredits run`: the live pipeline (docs/pipeline.md)."""

import logging
import signal
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from application.future_guard import FutureGuard
from application.private_files import create_private_file
from application.reference_data import ReferenceDataError
from application.settings import (
    SettingsError,
    future_tolerance_from_environment,
    private_data_dir,
    store_from_environment,
)
from commcredits.collector import tune_collector
from commcredits.live_pipeline import ALERTS, ALL_ROLES, CONSUMER, RELAY, LivePipeline, PipelineConfig
from consumers.alerts.settings import alert_settings_from_environment
from messaging.topics import bootstrap_servers_from_environment, topics_from_environment

STATUS_INTERVAL_S = 5.0
BROKER_LOG_NAME = "embedded-broker.log"
EXIT_FAILED, EXIT_USAGE = 1, 2


class Role(str, Enum):
    all = "all"
    consumer = CONSUMER
    relay = RELAY
    alerts = ALERTS


def _private_broker_log() -> Path:
    """The embedded broker's log in the data directory, created 0600 like the store beside it."""
    path = private_data_dir() / BROKER_LOG_NAME
    try:
        create_private_file(path)
    except OSError as error:
        raise SettingsError(f"cannot create the broker log {path}: {error.strerror or error}") from None
    return path


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("demo")(demo)


def demo(
    organizations: Annotated[int, typer.Option(min=1, help="Organizations (the last one is on NCE).")] = 4,
    users: Annotated[int, typer.Option(min=1, help="Users across the organizations.")] = 400,
    cdrs: Annotated[int, typer.Option(min=1, help="Calls in the month.")] = 20_000,
    seed: Annotated[int, typer.Option(help="Seed of the generated month.")] = 2026,
    days: Annotated[int, typer.Option(min=1, help="Days the month's calls span (office hours on weekdays).")] = 30,
    keep: Annotated[Optional[Path], typer.Option(help="Keep the event store in this directory "
                                                      "(default: a temporary one, removed at the end).")] = None,
    authorize: Annotated[bool, typer.Option(
        "--authorize/--no-authorize",
        help="The switch asks before each billable call and cuts it at max_seconds (SPEC §13); "
             "off: every call is connected and nothing is asked.")] = True,
) -> None:
    """Run a realistic synthetic month through the live pipeline and print a summary."""
    import tempfile

    from commcredits.demo import run_demo

    logging.basicConfig(level=logging.ERROR, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # its "connection refused" while the embedded broker starts
    say = lambda text: typer.echo(f"demo: {text}", err=True)  # noqa: E731
    with tempfile.TemporaryDirectory(prefix="commcredits-demo-") as temporary:
        directory = keep or Path(temporary)
        directory.mkdir(parents=True, exist_ok=True)
        result = run_demo(directory, organizations=organizations, users=users, cdrs=cdrs, seed=seed, days=days,
                          authorize=authorize, say=say)
    typer.echo(result.summary, nl=False)
    typer.echo("\n" + result.alerts, nl=False)
    typer.echo(f"\npipeline: {result.published_cdrs} CDR messages published and rated through Kafka in "
               f"{result.seconds:.1f} s ({result.published_cdrs / result.seconds:,.0f}/s), "
               f"{result.dead_letters} parked on the dead-letter topic; {result.relayed_events} of "
               f"{result.stored_events} stored events relayed to the events topic"
               + (f"; event store kept in {keep}" if keep else ""))


def run(
    rates: Annotated[Optional[Path], typer.Option(help="Rate card CSV (default: the built-in card).")] = None,
    catalog: Annotated[Optional[Path], typer.Option(help="Licence catalogue JSON (default: SPEC §5).")] = None,
    role: Annotated[Role, typer.Option(help="Run everything, or only the CDR consumer (with the expiry "
                                            "scheduler), only the event relay, or only the alert consumer "
                                            "(docs/alerts.md).")] = Role.all,
    partitions: Annotated[int, typer.Option(help="Partitions of the CDR topic when it is created.")] = 4,
    batch_size: Annotated[Optional[int], typer.Option(
        min=1, help="CDRs per store transaction and events per relay batch (default 2000 and 1000): "
                    "larger is faster, smaller redoes less after a crash.")] = None,
    wall_clock_expiry: Annotated[bool, typer.Option(
        "--wall-clock-expiry/--no-wall-clock-expiry",
        help="Expire funds when the wall clock reaches them (off: only CDR times move the engine's clock, "
             "as in simulate; for replaying history).")] = True,
) -> None:
    """Run the live pipeline: CDRs from Kafka rated into the event store, events relayed to Kafka.

    With no KAFKA_BOOTSTRAP_SERVERS an embedded broker (memory only) is started on a free port.
    Stops cleanly on SIGTERM or Ctrl-C, finishing the batch in hand.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    logging.getLogger("kafka").setLevel(logging.WARNING)  # kafka-python narrates every connection at INFO
    log = logging.getLogger("commcredits.run")
    roles = ALL_ROLES if role is Role.all else frozenset({role.value})
    try:  # every setting, before anything starts: a bad one is exit 2 now, not a failure hours later
        alerts, future_guard = alert_settings_from_environment(), FutureGuard(future_tolerance_from_environment())
        topics, bootstrap_servers = topics_from_environment(), bootstrap_servers_from_environment()
        store = store_from_environment()  # after the others: it creates the SQLite file
        broker_log = None if bootstrap_servers else _private_broker_log()
    except SettingsError as error:
        typer.echo(f"commcredits: {error}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    config = PipelineConfig(store=store, topics=topics, rates=rates, catalog=catalog,
                            bootstrap_servers=bootstrap_servers, cdr_partitions=partitions,
                            broker_log=broker_log, expire_by_wall_clock=wall_clock_expiry,
                            batch_size=batch_size, alerts=alerts, future_guard=future_guard, roles=roles)
    pipeline = LivePipeline(config)
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda *_: pipeline.stop_requested.set())
    try:
        pipeline.start()
        tune_collector()  # after start-up: what it loaded is frozen out of collections
        if pipeline.broker is not None:
            typer.echo(f"embedded broker at {pipeline.broker.bootstrap_servers} (publish CDRs there: "
                       f"KAFKA_BOOTSTRAP_SERVERS={pipeline.broker.bootstrap_servers})", err=True)
        while not pipeline.stop_requested.wait(STATUS_INTERVAL_S):
            log.info(pipeline.status())
    except ReferenceDataError as error:
        typer.echo(f"commcredits: {error}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    finally:
        pipeline.stop()
    log.info("stopped: %s", pipeline.status())
    if pipeline.failures:
        typer.echo(f"commcredits: the pipeline failed: {'; '.join(pipeline.failures)}", err=True)
        raise typer.Exit(EXIT_FAILED)
