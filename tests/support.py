"""Helpers for tests: run scenarios through the real application and read the report."""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import orjson

from application.billing_application import BillingApplication
from application.reference_data import load_catalog, load_rate_card
from application.settings import memory_store
from commcredits.simulate import Simulation, report_document
from domain.catalog import Catalog
from domain.rates import RateCard

SPEC_EXAMPLES = Path(__file__).parent / "fixtures" / "spec-examples"
SPEC_RATES = load_rate_card(SPEC_EXAMPLES / "rates.csv")


def as_lines(commands: Iterable[dict[str, Any] | str | bytes]) -> list[bytes]:
    """JSON Lines from dicts (or raw text, for malformed lines)."""
    lines = []
    for command in commands:
        if isinstance(command, dict):
            lines.append(orjson.dumps(command))
        elif isinstance(command, str):
            lines.append(command.encode())
        else:
            lines.append(command)
    return lines


def simulate_lines(lines: Iterable[bytes], app: BillingApplication | None = None,
                   rate_card: RateCard = SPEC_RATES, catalog: Catalog | None = None) -> dict[str, Any]:
    """The SPEC §11 report of running `lines` on `app` (a fresh in-memory one by default)."""
    app = app or BillingApplication(env=memory_store().env)
    simulation = Simulation(app, rate_card, catalog or load_catalog(None))
    simulation.run(lines)
    return report_document(app, simulation.log)


def simulate_commands(commands: Iterable[dict[str, Any] | str | bytes], **options: Any) -> dict[str, Any]:
    return simulate_lines(as_lines(commands), **options)


def drop_table(app: BillingApplication, table: str) -> None:
    """Drop one of the store's tables, as if it were written by a version from before that table."""
    datastore = app.recorder.datastore
    qualified = f'"{datastore.schema}"."{table}"' if hasattr(datastore, "schema") else table
    with datastore.transaction(commit=True) as cursor:
        cursor.execute(f"DROP TABLE {qualified}")
