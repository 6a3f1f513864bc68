"""`commcredits project`: catches the balance view up with the store (`--once`), or follows it
until told to stop; either way the view ends equal to what `simulate` reports."""

import os
import signal
import subprocess
import sys
import time

import orjson
from typer.testing import CliRunner

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from application.settings import sqlite_store
from commcredits.cli import app
from commcredits.simulate import Simulation
from projections.balance_queries import organization_report
from projections.balance_view import BalanceView
from projections.view_database import ViewDatabase
from tests.support import SPEC_EXAMPLES, SPEC_RATES

LINES = (SPEC_EXAMPLES / "02-expiry-and-recharge.jsonl").read_bytes().splitlines()
EXPECTED = orjson.loads((SPEC_EXAMPLES / "02-expiry-and-recharge.expected.json").read_bytes())["organizations"]
FOLLOW_TIMEOUT_S = 60.0


def apply_lines(path, lines) -> None:
    application = BillingApplication(env=sqlite_store(path).env)
    Simulation(application, SPEC_RATES, load_catalog(None)).run(lines)
    application.close()


def view_of(path) -> dict:
    database = ViewDatabase.for_store(sqlite_store(path))
    try:
        return {org: organization_report(database, BalanceView(), org) for org in EXPECTED}
    finally:
        database.close()


def test_project_once_catches_the_view_up_and_says_how_far(tmp_path):
    path = tmp_path / "events.sqlite"
    apply_lines(path, LINES)
    result = CliRunner().invoke(app, ["project", "--once"], env={"COMMCREDITS_DATABASE_URL": f"sqlite:///{path}"})
    assert result.exit_code == 0, result.output
    assert "balance:" in result.output and "event(s) applied" in result.output
    assert view_of(path) == EXPECTED
    again = CliRunner().invoke(app, ["project", "--once"], env={"COMMCREDITS_DATABASE_URL": f"sqlite:///{path}"})
    assert "balance: 0 event(s) applied" in again.output  # nothing twice


def test_project_follows_the_store_and_stops_cleanly_on_sigterm(tmp_path):
    path = tmp_path / "events.sqlite"
    half = len(LINES) // 2
    apply_lines(path, LINES[:half])
    environment = {**os.environ, "COMMCREDITS_DATABASE_URL": f"sqlite:///{path}"}
    process = subprocess.Popen([sys.executable, "-m", "commcredits.cli", "project"], env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        apply_lines(path, LINES[half:])  # written while the projector runs
        deadline = time.monotonic() + FOLLOW_TIMEOUT_S
        while True:
            try:
                if view_of(path) == EXPECTED:
                    break
            except Exception:  # the view's tables may not exist yet
                pass
            assert time.monotonic() < deadline and process.poll() is None, "the view never caught up"
            time.sleep(0.2)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, process.stderr.read().decode()[-2000:]
