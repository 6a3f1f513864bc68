"""`serve`'s authorization desk in a process of its own.

In one process the desk's deciding and saving and the HTTP server's parsing and answering take
turns on one interpreter lock: under load `serve` kept one core busy and left the other idle
(bench/RESULTS.md). In a process of its own the desk decides and commits one batch while the
server reads and answers the next requests, and the server stays responsive while a batch commits.

The server checks each request (a line the SPEC rejects never reaches the desk) and sends those of
one turn of its event loop as one frame, a JSON list of `[id, "authorize", CallRequest]`,
`[id, "release", ReleaseCall]` or `[id, "read", call_id]` (the checked command's fields; the desk
rebuilds the command without checking it again). The desk takes what has arrived (at most a
batch), decides it as the in-process desk does (`AuthorizationDesk.decide`: commit, then
answer), and answers with one frame: a list of `[id, "outcome", result, record]`, `[id, "record", record or null]`,
`[id, "rejected", code, message]`, `[id, "unavailable", message]` or `[id, "failed", message]`.

If the desk's process dies, the requests waiting for it fail as `store_unavailable` (whether or not
their batch was committed, a retry with the same call id returns the decision, or makes it) and a
new desk process starts.
"""

import asyncio
import itertools
import logging
import multiprocessing
import signal
import sys
import threading
import time
from concurrent.futures import Future
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

import orjson

from application import commands
from application.authorization_desk import (IDLE_FOLLOW_S, Answer, AuthorizationDesk, Outcome, StoreUnavailable,
                                            answer_future)
from application.future_guard import FutureGuard
from application.reference_data import load_catalog, load_rate_card
from application.settings import StoreSettings
from commcredits.collector import tune_collector
from commcredits.composition import authorization_desk
from domain.authorization import CallRequest
from domain.errors import DomainError

log = logging.getLogger("commcredits.authorizations")

START_TIMEOUT_S = 120.0  # the desk's process opens the store and loads what it needs
STOP_TIMEOUT_S = 60.0  # to decide what was sent before the stop
RESPAWN_PAUSE_S = 1.0  # between attempts to start a desk process after one died
STOP = b"stop"
READY = b"ready"
AUTHORIZE, RELEASE, READ = "authorize", "release", "read"
OUTCOME, RECORD, REJECTED, UNAVAILABLE, FAILED = "outcome", "record", "rejected", "unavailable", "failed"


