"""The statements view on a real store (a SQLite file and a PostgreSQL schema).

The SPEC examples' figures come from their `.expected.json` files, never from the code under
test: summed over every month, each organization's statements give the report's totals, the last
month closes at the report's balance, and each month opens where the one before closed. The
month-boundary and leap-month scenarios are worked out by hand in their docstrings.
"""

import orjson
import pytest

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from commcredits.simulate import Simulation
from domain.money import ZERO, to_money
from projections.projector import Projector
from projections.replay import replay
from projections.runner import catch_up
from projections.sources import StoreLog
from projections.statement_queries import active_months, statement
from projections.statements import FIGURES, Statements
from projections.view_database import ViewDatabase
from tests.support import SPEC_EXAMPLES, SPEC_RATES, as_lines

EXAMPLES = sorted(path.stem for path in SPEC_EXAMPLES.glob("*.jsonl"))
ORGANIZATION = {"type": "organization.created", "at": "2026-01-01T00:00:00Z", "org": "tailspin", "name": "Tailspin",
                "country": "US", "currency": "USD", "commerce": "legacy"}
ORDER = {"type": "order.placed", "org": "tailspin", "order": "o-1", "funds": "10",
         "auto_recharge": {"enabled": False}, "payment": {"method": "card", "card": "visa-1", "expires": "2030-12"}}


def app_call(usage_id: str, start: str, end: str) -> dict:
    """A 10-minute auto attendant call to the US: 10 × 0.0190 = 0.1900, no user licence needed."""
    return {"type": "cdr", "usage_id": usage_id, "org": "tailspin", "call_type": "ucap_out",
            "caller_number": "+14255550111", "destination_number": "+14255550100", "start_time": start,
            "end_time": end, "duration_seconds": 600}


@pytest.fixture
def project(store):
    """Run lines through the application on `store`, then catch a statements view up and return
    (database, view); the database is closed after the test."""
    opened: list[ViewDatabase] = []

    def run(lines: list[bytes]) -> tuple[ViewDatabase, Statements]:
        app = BillingApplication(env=store.env)
        try:
            Simulation(app, SPEC_RATES, load_catalog(None)).run(lines)
            database = ViewDatabase.for_store(store)
            opened.append(database)
            view = Statements()
            catch_up(Projector(view, database), StoreLog(app))
        finally:
            app.close()
        return database, view

    yield run
    for database in opened:
        database.close()


def months_from(first: str, last: str) -> list[str]:
    """Every calendar month from `first` to `last`, both included."""
    months, year, month = [], int(first[:4]), int(first[5:])
    while f"{year:04d}-{month:02d}" <= last:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


@pytest.mark.parametrize("example", EXAMPLES)
def test_each_spec_example_adds_up_to_the_expected_totals_and_balance(example, project):
    expected = orjson.loads((SPEC_EXAMPLES / f"{example}.expected.json").read_bytes())["organizations"]
    database, view = project((SPEC_EXAMPLES / f"{example}.jsonl").read_bytes().splitlines())
    for org, report in expected.items():
        active = active_months(database, view, org)
        months = months_from(active[0], active[-1]) if active else ["2026-01"]
        statements = [statement(database, view, org, month) for month in months]
        for figure in FIGURES:
            assert sum((to_money(s["totals"][figure]) for s in statements), ZERO) == to_money(
                report["totals"][figure]), (org, figure)
        assert statements[0]["opening_balance"] == "0.0000"
        assert statements[-1]["closing_balance"] == report["balance"], org
        for previous, following in zip(statements, statements[1:]):
            assert following["opening_balance"] == previous["closing_balance"], (org, following["month"])


def test_an_event_belongs_to_the_utc_month_of_its_business_time(project):
    """Order of 10 on 15 January; 5 added at 23:59:59 on 31 January, 7 at midnight on 1 February;
    a 0.1900 call rated at each of those instants; 3 added in April. January: 15 added, 0.19
    charged, closes at 14.81. February: 7 added, 0.19 charged, 14.81 → 21.62. March: nothing
    happened, opens and closes at 21.62. April: 3 added, closes at 24.62."""
    database, view = project(as_lines([
        ORGANIZATION,
        {**ORDER, "at": "2026-01-15T00:00:00Z"},
        app_call("last-second", "2026-01-31T23:49:59Z", "2026-01-31T23:59:59Z"),
        {"type": "funds.added", "at": "2026-01-31T23:59:59Z", "org": "tailspin", "amount": "5"},
        app_call("first-second", "2026-01-31T23:50:00Z", "2026-02-01T00:00:00Z"),
        {"type": "funds.added", "at": "2026-02-01T00:00:00Z", "org": "tailspin", "amount": "7"},
        {"type": "funds.added", "at": "2026-04-10T12:00:00Z", "org": "tailspin", "amount": "3"},
    ]))
    january, february, march, april = (statement(database, view, "tailspin", month)
                                       for month in ("2026-01", "2026-02", "2026-03", "2026-04"))
    assert january["funds_added"] == {"order": "10.0000", "manual": "5.0000", "auto_recharge": "0.0000"}
    assert january["charged"]["app_outbound"] == "0.1900"
    assert (january["opening_balance"], january["closing_balance"]) == ("0.0000", "14.8100")
    assert february["funds_added"]["manual"] == "7.0000" and february["totals"]["charged"] == "0.1900"
    assert (february["opening_balance"], february["closing_balance"]) == ("14.8100", "21.6200")
    assert march["totals"] == dict.fromkeys(FIGURES, "0.0000")
    assert march["opening_balance"] == march["closing_balance"] == "21.6200"
    assert (april["opening_balance"], april["closing_balance"]) == ("21.6200", "24.6200")
    assert january["period"] == {"from": "2026-01-01T00:00:00Z", "to": "2026-02-01T00:00:00Z"}


