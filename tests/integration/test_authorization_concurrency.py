"""64 switches at once (SPEC §13.4 under concurrency), on SQLite and PostgreSQL: concurrent HTTP
clients ask `commcredits serve` (a separate process) to authorize calls of one organization with
a small balance, no auto-recharge and one pool, every call id asked twice at once, while the CDR
consumer (another writer) rates and settles the CDRs of the calls allowed before. Afterwards,
read from the event history: every decision held at most the `F` and `P` of its moment, no call
id was decided twice, and every answer is the decision the store holds.
"""

import queue
import random
import threading
from datetime import datetime, timedelta, timezone

import httpx
import orjson
import pytest

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from tests.authorization_history import assert_every_decision_held_at_most_its_moments_p_and_f
from tests.integration.test_cdr_consumer import Pipeline, wait_until_assigned
from tests.serve_process import ServeProcess, new_key
from tests.support import as_lines

pytestmark = pytest.mark.slow

T0 = "2026-11-01T00:00:00Z"
ORG = "acme"
CLIENTS = 64
CALLS = 192  # each asked twice, by two clients at about the same time
USERS = {"alice@acme.com": ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC", "COMMUNICATIONS_CREDITS"],  # 3000-minute pool, then money
         "bob@acme.com": ["PHONE_SYSTEM", "CALLING_PLAN_PAYG", "COMMUNICATIONS_CREDITS"]}  # money only
SETUP = [
    {"type": "organization.created", "at": T0, "org": ORG, "name": "Acme", "country": "US", "currency": "USD",
     "commerce": "legacy", "agreements": ["EA-1"]},
    *({"type": "user.added", "at": T0, "org": ORG, "user": user, "usage_location": "US"} for user in USERS),
    {"type": "order.placed", "at": T0, "org": ORG, "order": "o-1", "funds": "2", "auto_recharge": {"enabled": False},
     "payment": {"method": "enterprise_agreement", "agreement": "EA-1", "po": None}},
    *({"type": "licences.assigned", "at": T0, "org": ORG, "users": [user], "licences": licences}
      for user, licences in USERS.items()),
]


def request_body(number: int) -> dict:
    user = sorted(USERS)[number % 2]
    return {"call_id": f"call-{number}", "call_type": "user_out", "user": user, "caller_number": "+14255550100",
            "destination_number": "+12065550123", "requested_seconds": 14400 if user.startswith("alice") else 600}


def cdr_of(body: dict, decision: dict, answered_at: datetime) -> bytes:
    seconds = min(decision["max_seconds"], 90)
    start = answered_at - timedelta(seconds=seconds)
    return orjson.dumps({"type": "cdr", "org": ORG, "usage_id": f"u-{body['call_id']}", "call_id": body["call_id"],
                         "call_type": "user_out", "user": body["user"], "caller_number": body["caller_number"],
                         "destination_number": body["destination_number"], "start_time": start.isoformat(),
                         "end_time": answered_at.isoformat(), "duration_seconds": seconds})


def test_concurrent_switches_never_hold_more_than_the_minutes_and_money_of_their_moment(
        store, kafka_broker, unique_topics, tmp_path):
    with Pipeline(store, kafka_broker, unique_topics) as pipeline:
        pipeline.feed(as_lines(SETUP))
        wait_until_assigned(pipeline.consumer)
        key = new_key(store, ORG, "switch")

        jobs: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        order = [number for number in range(CALLS) for _ in range(2)]
        random.Random(7).shuffle(order)
        for number in order:
            jobs.put(number)
        for _ in range(CLIENTS):
            jobs.put(None)
        answers: dict[str, list[dict]] = {}
        answers_lock = threading.Lock()
        failures: list[str] = []
        cdrs: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()

        def switch(server_url: str) -> None:
            with httpx.Client(base_url=server_url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
                while (number := jobs.get()) is not None:
                    body = request_body(number)
                    response = client.post(f"/v1/organizations/{ORG}/authorizations", json=body)
                    if response.status_code != 200:
                        failures.append(f"{number}: {response.status_code} {response.text}")
                        continue
                    decision = response.json()
                    with answers_lock:
                        first = body["call_id"] not in answers
                        answers.setdefault(body["call_id"], []).append(decision)
                    if first and decision["decision"] == "allowed":
                        cdrs.put(cdr_of(body, decision, datetime.now(timezone.utc)))

        stop_consuming = threading.Event()

        def rate_cdrs() -> None:  # the consumer: the CDRs of calls allowed before, as they end
            while not stop_consuming.is_set():
                while True:
                    try:
                        raw = cdrs.get_nowait()
                    except queue.Empty:
                        break
                    pipeline.producer.send(pipeline.topics.cdrs, key=ORG.encode(), value=raw)
                    pipeline.published += 1
                pipeline.consumer.poll_once()

        with ServeProcess(store, tmp_path / "serve") as server:
            consumer = threading.Thread(target=rate_cdrs)
            consumer.start()
            switches = [threading.Thread(target=switch, args=(server.url,)) for _ in range(CLIENTS)]
            for thread in switches:
                thread.start()
            for thread in switches:
                thread.join()
            stop_consuming.set()
            consumer.join()
            pipeline.wait_until_consumed()

    assert failures == []
    assert len(answers) == CALLS and all(len(both) == 2 for both in answers.values())
    for call_id, (first, second) in answers.items():
        assert first == second, call_id  # the second asker gets the decision as it was made

    app = BillingApplication(env=store.env)
    try:
        decisions = assert_every_decision_held_at_most_its_moments_p_and_f(app, ORG, load_catalog(None))
    finally:
        app.close()
    stored = {event.call_id: event for event in decisions}
    assert set(stored) == set(answers)
    for call_id, (answer, _) in answers.items():
        event = stored[call_id]
        assert (answer["decision"], answer["code"], answer["max_seconds"], answer["held_minutes"],
                answer["held_amount"], answer["pool"]) == (event.decision, event.code, event.max_seconds,
                                                            event.held_minutes, event.held_amount, event.pool)
    codes = [event.code for event in decisions]
    assert "insufficient_funds" in codes and codes.count(None) >= 10  # the balance ran out: the test bit
    assert any(event.held_minutes for event in decisions)  # and the pool was held from
    assert pipeline.consumer.stats.rated == sum(1 for event in decisions if event.decision == "allowed")
