"""The usage report view on a real store (a SQLite file and a PostgreSQL schema): one row per
rated call with the figures `simulate` reports (taken from the SPEC examples' expected files,
never from the code under test), the [from, to) window compared in UTC, and the derived columns
computed by hand from the examples and the SPEC's rules."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import orjson
import pytest

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from commcredits.simulate import Simulation
from domain.timestamps import parse_timestamp
from projections.projector import Projector
from projections.runner import catch_up
from projections.sources import StoreLog
from projections.usage_queries import usage_rows
from projections.usage_report import UsageReport
from projections.view_database import ViewDatabase
from tests.support import SPEC_EXAMPLES, SPEC_RATES, as_lines

UTC = timezone.utc
EXAMPLES = sorted(path.stem for path in SPEC_EXAMPLES.glob("*.jsonl"))
ALL_TIME = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))
COMPARED = ("kind", "billed_minutes", "covered_minutes", "pool", "charge", "debited", "uncollected", "overage",
            "reason")


def run_and_project(store, lines, view: UsageReport | None = None) -> tuple[ViewDatabase, UsageReport]:
    app = BillingApplication(env=store.env)
    try:
        Simulation(app, SPEC_RATES, load_catalog(None)).run(lines)
        database = ViewDatabase.for_store(store)
        view = view or UsageReport()
        catch_up(Projector(view, database), StoreLog(app))
    finally:
        app.close()
    return database, view


def example_lines(example: str) -> list[bytes]:
    return (SPEC_EXAMPLES / f"{example}.jsonl").read_bytes().splitlines()


def as_expected(row) -> dict:
    """A report row in the shape of an expected file's `calls` entry."""
    amounts = {name: f"{getattr(row, name):.4f}" for name in ("charge", "debited", "uncollected", "overage")}
    return {"kind": row.kind, "billed_minutes": row.billed_minutes, "covered_minutes": row.covered_minutes,
            "pool": row.pool, "reason": row.reason, **amounts}


@pytest.mark.parametrize("example", EXAMPLES)
def test_each_spec_example_has_one_row_per_rated_call_with_the_expected_figures(example, store):
    expected = orjson.loads((SPEC_EXAMPLES / f"{example}.expected.json").read_bytes())
    database, view = run_and_project(store, example_lines(example))
    try:
        rows = [row for org in expected["organizations"] for row in usage_rows(database, view, org, *ALL_TIME)]
    finally:
        database.close()
    assert sorted(row.usage_id for row in rows) == sorted(expected["calls"])  # exactly one row per call
    for row in rows:
        assert as_expected(row) == {name: expected["calls"][row.usage_id][name] for name in COMPARED}, row.usage_id
        assert row.charge == row.debited + row.uncollected + row.overage


def test_the_derived_columns_of_the_basics_example(store):
    """01-basics, by hand: contoso is a US organization in USD; alice and bob live in the US;
    rates.csv's 447 row has a connection fee of 0.0500 (SPEC §6's rate row)."""
    database, view = run_and_project(store, example_lines("01-basics"))
    try:
        rows = {row.usage_id: row for row in usage_rows(database, view, "contoso", *ALL_TIME)}
    finally:
        database.close()
    derived = {usage_id: (row.domestic_international, row.destination_dialed, row.capability, row.connection_fee,
                          row.currency) for usage_id, row in rows.items()}
    assert derived == {
        "u1": ("Domestic", "US", "DOMESTIC/US", Decimal("0"), "USD"),  # US → US, all minutes from the pool
        "u2": ("International", "GB", "Communications Credits", Decimal("0"), "USD"),
        # +447700900123 is a reserved range: no country (SPEC §2), so never domestic
        "u3": ("International", None, "Uncollected", Decimal("0.0500"), "USD"),
        "u4": ("International", "IN", "Communications Credits", Decimal("0"), "USD"),
        # toll-free inbound: the caller (+44, GB) is the other party; no user, so the org's country
        "u5": ("International", "US", "Communications Credits", Decimal("0"), "USD"),
        "u6": ("Domestic", "US", "Free", Decimal("0"), "USD"),  # inbound from a US caller
        "u7": ("International", "FR", "Communications Credits", Decimal("0"), "USD"),
    }
    assert rows["u2"].rate == {"prefix": "44", "kind": "outbound", "rate_per_minute": "0.0230",
                               "connection_fee": "0.0000", "currency": "USD",
                               "effective_from": "2025-01-01T00:00:00Z"}
    assert rows["u1"].rate is None and rows["u1"].upn == "alice@contoso.com" and rows["u1"].user_location == "US"
    assert rows["u1"].start_time == datetime(2026, 1, 5, 10, 0, tzinfo=UTC) and rows["u1"].duration_seconds == 241


# ----- the [from, to) window -------------------------------------------------------------------

