"""The `commcredits` command line."""

import os
import sys
import tempfile
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from application.reference_data import ReferenceDataError, load_catalog, load_rate_card
from application.settings import memory_store, sqlite_store
from commcredits import admin_cli, pipeline_cli
from commcredits.composition import open_application

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="commcredits: prepaid telephony credit billing engine.")

EXIT_USAGE = 2


@app.callback()
def _commands() -> None:
    """commcredits: prepaid telephony credit billing engine."""


class SimulationStore(str, Enum):
    memory = "memory"
    sqlite_memory = "sqlite-memory"
    sqlite_file = "sqlite-file"


def fail(message: str, code: int = EXIT_USAGE) -> None:
    typer.echo(f"commcredits: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def simulate(
    file: Annotated[Path, typer.Argument(help="JSON Lines of commands and CDRs (SPEC §11); - for stdin.")],
    rates: Annotated[Optional[Path], typer.Option(help="Rate card CSV (default: the built-in card).")] = None,
    catalog: Annotated[Optional[Path], typer.Option(help="Licence catalogue JSON (default: SPEC §5).")] = None,
    store: Annotated[SimulationStore, typer.Option(help="Event store for the run; sqlite-file is a temporary file "
                                                        "(bounded memory for huge inputs).")] = SimulationStore.sqlite_file,
    summary: Annotated[bool, typer.Option("--summary", help="Print a readable summary instead of the JSON report.")] = False,
) -> None:
    """Apply a scenario through the real application and print the result as JSON."""
    from commcredits.simulate import simulate as run_simulation

    try:
        rate_card, loaded_catalog = load_rate_card(rates), load_catalog(catalog)
    except ReferenceDataError as error:
        fail(str(error))
    try:
        source = sys.stdin.buffer if str(file) == "-" else open(file, "rb")
    except OSError as error:
        fail(f"input file {file}: cannot be read: {error.strerror or error}")
    with source, tempfile.TemporaryDirectory(prefix="commcredits-simulate-") as workdir:
        if store is SimulationStore.memory:
            settings = memory_store()
        elif store is SimulationStore.sqlite_memory:
            settings = sqlite_store(":memory:")
        else:
            settings = sqlite_store(os.path.join(workdir, "events.sqlite"))
        if summary:
            _print_summary(source, settings, rate_card, loaded_catalog)
        else:
            run_simulation(source, settings, rate_card, loaded_catalog, sys.stdout.buffer)
        sys.stdout.buffer.flush()


def _print_summary(source, settings, rate_card, catalog) -> None:
    import time

    from application.bounded_lines import bounded_lines
    from commcredits.simulate import Simulation, report_document
    from commcredits.summary import render_summary

    started = time.perf_counter()
    app = open_application(settings)
    simulation = Simulation(app, rate_card, catalog, store_is_new=True)
    simulation.run(bounded_lines(source))
    elapsed = time.perf_counter() - started
    typer.echo(render_summary(report_document(app, simulation.log), simulation.log.lines, elapsed), nl=False)
    app.close()


admin_cli.register(app)
pipeline_cli.register(app)


from commcredits import publish_cli  # noqa: E402  (publish-cdrs: docs/pipeline-tools.md)

publish_cli.register(app)

from commcredits import project_cli  # noqa: E402  (project: the read models)

project_cli.register(app)

from commcredits import report_cli  # noqa: E402  (report usage: the PSTN usage report)

report_cli.register(app)

from commcredits import audit_cli  # noqa: E402  (audit verify|export: the ledger)

audit_cli.register(app)

from commcredits import statement_cli  # noqa: E402  (statement: monthly statements, docs/statements.md)

statement_cli.register(app)

from commcredits import recommend_cli  # noqa: E402  (recommend: credits plan from past usage, docs/recommend.md)

recommend_cli.register(app)

from commcredits import alerts_cli  # noqa: E402  (alerts list|failed|retry: docs/alerts.md)

alerts_cli.register(app)

from commcredits import contacts_cli  # noqa: E402  (contacts set|show: who receives the alerts)

contacts_cli.register(app)

from commcredits import dead_letters_cli  # noqa: E402  (dead-letters list|payload: oversized originals)

dead_letters_cli.register(app)

from commcredits import serve_cli  # noqa: E402  (serve, keys: the HTTP API, docs/authorization.md)

serve_cli.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
