"""The balance view, a projection with tables of its own: built from the events it equals what
`simulate` reports; built bit by bit it equals built in one go; a batch applied twice, or one
that fails half-way, changes nothing; its answers at a time (expiring funds, pool capacity) are
computed by the SPEC's rules."""

from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.billing_application import BillingApplication
from application.reference_data import load_catalog, load_rate_card
from application.settings import sqlite_store
from commcredits.scenario import encoded, generate
from commcredits.simulate import Simulation
from projections.balance_queries import balance_page, expiring_within, organization_report, organizations
from projections.balance_view import BalanceView
from projections.projector import Projector
from projections.runner import catch_up
from projections.sources import StoreLog
from projections.view_database import ViewDatabase
from tests.support import SPEC_EXAMPLES, SPEC_RATES, simulate_lines

UTC = timezone.utc
EXAMPLES = sorted(path.stem for path in SPEC_EXAMPLES.glob("*.jsonl"))


def view_report(database: ViewDatabase, view: BalanceView) -> dict:
    return {org: organization_report(database, view, org) for org in organizations(database, view)}


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_view_of_each_spec_example_is_what_simulate_reports(example, store):
    expected = orjson.loads((SPEC_EXAMPLES / f"{example}.expected.json").read_bytes())["organizations"]
    app = BillingApplication(env=store.env)
    Simulation(app, SPEC_RATES, load_catalog(None)).run((SPEC_EXAMPLES / f"{example}.jsonl").read_bytes().splitlines())
    database = ViewDatabase.for_store(store)
    view = BalanceView()
    try:
        catch_up(Projector(view, database), StoreLog(app))
        assert view_report(database, view) == expected
    finally:
        database.close()
        app.close()


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(1, 400), min_size=1, max_size=6))
def test_built_bit_by_bit_it_equals_built_in_one_go_and_simulate(tmp_path_factory, seed, cuts):
    """Lines applied in chunks, the view caught up after each chunk, in pages of 7 records (so
    page ends fall everywhere); then a second view replays the whole log at once."""
    lines = [encoded(line) for line in generate(organizations=3, users=24, cdrs=300, seed=seed)]
    store = sqlite_store(tmp_path_factory.mktemp("view") / "events.sqlite")
    app = BillingApplication(env=store.env)
    simulation = Simulation(app, load_rate_card(None), load_catalog(None))
    database = ViewDatabase.for_store(store)
    live, replayed = BalanceView("balance"), BalanceView("balance_replay")
    live_projector = Projector(live, database)
    try:
        start = 0
        for cut in sorted({min(cut, len(lines)) for cut in cuts}) + [len(lines)]:
            simulation.run(lines[start:cut], first_line_number=start + 1)
            simulation.service.flush()
            catch_up(live_projector, StoreLog(app), page_size=7)
            start = cut
        catch_up(Projector(replayed, database), StoreLog(app))
        incremental, rebuilt = view_report(database, live), view_report(database, replayed)
    finally:
        database.close()
        app.close()
    assert incremental == rebuilt
    assert incremental == simulate_lines(lines, rate_card=load_rate_card(None))["organizations"]


def test_a_batch_applied_twice_changes_nothing_the_second_time(store):
    app = BillingApplication(env=store.env)
    Simulation(app, SPEC_RATES, load_catalog(None)).run((SPEC_EXAMPLES / "01-basics.jsonl").read_bytes().splitlines())
    database = ViewDatabase.for_store(store)
    view = BalanceView()
    projector = Projector(view, database)
    log = StoreLog(app)
    try:
        records = log.read(0, 10_000, log.end(), view.event_types)
        assert projector.apply(records, up_to=log.end()) == len(records) > 0
        before = view_report(database, view)
        assert projector.apply(records) == 0  # e.g. a topic replayed after a broker restart
        assert view_report(database, view) == before
        assert projector.position() == log.end()
    finally:
        database.close()
        app.close()


