"""The authorization desk: where an HTTP server's call authorizations are decided and committed.

One thread owns a billing service; request threads hand it commands and wait. The thread takes
what has queued up (at most `MAX_BATCH` commands), catches up with what other writers stored
(the CDR consumers settle and rate; the admin CLI adds funds), decides each command in order on
that state, saves them all in one transaction, and only then answers: every answered decision is
in the store (commit before reply), and a batch costs one commit however many decisions it holds.

Other processes write the same organizations' histories. The save is optimistic: if another
writer changed one of the batch's aggregates first (a consumer debited the account, a second
server decided the same call id), the store refuses the whole batch, the service reloads, and
the batch is decided again on the new state, so no decision rests on a stale balance or holds
what another already holds. A store that does not answer fails the batch's requests
(`StoreUnavailable`) rather than leave them waiting.
"""

import asyncio
import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import IntegrityError, PersistenceError

from application import commands
from application.service import BillingService
from domain.call_authorization import AuthorizationRecord
from domain.errors import DomainError

log = logging.getLogger("commcredits.authorizations")

MAX_BATCH = 256  # decisions per commit
MAX_CONFLICT_RETRIES = 20  # a batch decided again this many times before its requests fail
IDLE_FOLLOW_S = 1.0  # with nothing to decide, catch up with other writers this often


class StoreUnavailable(Exception):
    """The event store did not take the batch; nothing of it was applied."""


@dataclass(frozen=True, slots=True)
class Outcome:
    result: str  # applied or repeated
    record: dict[str, Any]  # the decision and its reservation's status, as committed (SPEC §13.3)


Answer = Outcome | dict[str, Any] | None | BaseException


@dataclass
class _Request:
    command: Any  # AuthorizeCall, ReleaseCall, or a call id to read
    future: Future


class AuthorizationDesk:
    def __init__(self, new_service: Callable[[], BillingService], *, max_batch: int = MAX_BATCH) -> None:
        self._new_service, self.max_batch = new_service, max_batch
        self._queue: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="authorization-desk", daemon=True)
        self._service: BillingService | None = None
        self.batches = self.decided = self.conflicts = 0  # for the operator's log line at stop

    def open(self) -> "AuthorizationDesk":
        """The desk's billing service, for a caller that decides batches itself (`decide`): the
        process desk of `serve` runs them in its own process, without this desk's thread."""
        self._service = self._new_service()
        return self

    def start(self) -> "AuthorizationDesk":
        self.open()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Decide what is queued, then close the desk's application (its store connections)."""
        self._queue.put(None)
        self._thread.join()
        self.close()

    def close(self) -> None:
        self._service.app.close()

    def submit(self, command: commands.AuthorizeCall | commands.ReleaseCall) -> "Future[Outcome]":
        """Decide (or release); the future's result comes once the decision is committed."""
        future: Future = Future()
        self._queue.put(_Request(command, future))
        return future

    def read(self, call_id: str) -> "Future[dict[str, Any] | None]":
        """The decision for `call_id` as the store holds it (after what was queued before)."""
        future: Future = Future()
        self._queue.put(_Request(call_id, future))
        return future

    # ----- the desk's thread -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=IDLE_FOLLOW_S)
            except queue.Empty:
                self.follow()
                continue
            batch = [first] if first is not None else []
            while first is not None and len(batch) < self.max_batch:
                try:
                    request = self._queue.get_nowait()
                except queue.Empty:
                    break
                if request is None:
                    first = None
                    break
                batch.append(request)
            if batch:
                self._decide(batch)
            if first is None:
                return

    def follow(self) -> None:
        """With nothing to decide: catch up with what other writers stored."""
        try:
            self._service.follow_store()
        except PersistenceError as error:
            log.warning("could not follow the store (%s: %s)", type(error).__name__, error)
            self._service.discard()

    def _decide(self, batch: list[_Request]) -> None:
        for request, answer in zip(batch, self.decide([request.command for request in batch])):
            answer_future(request.future, answer)

    def decide(self, batch: list[Any]) -> list[Answer]:
        """Each command's answer, once the batch is committed: an `Outcome` (a read: the record or
        None; a rejection: its `DomainError`). If the batch could not be committed, every answer is
        the same exception (`StoreUnavailable`, or the bug's)."""
        service = self._service
        for attempt in range(MAX_CONFLICT_RETRIES):
            try:
                service.follow_store()
                service.look_up_authorizations(command.request.call_id for command in batch
                                               if isinstance(command, commands.AuthorizeCall))
                answers = [self._handle(service, command) for command in batch]
                service.flush()
            except IntegrityError:
                self.conflicts += 1
                service.discard()
                continue
            except PersistenceError as error:
                service.discard()
                return [StoreUnavailable(f"{type(error).__name__}: {error}")] * len(batch)
            except Exception as error:  # a bug: fail these requests, keep serving the next ones
                log.exception("a batch of %d authorization requests failed", len(batch))
                service.discard()
                return [error] * len(batch)
            self.batches += 1
            self.decided += len(batch)
            return answers
        return [StoreUnavailable(f"other writers changed these organizations {MAX_CONFLICT_RETRIES} "
                                 "times in a row; try again")] * len(batch)

    @staticmethod
    def _handle(service: BillingService, command: Any) -> Answer:
        """A rejection is an answer (an exception handed to the request), not a reason to redo the
        batch. Answers are plain values: the aggregates stay the desk thread's."""
        if isinstance(command, str):
            return _record(service.authorization(command))
        try:
            result = service.handle(command)
        except DomainError as error:
            return error
        call_id = command.call_id if isinstance(command, commands.ReleaseCall) else command.request.call_id
        return Outcome(result, _record(service.authorization(call_id)))


def answer_future(future: "Future | asyncio.Future", answer: Any) -> None:
    """A request that stopped waiting (its HTTP time-out cancelled the future) gets no answer; the
    decision stays committed, and the switch's retry with the same call id reads it. (The desk
    process's answers go to event-loop futures as well.)"""
    if future.done():
        return
    try:
        if isinstance(answer, BaseException):
            future.set_exception(answer)
        else:
            future.set_result(answer)
    except (InvalidStateError, asyncio.InvalidStateError):  # cancelled meanwhile, on another thread
        pass


def _record(authorization: AuthorizationRecord | None) -> dict[str, Any] | None:
    return None if authorization is None else authorization.as_record()
