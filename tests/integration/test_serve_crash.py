"""`commcredits serve` killed with SIGKILL under load, then started again, on SQLite and
PostgreSQL: every decision a switch was answered is in the store (commit before reply), a retried
request returns the same decision, and the requests cut off by the kill are decided once when
retried."""

import threading
import time

import httpx
import pytest

from application.billing_application import BillingApplication
from tests.authorization_history import decisions_of
from tests.integration.test_authorization_concurrency import ORG, SETUP, request_body
from tests.serve_process import ServeProcess, new_key, set_up

pytestmark = pytest.mark.slow

CLIENTS = 16
ANSWERS_BEFORE_KILL = 150


def test_a_killed_server_answered_only_what_it_had_committed(store, tmp_path):
    set_up(store, SETUP)
    key = new_key(store, ORG, "switch")
    headers = {"Authorization": f"Bearer {key}"}

    answered: dict[str, dict] = {}
    cut_off: set[str] = set()
    lock, numbers = threading.Lock(), iter(range(1_000_000))

    def switch(url: str) -> None:
        with httpx.Client(base_url=url, headers=headers, timeout=10) as client:
            while True:
                with lock:
                    number = next(numbers)
                body = request_body(number)
                try:
                    response = client.post(f"/v1/organizations/{ORG}/authorizations", json=body)
                except httpx.TransportError:  # the server died with the request in flight
                    with lock:
                        cut_off.add(body["call_id"])
                    return
                assert response.status_code == 200, response.text
                with lock:
                    answered[body["call_id"]] = response.json()

    server = ServeProcess(store, tmp_path / "serve").start()
    try:
        switches = [threading.Thread(target=switch, args=(server.url,)) for _ in range(CLIENTS)]
        for thread in switches:
            thread.start()
        deadline = time.monotonic() + 120
        while len(answered) < ANSWERS_BEFORE_KILL:
            assert time.monotonic() < deadline, f"only {len(answered)} answers: {server.log()}"
            time.sleep(0.01)
        server.kill()
        for thread in switches:
            thread.join()
    finally:
        server.stop()
    assert cut_off, "the kill came between requests: nothing was in flight"

    app = BillingApplication(env=store.env)
    try:
        stored = {event.call_id: event for event in decisions_of(app, ORG)}
    finally:
        app.close()
    for call_id, answer in answered.items():  # commit before reply
        event = stored.get(call_id)
        assert event is not None, f"{call_id} was answered but is not in the store"
        assert (answer["decision"], answer["max_seconds"], answer["held_amount"]) == \
               (event.decision, event.max_seconds, event.held_amount)

    with ServeProcess(store, tmp_path / "serve") as restarted, \
            httpx.Client(base_url=restarted.url, headers=headers, timeout=30) as client:
        for call_id, answer in answered.items():
            retried = client.post(f"/v1/organizations/{ORG}/authorizations",
                                  json=request_body(int(call_id.removeprefix("call-"))))
            assert retried.status_code == 200 and retried.json() == answer, call_id
        for call_id in cut_off:  # decided once: before the kill (not answered) or now
            number = int(call_id.removeprefix("call-"))
            first = client.post(f"/v1/organizations/{ORG}/authorizations", json=request_body(number))
            again = client.post(f"/v1/organizations/{ORG}/authorizations", json=request_body(number))
            assert first.status_code == 200 and first.json() == again.json()

    app = BillingApplication(env=store.env)
    try:
        call_ids = [event.call_id for event in decisions_of(app, ORG)]
    finally:
        app.close()
    assert len(call_ids) == len(set(call_ids)) and set(answered) | cut_off <= set(call_ids)
