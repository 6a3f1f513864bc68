"""Item 3: in the live service a time more than a tolerance ahead of the wall clock is refused
with `future_time` and moves no clock; `simulate` keeps SPEC §11's line-driven clock.

Before: one CDR with `end_time` 2199-12-31T23:01Z moved its shard's clock to 2199, every
organization on the shard lost its funds to expiry, and later CDRs and `funds add` were dated
2199.
"""

from datetime import datetime, timedelta, timezone

import orjson
import pytest

from application.billing_application import BillingApplication
from application.future_guard import FutureGuard
from application.inputs import command_from_document
from application.reference_data import load_catalog
from application.service import BillingService
from application.settings import memory_store
from domain.errors import FutureTime
from domain.payments import SimulatedGateway
from tests.integration.test_cdr_consumer import CDR, Pipeline, dead_letters
from tests.support import SPEC_RATES, simulate_commands

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
TOLERANCE = timedelta(minutes=5)
GUARD = FutureGuard(TOLERANCE, lambda: NOW)
SETUP = [
    {"type": "organization.created", "at": "2026-01-01T00:00:00Z", "org": "contoso", "name": "Contoso",
     "country": "US", "currency": "USD", "commerce": "legacy"},
    {"type": "user.added", "at": "2026-01-01T00:00:00Z", "org": "contoso", "user": "alice@contoso.com",
     "usage_location": "US"},
    {"type": "licences.assigned", "at": "2026-01-01T00:00:00Z", "org": "contoso", "users": ["alice@contoso.com"],
     "licences": ["PHONE_SYSTEM", "CALLING_PLAN_PAYG"]},
    {"type": "order.placed", "at": "2026-01-02T00:00:00Z", "org": "contoso", "order": "o-1", "funds": "100",
     "auto_recharge": {"enabled": False}, "payment": {"method": "card", "card": "visa-1", "expires": "2030-01"}},
    {"type": "licences.assigned", "at": "2026-01-02T00:00:00Z", "org": "contoso", "users": ["alice@contoso.com"],
     "licences": ["COMMUNICATIONS_CREDITS"]},
]


def cdr_ending(end: str, usage_id: str) -> dict:
    end_time = datetime.fromisoformat(end.replace("Z", "+00:00"))
    start = (end_time - timedelta(minutes=2)).isoformat()
    return {**CDR, "usage_id": usage_id, "start_time": start, "end_time": end, "duration_seconds": 120}


@pytest.mark.parametrize("at, refused", [
    ("2026-03-01T12:05:00Z", False),  # exactly the tolerance ahead
    ("2026-03-01T12:05:00.000001Z", True),
    ("2026-03-01T13:05:00+01:00", False),  # the same instant in another zone
    ("2026-03-01T13:05:01+01:00", True),
    ("2026-03-01T07:05:00-05:00", False),
    ("2199-12-31T23:01:00Z", True),
    ("2000-01-01T00:00:00Z", False),  # the past is the clock rule's business, not the guard's
])
def test_the_guard_refuses_only_what_is_more_than_the_tolerance_ahead(at, refused):
    moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
    if refused:
        with pytest.raises(FutureTime, match="ahead of the wall clock"):
            GUARD.check(moment, "at")
    else:
        GUARD.check(moment, "at")


def test_a_tolerance_of_zero_refuses_the_next_microsecond_across_a_leap_day():
    leap = datetime(2028, 2, 29, 23, 59, 59, 999999, tzinfo=timezone.utc)
    guard = FutureGuard(timedelta(0), lambda: leap)
    guard.check(leap, "at")
    with pytest.raises(FutureTime):
        guard.check(leap + timedelta(microseconds=1), "at")


def guarded_service() -> BillingService:
    app = BillingApplication(env=memory_store().env)
    service = BillingService(app, SPEC_RATES, load_catalog(None), SimulatedGateway(), future_guard=GUARD)
    for line in SETUP:
        service.handle(command_from_document(line))
    return service


