"""`commcredits audit verify|export` on a file store: 0 and a summary on an intact history, 1 and
the first problem on a tampered one; the export carries every posting and the chain hashes."""

import csv
import io
import sqlite3
from decimal import Decimal

import orjson
from typer.testing import CliRunner

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from application.settings import sqlite_store
from commcredits.cli import app
from commcredits.simulate import Simulation
from projections.ledger_rules import GENESIS_HASH
from tests.support import SPEC_EXAMPLES, SPEC_RATES


def history(tmp_path) -> dict[str, str]:
    path = tmp_path / "events.sqlite"
    application = BillingApplication(env=sqlite_store(path).env)
    Simulation(application, SPEC_RATES, load_catalog(None)).run(
        (SPEC_EXAMPLES / "02-expiry-and-recharge.jsonl").read_bytes().splitlines())
    application.close()
    return {"COMMCREDITS_DATABASE_URL": f"sqlite:///{path}"}


def money_events_of_the_example() -> int:
    """From the SPEC example's expected report: a lot added per lot, an expiry per lot that lost
    funds, a posting per call that cost something."""
    expected = orjson.loads((SPEC_EXAMPLES / "02-expiry-and-recharge.expected.json").read_bytes())
    lots = [lot for organization in expected["organizations"].values() for lot in organization["lots"]]
    charged = [call for call in expected["calls"].values() if Decimal(call.get("charge") or "0") > 0]
    return len(lots) + sum(1 for lot in lots if Decimal(lot["expired"]) > 0) + len(charged)


def test_verify_passes_on_an_intact_history_and_names_the_head_of_the_chain(tmp_path):
    result = CliRunner().invoke(app, ["audit", "verify"], env=history(tmp_path))
    assert result.exit_code == 0, result.output
    count = money_events_of_the_example()
    assert result.output.startswith(f"ledger verified: {count} entries for {count} money events, "
                                    "1 organization(s) balanced; chain head ")


def test_verify_fails_with_the_first_problem_when_the_ledger_was_changed(tmp_path):
    env = history(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["audit", "verify"], env=env).exit_code == 0
    views = tmp_path / "events.views.sqlite"
    with sqlite3.connect(views) as connection:
        connection.execute("UPDATE view_ledger_entries SET lines = replace(lines, '3.5000', '9.5000') WHERE number = 1")
    result = runner.invoke(app, ["audit", "verify"], env=env)
    assert result.exit_code == 1
    assert result.stderr.startswith("commcredits: audit_failed: entry 1 (event 3, CreditAccount.FundsAdded): "
                                    "its hash does not match its contents")


def test_export_writes_every_posting_with_the_chain(tmp_path):
    env = history(tmp_path)
    runner = CliRunner()
    as_csv = runner.invoke(app, ["audit", "export", "--format", "csv"], env=env)
    as_jsonl = runner.invoke(app, ["audit", "export", "--format", "jsonl"], env=env)
    assert as_csv.exit_code == as_jsonl.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    entries = [orjson.loads(line) for line in as_jsonl.stdout.splitlines()]
    assert len(entries) == money_events_of_the_example() and len(rows) == sum(len(entry["lines"]) for entry in entries)
    assert entries[0]["previous_hash"] == GENESIS_HASH
    assert all(later["previous_hash"] == earlier["hash"] for earlier, later in zip(entries, entries[1:]))
    assert sum(Decimal(row["debit"]) for row in rows) == sum(Decimal(row["credit"]) for row in rows)
    output = tmp_path / "journal.jsonl"
    written = runner.invoke(app, ["audit", "export", "--format", "jsonl", "--output", str(output)], env=env)
    assert written.exit_code == 0 and output.read_text() == as_jsonl.stdout