def test_a_leap_february_and_the_expiry_twelve_months_later(project):
    """10 ordered on 29 February 2024 expire on 28 February 2025 (SPEC §7: the missing day
    becomes the month's last); a clock line at that instant runs the expiry step."""
    database, view = project(as_lines([
        {**ORGANIZATION, "at": "2024-02-01T00:00:00Z"},
        {**ORDER, "at": "2024-02-29T12:00:00Z"},
        {"type": "clock", "at": "2025-02-28T12:00:00Z"},
    ]))
    leap = statement(database, view, "tailspin", "2024-02")
    assert leap["period"] == {"from": "2024-02-01T00:00:00Z", "to": "2024-03-01T00:00:00Z"}
    assert (leap["funds_added"]["order"], leap["closing_balance"]) == ("10.0000", "10.0000")
    expiry = statement(database, view, "tailspin", "2025-02")
    assert (expiry["opening_balance"], expiry["totals"]["expired"], expiry["closing_balance"]) == (
        "10.0000", "10.0000", "0.0000")
    assert active_months(database, view, "tailspin") == ["2024-02", "2025-02"]


def test_an_nce_organization_shows_the_overage_to_invoice(project):
    """03-nce-pools-bulk: northwind's calls n2 (1.2000) and n6 (0.3000) are its overage, both
    rated in May 2026 (the expected file's `calls`); nothing is overage in June."""
    expected = orjson.loads((SPEC_EXAMPLES / "03-nce-pools-bulk.expected.json").read_bytes())
    database, view = project((SPEC_EXAMPLES / "03-nce-pools-bulk.jsonl").read_bytes().splitlines())
    may = statement(database, view, "northwind", "2026-05")
    in_may = sum((to_money(call["overage"]) for call in expected["calls"].values()), ZERO)
    assert to_money(may["overage_to_invoice"]) == in_may == to_money("1.5")
    assert may["overage"]["outbound"] == "1.2000" and may["overage"]["tollfree"] == "0.3000"
    assert statement(database, view, "northwind", "2026-06")["overage_to_invoice"] == "0.0000"
    assert may["commerce"] == "nce" and may["closing_balance"] == "0.0000"


def test_a_legacy_organization_has_no_overage_to_invoice_and_an_unknown_one_no_statement(project):
    database, view = project((SPEC_EXAMPLES / "01-basics.jsonl").read_bytes().splitlines())
    assert statement(database, view, "contoso", "2026-01")["overage_to_invoice"] is None
    assert statement(database, view, "nobody", "2026-01") is None


def test_the_account_to_organization_mapping_survives_a_restart(store, project):
    """A second process (a fresh view object, nothing cached) applies later events of an account
    opened before it started."""
    lines = as_lines([ORGANIZATION, {**ORDER, "at": "2026-01-15T00:00:00Z"}])
    database, _ = project(lines)
    app = BillingApplication(env=store.env)
    try:
        Simulation(app, SPEC_RATES, load_catalog(None)).run(
            as_lines([{"type": "funds.added", "at": "2026-02-01T00:00:00Z", "org": "tailspin", "amount": "5"}]))
        restarted = Statements()
        catch_up(Projector(restarted, database), StoreLog(app))
    finally:
        app.close()
    assert statement(database, restarted, "tailspin", "2026-02")["closing_balance"] == "15.0000"


def test_the_view_rebuilt_from_the_log_equals_the_one_built_as_events_came(store):
    """Built in two catch-ups (before and after more events), then rebuilt from position 0 by
    `commcredits replay`'s machinery: the tables' checksums are the same."""
    database = ViewDatabase.for_store(store)
    app = BillingApplication(env=store.env)
    try:
        simulation = Simulation(app, SPEC_RATES, load_catalog(None))
        lines = (SPEC_EXAMPLES / "02-expiry-and-recharge.jsonl").read_bytes().splitlines()
        simulation.run(lines[:8])
        catch_up(Projector(Statements(), database), StoreLog(app))
        simulation.run(lines[8:])
        result = replay(Statements, "statements", database, StoreLog(app))
    finally:
        app.close()
        database.close()
    assert result.equal, (result.live, result.rebuilt)
    assert set(result.live) == {"organizations", "amounts"}