WINDOW_ORG = "tailspin"
SETUP = [
    {"type": "organization.created", "at": "2026-01-01T00:00:00Z", "org": WINDOW_ORG, "name": "Tailspin",
     "country": "US", "currency": "USD", "commerce": "nce"},
    {"type": "user.added", "at": "2026-01-01T00:00:00Z", "org": WINDOW_ORG, "user": "ann@tailspin.com",
     "usage_location": "US"},
    {"type": "licences.assigned", "at": "2026-01-01T00:00:00Z", "org": WINDOW_ORG, "users": ["ann@tailspin.com"],
     "licences": ["PHONE_SYSTEM", "CALLING_PLAN_PAYG"]},
]
CALLS_STARTING = {  # usage id → start time; each call lasts a minute
    "w-just-before-from": "2026-02-28T23:59:59.999999Z",
    "w-at-from": "2026-03-01T00:00:00Z",
    "w-half-a-second-in": "2026-03-01T00:00:00.5Z",  # sorts after w-at-from although "…00.5Z" < "…00Z" as text
    "w-tie-b": "2026-03-15T12:00:00+01:00",  # 11:00 UTC, as w-tie-a: the usage id breaks the tie
    "w-tie-a": "2026-03-15T11:00:00Z",
    "w-just-before-to": "2026-03-31T23:59:59.999999Z",
    "w-at-to": "2026-04-01T00:00:00Z",
    "w-at-to-in-paris-summer": "2026-04-01T02:00:00+02:00",  # the same instant as --to: excluded too
}
ONE_MINUTE = timedelta(minutes=1)
IN_MARCH = ["w-at-from", "w-half-a-second-in", "w-tie-a", "w-tie-b", "w-just-before-to"]


def window_lines() -> list[bytes]:
    cdrs = [{"type": "cdr", "usage_id": usage_id, "org": WINDOW_ORG, "user": "ann@tailspin.com",
             "call_type": "user_out", "caller_number": "+14255550100", "destination_number": "+12065550123",
             "start_time": start, "end_time": (parse_timestamp(start) + ONE_MINUTE).isoformat(),
             "duration_seconds": 60}
            for usage_id, start in CALLS_STARTING.items()]
    return as_lines(SETUP + cdrs)


@pytest.fixture
def window_view(store):
    database, view = run_and_project(store, window_lines())
    yield database, view
    database.close()


def ids(database, view, start: str, end: str) -> list[str]:
    return [row.usage_id for row in usage_rows(database, view, WINDOW_ORG, parse_timestamp(start),
                                               parse_timestamp(end))]


def test_a_call_starting_at_from_is_included_and_one_starting_at_to_is_not(window_view):
    assert ids(*window_view, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z") == IN_MARCH


def test_from_with_an_offset_selects_what_its_utc_equivalent_selects(window_view):
    in_utc = ids(*window_view, "2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z")
    assert ids(*window_view, "2026-03-01T02:00:00+02:00", "2026-04-01T00:00:00Z") == in_utc
    assert ids(*window_view, "2026-03-01T02:00:00+02:00", "2026-04-01T02:00:00+02:00") == in_utc
    # 00:00+02:00 is 22:00 UTC the day before: the call a microsecond before midnight UTC is in
    assert ids(*window_view, "2026-03-01T00:00:00+02:00", "2026-04-01T00:00:00Z") == ["w-just-before-from",
                                                                                      *IN_MARCH]


def test_the_window_ends_are_exact_to_the_microsecond(window_view):
    assert ids(*window_view, "2026-03-01T00:00:00.000001Z", "2026-03-31T23:59:59.999999Z") == [
        "w-half-a-second-in", "w-tie-a", "w-tie-b"]


def test_an_organization_without_calls_has_an_empty_report_and_an_unknown_one_none(window_view):
    database, view = window_view
    assert usage_rows(database, view, WINDOW_ORG, datetime(2030, 1, 1, tzinfo=UTC),
                      datetime(2031, 1, 1, tzinfo=UTC)) == []
    assert usage_rows(database, view, "nobody", *ALL_TIME) is None


def test_built_in_two_catch_ups_equals_built_in_one_from_a_restarted_process(store):
    """The second catch-up is a new projection object (a new process): the organization of an
    account must come from the view's table, not from memory."""
    lines = example_lines("01-basics")
    app = BillingApplication(env=store.env)
    database = ViewDatabase.for_store(store)
    try:
        simulation = Simulation(app, SPEC_RATES, load_catalog(None))
        simulation.run(lines[:9])  # the organization, its users, the order, the first call
        simulation.service.flush()
        catch_up(Projector(UsageReport(), database), StoreLog(app))
        simulation.run(lines[9:], first_line_number=10)
        simulation.service.flush()
        catch_up(Projector(UsageReport(), database), StoreLog(app))
        catch_up(Projector(UsageReport("usage_replay"), database), StoreLog(app))
        bit_by_bit = usage_rows(database, UsageReport(), "contoso", *ALL_TIME)
        in_one_go = usage_rows(database, UsageReport("usage_replay"), "contoso", *ALL_TIME)
    finally:
        database.close()
        app.close()
    assert bit_by_bit == in_one_go
    assert [row.usage_id for row in bit_by_bit] == ["u1", "u2", "u3", "u4", "u5", "u6", "u7"]
