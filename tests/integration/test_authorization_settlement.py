"""Reservations across the live processes (SPEC §13.2), on the real broker and both stores: the
authorization desk (what `serve` runs) decides and holds; the CDR consumer (what `run` runs),
another writer with its own service, settles a reservation when the call's CDR arrives through
Kafka with its `call_id`, and its wall-clock scheduler expires the reservations no CDR settled.
"""

from datetime import datetime, timedelta, timezone

import orjson
import pytest

from application.commands import AuthorizeCall
from application.future_guard import FutureGuard
from application.inputs import command_from_document
from application.reference_data import load_catalog
from commcredits.composition import authorization_desk
from consumers.expiry_scheduler import ExpiryScheduler
from domain.credit_account import CreditAccount
from tests.integration.test_cdr_consumer import Pipeline, wait_until_assigned
from tests.integration.test_http_authorizations import SETUP
from tests.support import SPEC_RATES, as_lines

CALL_AT = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
CALL = {"type": "call.authorize", "org": "contoso", "call_type": "user_out", "user": "alice@contoso.com",
        "caller_number": "+14255550100", "destination_number": "+12065550123", "requested_seconds": 600}


def authorize(desk, call_id: str, at: datetime = CALL_AT) -> dict:
    command = command_from_document({**CALL, "call_id": call_id, "at": at.isoformat()})
    assert isinstance(command, AuthorizeCall)
    return desk.submit(command).result(timeout=30).record


def cdr(call_id: str | None, usage_id: str, start: datetime, seconds: int) -> bytes:
    end = start + timedelta(seconds=seconds)
    return orjson.dumps({
        "type": "cdr", "org": "contoso", "usage_id": usage_id, "call_type": "user_out", "user": "alice@contoso.com",
        "caller_number": "+14255550100", "destination_number": "+12065550123",
        "start_time": start.isoformat(), "end_time": end.isoformat(), "duration_seconds": seconds,
        **({"call_id": call_id} if call_id else {})})


@pytest.fixture
def live(store, kafka_broker, unique_topics):
    """The consumer's pipeline (set up with SPEC's contoso, $1 and no auto-recharge) and a desk on the same store."""
    with Pipeline(store, kafka_broker, unique_topics) as pipeline:
        pipeline.feed(as_lines(SETUP))
        wait_until_assigned(pipeline.consumer)
        desk = authorization_desk(store, SPEC_RATES, load_catalog(None), FutureGuard()).start()
        try:
            yield pipeline, desk
        finally:
            desk.stop()


def reservation_statuses(pipeline) -> list[tuple[str, str]]:
    account = pipeline.app.repository.get(CreditAccount.create_id("contoso"))
    return [(event.call_id, event.status) for event in pipeline.app.repository.event_store.get(account.id)
            if type(event).__name__ == "ReservationEnded"]


def test_a_cdr_through_kafka_settles_the_reservation_another_writer_opened(live):
    pipeline, desk = live
    held = authorize(desk, "c1")
    assert (held["decision"], held["held_amount"], held["status"]) == ("allowed", "0.1900", "open")
    pipeline.producer.send(pipeline.topics.cdrs, key=b"contoso", value=cdr("c1", "u-1", CALL_AT, 125))
    pipeline.published += 1
    pipeline.wait_until_consumed()
    assert pipeline.consumer.stats.rated == 1
    assert desk.read("c1").result(timeout=30)["status"] == "settled"
    assert reservation_statuses(pipeline) == [("c1", "settled")]
    account = pipeline.app.repository.get(CreditAccount.create_id("contoso"))
    assert str(account.balance) == "0.9430"  # 1 - 3 min × 0.0190: the call's cost, not its hold
    # The money the hold kept is free again: the next decision may hold all that is left.
    after = authorize(desk, "c2", CALL_AT + timedelta(minutes=10))
    assert after["max_seconds"] == 600 and after["held_amount"] == "0.1900"


def test_a_cdr_without_the_call_id_settles_nothing_and_is_still_rated(live):
    pipeline, desk = live
    authorize(desk, "c1")
    pipeline.producer.send(pipeline.topics.cdrs, key=b"contoso", value=cdr(None, "u-1", CALL_AT, 60))
    pipeline.producer.send(pipeline.topics.cdrs, key=b"contoso", value=cdr("never-asked", "u-2", CALL_AT, 60))
    pipeline.published += 2
    pipeline.wait_until_consumed()
    assert pipeline.consumer.stats.rated == 2
    assert desk.read("c1").result(timeout=30)["status"] == "open"
    assert reservation_statuses(pipeline) == []


def test_the_consumers_wall_clock_scheduler_expires_a_reservation_no_cdr_settled(live):
    pipeline, desk = live
    held = authorize(desk, "c1")
    expires_at = CALL_AT + timedelta(seconds=600 + 3600)
    assert held["expires_at"] == expires_at.isoformat().replace("+00:00", "Z")
    service = pipeline.simulation.service
    one_second_early = ExpiryScheduler(service, lambda: expires_at - timedelta(seconds=1))
    pipeline.consumer._tick(one_second_early)  # as `run` ticks: it follows the store first
    assert service.next_expiry_at() == expires_at and desk.read("c1").result(timeout=30)["status"] == "open"
    pipeline.consumer._tick(ExpiryScheduler(service, lambda: expires_at))
    assert desk.read("c1").result(timeout=30)["status"] == "expired"
    assert reservation_statuses(pipeline) == [("c1", "expired")]
    # A CDR that comes after expiry settles nothing; the call is rated all the same (§13.2).
    pipeline.producer.send(pipeline.topics.cdrs, key=b"contoso", value=cdr("c1", "u-1", CALL_AT, 60))
    pipeline.published += 1
    pipeline.wait_until_consumed()
    assert pipeline.consumer.stats.rated == 1 and reservation_statuses(pipeline) == [("c1", "expired")]


def test_the_desk_follows_calls_the_consumer_rates_instead_of_conflicting_with_them(live):
    """A paid call without a call id changes only the balance (a `CallRated`): the desk reads it
    before its next batch, so that batch decides on the new balance at the first try."""
    pipeline, desk = live
    authorize(desk, "c1")
    pipeline.producer.send(pipeline.topics.cdrs, key=b"contoso", value=cdr(None, "u-1", CALL_AT, 600))
    pipeline.published += 1
    pipeline.wait_until_consumed()
    conflicts = desk.conflicts
    after = authorize(desk, "c2", CALL_AT + timedelta(minutes=20))
    assert desk.conflicts == conflicts
    # 1 - 10 min × 0.0190 = 0.81 left, 0.19 held by c1: 0.62 free, enough for the 10 minutes asked
    assert (after["decision"], after["held_amount"]) == ("allowed", "0.1900")