class Rejection(DomainError):
    """A rule's rejection, made in the desk's process: its code and message as made there."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class DeskProcess:
    """What `AuthorizationDesk` offers the HTTP API (`submit`, `read`, `start`, `stop`), decided
    in a child process on the same store."""

    def __init__(self, store: StoreSettings, rates: str | None, catalog: str | None, future_guard: FutureGuard) -> None:
        """`rates` and `catalog`: the files `serve` was given (None: the built-in ones), read again by the desk."""
        self._arguments = (store, rates, catalog, future_guard)
        self._context = multiprocessing.get_context("spawn")  # no copy of the server's threads and connections
        self._lock = threading.Lock()  # one writer of the pipe at a time; a new desk is swapped in under it
        self._waiting: dict[int, Future | asyncio.Future] = {}
        self._outbox: list[tuple[list, asyncio.Future]] = []  # sent at the end of the loop's turn
        self._flush_scheduled = False
        self._ids = itertools.count()
        self._stopping = False
        self.restarts = 0
        self._connection: Connection | None = None
        self.process: multiprocessing.process.BaseProcess | None = None
        self._reader = threading.Thread(target=self._read_answers, name="desk-answers", daemon=True)

    def start(self) -> "DeskProcess":
        """Start the desk's process and wait until it has loaded the store (`StoreUnavailable` if it cannot)."""
        self._connection, self.process = self._spawn()
        self._reader.start()
        return self

    def stop(self) -> None:
        """The desk decides what was sent before, then its process ends."""
        self._stopping = True
        with self._lock:
            try:
                if self._connection is not None:
                    self._connection.send_bytes(STOP)
            except OSError:
                pass
        self.process.join(STOP_TIMEOUT_S)
        if self.process.is_alive():
            log.error("the desk process did not stop within %.0f s; killing it", STOP_TIMEOUT_S)
            self.process.kill()
            self.process.join()
        self._reader.join(STOP_TIMEOUT_S)
        if self._connection is not None:
            self._connection.close()

    def submit(self, command: commands.AuthorizeCall | commands.ReleaseCall) -> "Future[Outcome]":
        """Decide (or release); the future's result comes once the decision is committed."""
        if isinstance(command, commands.AuthorizeCall):
            return self._ask(AUTHORIZE, command.request)
        return self._ask(RELEASE, command)

    def read(self, call_id: str) -> "Future[dict[str, Any] | None]":
        return self._ask(READ, call_id)

    # ----- the server's side -------------------------------------------------------------------

    def _ask(self, kind: str, payload: Any) -> "Future | asyncio.Future":
        """On an event loop: an asyncio future, the request sent with the others of this turn of
        the loop in one frame, and answered on the loop (no thread hand-off per request).
        Elsewhere: a `concurrent.futures.Future`, sent at once."""
        request = [next(self._ids), kind, payload]
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            future: Future = Future()
            self._send([(request, future)])
            return future
        waiting = loop.create_future()
        with self._lock:
            self._outbox.append((request, waiting))
            if self._flush_scheduled:
                return waiting
            self._flush_scheduled = True
        loop.call_soon(self._flush_outbox)
        return waiting

    def _flush_outbox(self) -> None:
        with self._lock:
            pending, self._outbox, self._flush_scheduled = self._outbox, [], False
        self._send(pending)

    def _send(self, pending: list[tuple[list, Any]]) -> None:
        frame = orjson.dumps([request for request, _ in pending])
        with self._lock:
            if self._connection is None:
                error = StoreUnavailable("the desk process is restarting; retry with the same call_id")
            else:
                self._waiting.update((request[0], future) for request, future in pending)
                try:
                    self._connection.send_bytes(frame)
                    return
                except (OSError, ValueError) as failure:  # the desk's process died; a new one is starting
                    for request, _ in pending:
                        self._waiting.pop(request[0], None)
                    error = StoreUnavailable(f"the desk process does not answer ({failure})")
        _answer_all([(future, error) for _, future in pending])

    def _read_answers(self) -> None:
        connection = self._connection
        while True:
            try:
                frame = connection.recv_bytes()
            except (EOFError, OSError):
                if self._stopping:
                    return
                connection = self._replace_dead_desk()
                if connection is None:
                    return
                continue
            waiting = self._waiting
            _answer_all([(future, _value_of(answer)) for answer in orjson.loads(frame)
                         if (future := waiting.pop(answer[0], None)) is not None])

    def _replace_dead_desk(self) -> Connection | None:
        """Fail what waits for the dead desk, then start another (until one starts or we stop).
        Requests that arrive meanwhile fail at once rather than hold up the server."""
        with self._lock:
            log.error("the desk process ended (exit code %s); %d waiting requests fail as store_unavailable; "
                      "starting a new one", self.process.exitcode, len(self._waiting))
            waiting, self._waiting = self._waiting, {}
            self._connection.close()
            self._connection = None
        ended = StoreUnavailable("the desk process ended; retry with the same call_id")
        _answer_all([(future, ended) for future in waiting.values()])
        while not self._stopping:
            try:
                connection, process = self._spawn()
            except StoreUnavailable as error:
                log.error("a new desk process did not start: %s", error)
                time.sleep(RESPAWN_PAUSE_S)
                continue
            with self._lock:
                self._connection, self.process = connection, process
                self.restarts += 1
            return connection
        return None

    def _spawn(self) -> tuple[Connection, multiprocessing.process.BaseProcess]:
        ours, theirs = self._context.Pipe(duplex=True)
        process = self._context.Process(target=run_desk, args=(theirs, *self._arguments), name="authorization-desk",
                                        daemon=True)
        process.start()
        theirs.close()
        try:
            if not ours.poll(START_TIMEOUT_S):
                raise StoreUnavailable(f"the desk process did not start within {START_TIMEOUT_S:.0f} s")
            first = ours.recv_bytes()
        except (EOFError, OSError) as error:
            first = orjson.dumps([FAILED, f"the desk process ended while starting ({type(error).__name__})"])
        if first != READY:
            process.kill()
            process.join()
            ours.close()
            raise StoreUnavailable(orjson.loads(first)[1] if first.startswith(b"[") else repr(first))
        return ours, process


