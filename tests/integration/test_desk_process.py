"""`serve`'s desk in a process of its own, on the real stores: it answers as the in-process desk
does (decisions, repeats, reads, releases, rejections), decides what was sent before a stop, fails
waiting requests as `store_unavailable` when its process dies and starts another, and says why
when it cannot start (the store's reason, not a hang)."""

import asyncio
import os
import signal
import time
from concurrent.futures import wait

import pytest

from application import commands
from application.authorization_desk import StoreUnavailable
from application.future_guard import FutureGuard
from application.inputs import command_from_document
from application.settings import store_from_url
from commcredits.desk_process import DeskProcess
from domain.errors import DomainError
from tests.integration.test_http_authorizations import SETUP
from tests.serve_process import free_port, set_up
from tests.support import SPEC_EXAMPLES

RATES = str(SPEC_EXAMPLES / "rates.csv")
CALL = {"type": "call.authorize", "org": "contoso", "call_type": "user_out", "user": "alice@contoso.com",
        "caller_number": "+14255550100", "destination_number": "+12065550123", "requested_seconds": 600,
        "at": "2026-03-02T09:00:00.250000+01:00"}


def authorize(call_id: str, **fields) -> commands.AuthorizeCall:
    return command_from_document({**CALL, "call_id": call_id, **fields})


@pytest.fixture
def desk(store):
    set_up(store, SETUP)
    started = DeskProcess(store, RATES, None, FutureGuard()).start()
    yield started
    started.stop()


def test_decides_repeats_reads_and_releases_as_the_in_process_desk(desk):
    first = desk.submit(authorize("c1")).result(timeout=30)
    # funds 1: 600 s → 10 min × 0.0190 = 0.1900 held, until 09:00:00.25+01:00 + 600 s + grace
    assert first.result == commands.APPLIED
    assert {k: first.record[k] for k in ("call_id", "org", "decision", "max_seconds", "held_amount", "status")} == {
        "call_id": "c1", "org": "contoso", "decision": "allowed", "max_seconds": 600, "held_amount": "0.1900",
        "status": "open"}
    repeat = desk.submit(authorize("c1", requested_seconds=60)).result(timeout=30)
    assert repeat.result == commands.REPEATED and repeat.record == first.record
    assert desk.read("c1").result(timeout=30) == first.record
    assert desk.read("never-asked").result(timeout=30) is None
    released = desk.submit(command_from_document({"type": "call.released", "org": "contoso", "call_id": "c1",
                                                  "at": "2026-03-02T08:01:00Z"})).result(timeout=30)
    assert released.result == commands.APPLIED and released.record["status"] == "released"


def test_a_rule_s_rejection_keeps_its_code_and_message(desk):
    with pytest.raises(DomainError) as rejected:
        desk.submit(authorize("c2", user="bob@contoso.com")).result(timeout=30)
    assert rejected.value.code == "unknown_user"
    assert rejected.value.message == "user 'bob@contoso.com' does not exist in organization 'contoso'"
    with pytest.raises(DomainError) as unknown:
        desk.submit(command_from_document({"type": "call.released", "org": "contoso", "call_id": "nope",
                                           "at": "2026-03-02T08:01:00Z"})).result(timeout=30)
    assert unknown.value.code == "unknown_authorization"


def test_what_was_sent_before_a_stop_is_decided(store):
    set_up(store, SETUP)
    desk = DeskProcess(store, RATES, None, FutureGuard()).start()
    futures = [desk.submit(authorize(f"s{number}", requested_seconds=60)) for number in range(200)]
    desk.stop()
    assert all(future.done() for future in futures)
    assert {future.result().result for future in futures} == {commands.APPLIED}


def test_when_its_process_dies_waiting_requests_fail_and_a_new_desk_decides(desk):
    assert desk.submit(authorize("k1")).result(timeout=30).result == commands.APPLIED
    dead = desk.process
    os.kill(dead.pid, signal.SIGSTOP)  # nothing it receives from now on is answered
    waiting = [desk.submit(authorize(f"k{number}")) for number in range(2, 6)]
    os.kill(dead.pid, signal.SIGKILL)
    done, _ = wait(waiting, timeout=30)
    assert len(done) == len(waiting)
    assert all(isinstance(future.exception(), StoreUnavailable) for future in waiting)
    deadline = time.monotonic() + 60
    while desk.restarts == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    retried = desk.submit(authorize("k1", requested_seconds=60)).result(timeout=60)
    assert retried.result == commands.REPEATED and retried.record["max_seconds"] == 600
    assert desk.process.pid != dead.pid and desk.process.is_alive()


def test_a_store_it_cannot_open_stops_the_start_with_the_reason():
    unreachable = store_from_url(f"postgresql://postgres@127.0.0.1:{free_port()}/test")  # nothing listens there
    with pytest.raises(StoreUnavailable, match="the desk could not start on .*127.0.0.1"):
        DeskProcess(unreachable, RATES, None, FutureGuard()).start()


def test_on_an_event_loop_a_turn_s_requests_go_together_and_are_answered_on_the_loop(desk):
    async def ask() -> tuple[list, object]:
        futures = [desk.submit(authorize(f"l{number}", requested_seconds=60)) for number in range(50)]
        assert all(isinstance(future, asyncio.Future) for future in futures)
        futures[0].cancel()  # its HTTP request timed out: the decision is still made and kept
        outcomes = await asyncio.gather(*futures[1:])
        return outcomes, await desk.read("l0")

    outcomes, abandoned = asyncio.run(ask())
    assert [outcome.record["call_id"] for outcome in outcomes] == [f"l{number}" for number in range(1, 50)]
    assert {outcome.result for outcome in outcomes} == {commands.APPLIED}
    assert abandoned["call_id"] == "l0" and abandoned["status"] == "open"
