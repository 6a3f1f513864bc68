"""A restarted engine carries on exactly where it stopped, on SQLite and on PostgreSQL.

The store is the only memory the engine has: splitting a run at any line and opening a new
application on the same store in between must give the same report as one run. Also: rated
usage ids and the engine clock are durable, and one command's aggregates are saved all or
nothing.
"""

import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from eventsourcing.persistence import IntegrityError
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from application.billing_application import BillingApplication
from application.settings import StoreSettings, postgres_store, sqlite_store
from commcredits.simulate import report_document
from domain.credit_account import CreditAccount
from domain.engine_clock import ENGINE_CLOCK_ID
from tests.property.strategies import as_text, merged_log, new_simulation, report, scenario_lines
from tests.support import SPEC_EXAMPLES, as_lines

POSTGRES_URL = os.environ.get("COMMCREDITS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
STORE_KINDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SCENARIOS = sorted(SPEC_EXAMPLES.glob("*.jsonl"))


# ----- fresh stores, one per hypothesis example (function-scoped fixtures are not reset) ----------

def require_postgres() -> None:
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3):
            return
    except psycopg.OperationalError:
        message = f"no PostgreSQL server answers at {POSTGRES_URL}"
        if os.environ.get("COMMCREDITS_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def fresh_store(kind: str) -> Iterator[StoreSettings]:
    """An empty store that is thrown away afterwards: a SQLite file, or a PostgreSQL schema."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield sqlite_store(Path(directory) / "events.sqlite")
        return
    schema = f"r_{uuid.uuid4().hex[:16]}"
    info = psycopg.conninfo.conninfo_to_dict(POSTGRES_URL)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    try:
        yield postgres_store(info.get("dbname", "test"), info.get("host", "127.0.0.1"), int(info.get("port", 5432)),
                             info.get("user", "postgres"), info.get("password", ""), schema)
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")


def run_with_restarts(store: StoreSettings, lines: list[bytes], splits: list[int]) -> dict:
    """Run `lines` on `store`, closing the application and opening a new one at each split."""
    logs, app = [], None
    bounds = [0, *splits, len(lines)]
    for index, (start, end) in enumerate(zip(bounds, bounds[1:])):
        app = BillingApplication(env=store.env)
        simulation = new_simulation(app, store_is_new=index == 0)
        simulation.run(lines[start:end], first_line_number=start + 1)
        logs.append(simulation.log)
        if end != len(lines):
            app.close()
    try:
        return report_document(app, merged_log(*logs))
    finally:
        app.close()


def one_run(lines: list[bytes]) -> dict:
    simulation = new_simulation()
    simulation.run(lines)
    return report(simulation)


# ----- splitting anywhere gives the same report --------------------------------------------------

@st.composite
def split_scenarios(draw):
    lines = draw(scenario_lines(max_body=25))
    splits = draw(st.lists(st.integers(0, len(lines)), min_size=1, max_size=2).map(sorted))
    return lines, splits


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_restarting_anywhere_gives_the_report_of_one_run(kind):
    if kind == "postgres":
        require_postgres()

    @settings(max_examples=40 if kind == "sqlite" else 25, deadline=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(split_scenarios())
    def restart_anywhere(case):
        lines, splits = case
        note(f"splits before lines {[s + 1 for s in splits]}\n{as_text(lines)}")
        with fresh_store(kind) as store:
            assert run_with_restarts(store, lines, splits) == one_run(lines)

    restart_anywhere()


@pytest.mark.parametrize("kind", STORE_KINDS)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda path: path.stem)
def test_spec_examples_split_at_every_line(scenario, kind):
    if kind == "postgres":
        require_postgres()
    lines = scenario.read_bytes().splitlines()
    expected = json.loads(scenario.with_suffix(".expected.json").read_text())
    for split in range(len(lines) + 1):
        with fresh_store(kind) as store:
            assert run_with_restarts(store, lines, [split]) == expected, f"restarted before line {split + 1}"


# ----- what must survive a restart ---------------------------------------------------------------

AT = "2026-01-01T00:00:00Z"
SETUP = [
    {"type": "organization.created", "at": AT, "org": "acme", "name": "Acme", "country": "US", "currency": "USD",
     "commerce": "legacy", "agreements": ["EA-1"]},
    {"type": "user.added", "at": AT, "org": "acme", "user": "ann@acme.example", "usage_location": "US"},
    {"type": "licences.assigned", "at": AT, "org": "acme", "users": ["ann@acme.example"],
     "licences": ["PHONE_SYSTEM", "CALLING_PLAN_PAYG"]},
    {"type": "order.placed", "at": AT, "org": "acme", "order": "o-1", "funds": "10",
     "auto_recharge": {"enabled": False},
     "payment": {"method": "enterprise_agreement", "agreement": "EA-1", "po": None}},
    {"type": "licences.assigned", "at": AT, "org": "acme", "users": ["ann@acme.example"],
     "licences": ["COMMUNICATIONS_CREDITS"]},
]


def cdr(usage_id: str, end: str, seconds: int = 600) -> dict:
    return {"type": "cdr", "usage_id": usage_id, "org": "acme", "user": "ann@acme.example", "call_type": "user_out",
            "caller_number": "+14255550100", "destination_number": "+442071234567", "start_time": end,
            "end_time": end, "duration_seconds": seconds}


def test_a_rated_usage_id_is_a_duplicate_after_a_restart(open_app):
    first = new_simulation(open_app(), store_is_new=True)
    first.run(as_lines([*SETUP, cdr("u1", "2026-01-05T10:00:00Z")]))
    before = report(first)
    first.app.close()

    second = new_simulation(open_app())
    second.run(as_lines([cdr("u1", "2026-01-05T10:00:00Z"), cdr("u1", "2026-01-06T10:00:00Z", seconds=6000)]),
               first_line_number=7)
    after = report(second)
    assert second.log.duplicates == 2 and second.log.rejected == []
    assert after["calls"] == before["calls"] and after["organizations"] == before["organizations"]


def test_the_engine_clock_survives_a_restart(open_app):
    first = new_simulation(open_app(), store_is_new=True)
    first.run(as_lines([
        {"type": "organization.created", "at": AT, "org": "acme", "name": "Acme", "country": "US",
         "currency": "USD", "commerce": "legacy", "agreements": ["EA-1"]},
        {"type": "clock", "at": "2026-06-01T00:00:00Z"},  # changes nothing but the time
    ]))
    first.app.close()

    second = new_simulation(open_app())
    second.run(as_lines([
        {"type": "order.placed", "at": "2026-02-01T00:00:00Z", "org": "acme", "order": "o-1", "funds": "10",
         "auto_recharge": {"enabled": False},
         "payment": {"method": "enterprise_agreement", "agreement": "EA-1", "po": None}},
        {"type": "clock", "at": "2027-03-01T00:00:00Z"},  # 12 months after February, not after June
    ]), first_line_number=3)
    lot, = report(second)["organizations"]["acme"]["lots"]
    assert lot["added_at"] == "2026-06-01T00:00:00Z" and lot["expires_at"] == "2027-06-01T00:00:00Z"
    assert lot["expired"] == "0.0000" and lot["remaining"] == "10.0000"
    assert second.service.clock.isoformat() == "2027-03-01T00:00:00+00:00"


def test_a_duplicate_cdr_moves_the_clock_durably(open_app):
    first = new_simulation(open_app(), store_is_new=True)
    first.run(as_lines([*SETUP, cdr("u1", "2026-01-05T10:00:00Z")]))
    first.run(as_lines([cdr("u1", "2027-01-01T00:00:00Z")]), first_line_number=7)  # same id, later end
    first.app.close()
    second = new_simulation(open_app())
    assert second.service.clock.isoformat() == "2027-01-01T00:00:00+00:00"
    document = report(second)
    # 10 - 10 min x 0.023 expired on 2027-01-01, the duplicate's time
    assert document["organizations"]["acme"]["lots"][0]["expired"] == "9.7700"


# ----- one command, all of its aggregates or none -------------------------------------------------

def stored_versions(app: BillingApplication, *aggregate_ids) -> list[int]:
    return [len(app.recorder.select_events(aggregate_id)) for aggregate_id in aggregate_ids]


def test_a_conflict_on_the_usage_claim_stores_none_of_the_other_aggregates(open_app):
    process_a = new_simulation(open_app(), store_is_new=True)
    process_a.run(as_lines(SETUP))
    account_id = CreditAccount.create_id("acme")
    before = stored_versions(process_a.app, account_id, ENGINE_CLOCK_ID)

    process_a.apply_line(6, as_lines([cdr("u9", "2026-02-01T00:00:00Z")])[0])  # account, claim and clock change
    assert process_a.service.pending_aggregates >= 1
    process_b = open_app()
    process_b.save(usage_claims=[("u9", "acme")])  # another process rated u9 meanwhile
    with pytest.raises(IntegrityError):
        process_a.service.flush()

    observer = open_app()
    assert stored_versions(observer, account_id, ENGINE_CLOCK_ID) == before
    assert report(new_simulation(observer))["calls"] == {}
    process_a.service.discard()  # re-load and re-run: now it is a duplicate
    process_a.run(as_lines([cdr("u9", "2026-02-01T00:00:00Z")]), first_line_number=6)
    assert process_a.log.duplicates == 1


def test_a_conflict_on_the_account_stores_none_of_the_other_aggregates(open_app):
    setup = as_lines([*SETUP, {"type": "clock", "at": "2026-03-01T00:00:00Z"}])
    process_a = new_simulation(open_app(), store_is_new=True)
    process_a.run(setup)
    process_b = new_simulation(open_app())
    process_b.run(as_lines([cdr("u1", "2026-02-01T00:00:00Z")]), first_line_number=7)  # the account moves on

    process_a.apply_line(7, as_lines([cdr("u2", "2026-02-02T00:00:00Z")])[0])  # stale account, new claim
    with pytest.raises(IntegrityError):
        process_a.service.flush()

    observer = open_app()
    assert observer.recorder.claimed_usage_ids(["u2"]) == set()
    assert list(report(new_simulation(observer))["calls"]) == ["u1"]
    process_a.service.discard()
    process_a.run(as_lines([cdr("u2", "2026-02-02T00:00:00Z")]), first_line_number=7)
    assert list(report(process_a)["calls"]) == ["u1", "u2"]