def _value_of(answer: list) -> Any:
    """An answer frame's entry as the future's result or exception."""
    kind = answer[1]
    if kind == OUTCOME:
        return Outcome(answer[2], answer[3])
    if kind == RECORD:
        return answer[2]
    if kind == REJECTED:
        return Rejection(answer[2], answer[3])
    if kind == UNAVAILABLE:
        return StoreUnavailable(answer[2])
    return RuntimeError(f"the desk failed: {answer[2]}")


def _answer_all(answers: list[tuple[Any, Any]]) -> None:
    """Set each future's value: a thread's future at once, an event loop's on its loop (one
    hand-off per loop and frame, not one per request)."""
    on_loops: dict[asyncio.AbstractEventLoop, list] = {}
    for future, value in answers:
        if isinstance(future, asyncio.Future):
            on_loops.setdefault(future.get_loop(), []).append((future, value))
        else:
            answer_future(future, value)
    for loop, pairs in on_loops.items():
        try:
            loop.call_soon_threadsafe(_set_each, pairs)
        except RuntimeError:  # that loop is closed: nobody waits there any more
            pass


def _set_each(pairs: list[tuple[Any, Any]]) -> None:
    for future, value in pairs:
        answer_future(future, value)


# ----- the desk's process ----------------------------------------------------------------------

def run_desk(connection: Connection, store: StoreSettings, rates: str | None, catalog: str | None,
             future_guard: FutureGuard) -> None:
    """The desk's process: decide what arrives until the server says stop or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the server stops us
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        desk = authorization_desk(store, load_rate_card(rates), load_catalog(catalog), future_guard).open()
    except Exception as error:  # the store does not answer, or refuses us
        connection.send_bytes(orjson.dumps([FAILED, f"the desk could not start on {store.description}: "
                                                    f"{type(error).__name__}: {error}"]))
        return
    tune_collector()
    try:
        connection.send_bytes(READY)
        while _decide_what_arrived(desk, connection):
            pass
    except (EOFError, OSError):
        pass  # the server is gone: nobody waits for answers, and what was committed stays
    finally:
        log.info("the desk answered %d requests in %d batches (%d batches decided again after another writer's "
                 "change)", desk.decided, desk.batches, desk.conflicts)
        desk.close()


def _decide_what_arrived(desk: AuthorizationDesk, connection: Connection) -> bool:
    """One batch: what has arrived (at most `max_batch`), decided and committed, then answered."""
    if not connection.poll(IDLE_FOLLOW_S):
        desk.follow()
        return True
    requests, more = [], True
    while len(requests) < desk.max_batch:
        frame = connection.recv_bytes()
        if frame == STOP:
            more = False
            break
        requests += orjson.loads(frame)  # the requests the server sent in one turn of its loop
        if not connection.poll():
            break
    if requests:
        decided = desk.decide([_command(kind, payload) for _, kind, payload in requests])
        answers = [_encoded(request[0], answer) for request, answer in zip(requests, decided)]
        connection.send_bytes(orjson.dumps(answers))
    return more


def _command(kind: str, payload: Any) -> commands.AuthorizeCall | commands.ReleaseCall | str:
    """The server's checked command, rebuilt from its fields (a read: the call id)."""
    if kind == READ:
        return payload
    payload["at"] = datetime.fromisoformat(payload["at"])
    if kind == AUTHORIZE:
        return commands.AuthorizeCall(CallRequest(**payload))
    return commands.ReleaseCall(**payload)


def _encoded(request_id: int, answer: Answer) -> list:
    if isinstance(answer, Outcome):
        return [request_id, OUTCOME, answer.result, answer.record]
    if isinstance(answer, DomainError):
        return [request_id, REJECTED, answer.code, answer.message]
    if isinstance(answer, StoreUnavailable):
        return [request_id, UNAVAILABLE, str(answer)]
    if isinstance(answer, BaseException):
        return [request_id, FAILED, f"{type(answer).__name__}: {answer}"]
    return [request_id, RECORD, answer]