def test_a_batch_that_fails_half_way_leaves_rows_and_position_as_they_were(store):
    app = BillingApplication(env=store.env)
    Simulation(app, SPEC_RATES, load_catalog(None)).run((SPEC_EXAMPLES / "01-basics.jsonl").read_bytes().splitlines())
    database = ViewDatabase.for_store(store)
    view = BalanceView()
    projector = Projector(view, database)
    log = StoreLog(app)
    records = log.read(0, 10_000, log.end(), view.event_types)
    calls = [index for index, record in enumerate(records) if record.type == "CreditAccount.CallRated"]
    broken = records[calls[1]]
    try:
        catch_up_to = records[calls[0]].position
        projector.apply([record for record in records if record.position <= catch_up_to])
        before, position = view_report(database, view), projector.position()
        bad = replace(broken, data={**broken.data, "debits": [{"lot": 99, "amount": "1"}]})  # no such lot
        with pytest.raises(TypeError):
            projector.apply([record if record is not broken else bad for record in records])
        assert view_report(database, view) == before
        assert projector.position() == position
        projector.apply(records)  # the good batch goes through afterwards
        assert view_report(database, view)["contoso"]["balance"] == (
            orjson.loads((SPEC_EXAMPLES / "01-basics.expected.json").read_bytes())["organizations"]["contoso"]["balance"])
    finally:
        database.close()
        app.close()


def lot(expires_at: str, remaining: str = "10.0000") -> dict:
    return {"expires_at": expires_at, "remaining": remaining}


@pytest.mark.parametrize("now, days, expected", [
    (datetime(2026, 1, 31, tzinfo=UTC), 30, Decimal("10")),  # Jan 31 + 30 days = Mar 2 (a 28-day February): in
    (datetime(2026, 1, 30, 23, 59, tzinfo=UTC), 30, Decimal("0")),  # horizon Mar 1 23:59: out
    (datetime(2026, 3, 2, tzinfo=UTC), 30, Decimal("0")),  # expiring exactly now is expired, not "soon"
    (datetime(2026, 1, 1, tzinfo=UTC), 60, Decimal("10")),  # Jan 1 + 60 days = Mar 2: in
    (datetime(2025, 12, 31, 23, 0, tzinfo=UTC), 60, Decimal("0")),  # one hour short, across the year end
])
def test_funds_expiring_within_n_days_count_a_lot_expiring_exactly_at_the_horizon(now, days, expected):
    assert expiring_within([lot("2026-03-02T00:00:00Z")], now, days) == expected


def test_funds_expiring_soon_add_up_only_the_lots_inside_the_window():
    lots = [lot("2024-02-29T12:00:00Z", "1.1000"), lot("2024-03-29T12:00:00Z", "2.0200"),
            lot("2024-05-29T12:00:00Z", "4.0003")]
    now = datetime(2024, 2, 28, 12, 0, tzinfo=UTC)  # leap year: Feb 29 exists
    assert expiring_within(lots, now, 30) == Decimal("3.1200")  # Feb 29 and Mar 29 12:00 (exactly 30 days)
    assert expiring_within(lots, now, 90) == Decimal("3.1200")  # 90 days end May 28 12:00
    assert expiring_within(lots, now, 91) == Decimal("7.1203")


def test_the_balance_page_shows_this_months_pools_with_their_capacity_and_the_last_recharge(store):
    app = BillingApplication(env=store.env)
    Simulation(app, SPEC_RATES, load_catalog(None)).run((SPEC_EXAMPLES / "01-basics.jsonl").read_bytes().splitlines())
    database = ViewDatabase.for_store(store)
    view = BalanceView()
    try:
        catch_up(Projector(view, database), StoreLog(app))
        page = balance_page(database, view, "contoso", load_catalog(None), datetime(2026, 1, 20, tzinfo=UTC))
    finally:
        database.close()
        app.close()
    # 01-basics: alice and bob hold a domestic calling plan in the US (3000 minutes each, SPEC §5)
    # and drew 5 minutes from the pool in January.
    assert page["this_month"] == {"month": "2026-01", "pools": {"DOMESTIC/US": {"used": 5, "capacity": 6000}}}
    assert page["last_recharge"]["outcome"] == "succeeded"
    assert page["last_recharge"]["at"] == "2026-01-06T13:00:00Z"
    assert page["balance"] == "23.7700"
    assert [(lot["source"], lot["remaining"]) for lot in page["lots"]] == [("order", "0.0000"),
                                                                            ("auto_recharge", "23.7700")]
    assert page["expiring"] == {"30_days": "0.0000", "60_days": "0.0000", "90_days": "0.0000"}