def test_a_far_future_cdr_is_refused_and_moves_no_clock_and_expires_no_funds():
    service = guarded_service()
    clock, balance = service.clock, service.account("contoso").balance
    with pytest.raises(FutureTime) as refused:
        service.handle(command_from_document({"type": "cdr", **cdr_ending("2199-12-31T23:01:00Z", "far")}))
    assert refused.value.code == "future_time"
    assert service.clock == clock and service.account("contoso").balance == balance == 100
    service.handle(command_from_document({"type": "cdr", **cdr_ending("2026-02-01T10:00:00Z", "next")}))
    assert service.clock == datetime(2026, 2, 1, 10, tzinfo=timezone.utc)  # rated at its own time, not 2199
    assert all(lot.remaining > 0 for lot in service.account("contoso").lots)  # nothing expired


@pytest.mark.parametrize("line", [
    {"type": "funds.added", "at": "2199-01-01T00:00:00Z", "org": "contoso", "amount": "5"},
    {"type": "clock", "at": "2027-01-01T00:00:00Z"},
    {"type": "user.added", "at": "2026-03-02T00:00:00Z", "org": "contoso", "user": "bob@contoso.com",
     "usage_location": "US"},
])
def test_a_command_dated_in_the_future_is_refused(line):
    service = guarded_service()
    clock = service.clock
    with pytest.raises(FutureTime):
        service.handle(command_from_document(line))
    assert service.clock == clock


def test_simulate_keeps_the_line_driven_clock():
    report = simulate_commands([*SETUP, {"type": "cdr", **cdr_ending("2199-12-31T23:01:00Z", "far")}])
    assert report["rejected"] == [] and "far" in report["calls"]
    assert report["organizations"]["contoso"]["totals"]["expired"] != "0.0000"  # the lot expired, as the SPEC says


def test_the_consumer_dead_letters_a_future_cdr_with_future_time(store, kafka_broker, unique_topics):
    good = [cdr_ending("2026-02-01T10:00:00Z", "g-1"), cdr_ending("2026-02-02T10:00:00Z", "g-2")]
    far = cdr_ending("2199-12-31T23:01:00Z", "far")
    with Pipeline(store, kafka_broker, unique_topics) as pipeline:
        pipeline.simulation.service.future_guard = GUARD
        pipeline.feed([orjson.dumps(line) for line in SETUP])
        pipeline.feed([orjson.dumps({"type": "cdr", **cdr}) for cdr in (good[0], far, good[1])])
        assert pipeline.consumer.stats.rated == 2 and pipeline.consumer.stats.dead_letters == 1
        assert pipeline.simulation.service.clock == datetime(2026, 2, 2, 10, tzinfo=timezone.utc)
        report = pipeline.report()
    (letter,) = dead_letters(kafka_broker, unique_topics.dead_letters)
    assert dict(letter.headers)["error_code"] == b"future_time"
    expected = simulate_commands([*SETUP, *({"type": "cdr", **cdr} for cdr in good)])
    assert report["organizations"] == expected["organizations"]
    assert report["organizations"]["contoso"]["totals"]["expired"] == "0.0000"


def test_the_admin_cli_refuses_a_step_dated_in_the_future_and_its_clock_stays(cli):
    now = datetime.now(timezone.utc)
    cli("org", "create", "contoso", "--name", "Contoso", "--country", "US", "--currency", "USD")
    refused = cli("funds", "add", "contoso", "5", "--at", "2199-12-31T23:01:00Z", expect=1)
    assert refused.stderr.startswith("commcredits: future_time: at 2199-12-31T23:01:00Z is more than 300 s ahead")
    cli("users", "add", "contoso", "bob@contoso.com", "--location", "US",
        "--at", (now + timedelta(minutes=4)).isoformat())  # within the tolerance
    added = cli("users", "add", "contoso", "carol@contoso.com", "--location", "US")
    assert "note: the engine's clock is at 2199" not in added.stderr

