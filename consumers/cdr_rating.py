"""Rating a batch of CDR messages from one partition into the event store, exactly once.

Guarantees, for a batch of one partition in offset order:
1. Messages at or below the partition's position recorded in the store are skipped: they were
   rated (or dead-lettered) by a batch that committed. Kafka's own group offsets are only a hint.
2. Each message is decoded, validated and rated through the billing service. A message that is
   rejected (bad JSON, unknown organization, no rate, ...) becomes a dead letter with its SPEC
   code; a duplicate `usage_id` is acknowledged and ignored.
3. `commit()` saves everything the batch changed together with the partition's new position
   in one store transaction. A crash before it leaves the store as it was: the batch is redone
   and, being deterministic, gives the same result; nothing is lost or charged twice.
"""

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from eventsourcing.persistence import Tracking

from application.commands import RateCdr
from application.inputs import cdr_from_document, decode_json_object
from application.service import DUPLICATE, BillingService
from domain.calls import Cdr
from domain.errors import DomainError, InvalidInput, shown

INTERNAL_ERROR = "internal_error"


@dataclass(frozen=True, slots=True)
class CdrMessage:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    message: CdrMessage
    code: str
    reason: str


@dataclass
class BatchOutcome:
    rated: int = 0
    duplicates: int = 0
    skipped: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)
    last_offset: int | None = None
    decode_seconds: float = 0.0  # decoding and validating the messages

    @property
    def handled(self) -> int:
        """Messages whose outcome this batch decided (rated, duplicate or parked)."""
        return self.rated + self.duplicates + len(self.dead_letters)


def position_name(topic: str, partition: int, incarnation: str = "") -> str:
    """The tracking name of a partition's position in the store. `incarnation` is the broker's
    topic id: a topic deleted and created again (a memory-only broker restarted) starts its
    offsets at 0 again, and must not inherit the old topic's position."""
    return f"kafka:{topic}@{incarnation}/{partition}" if incarnation else f"kafka:{topic}/{partition}"


class CdrRater:
    def __init__(self, service: BillingService, incarnation_of: Callable[[str], str] = lambda topic: "",
                 refresh_incarnations: Callable[[], None] = lambda: None) -> None:
        self.service, self.incarnation_of, self.refresh_incarnations = service, incarnation_of, refresh_incarnations
        self.incarnation = ""  # the topic's id when the partition was positioned ("" when not known)

    def stored_position(self, topic: str, partition: int) -> int | None:
        """The last offset of this partition whose outcome is in the store."""
        return self.service.app.recorder.max_tracking_id(self._position_name(topic, partition))

    def next_offset(self, topic: str, partition: int, fetched_from: int) -> int:
        """The offset this partition must be read from: one past the store's position, 0 when the
        store has none for the topic as it is now. When a fetch did not start there (rare: a
        rebalance race, a topic created again whose offsets restart at 0, retention) the topic's
        id is fetched afresh first, so the answer never rests on a stale id."""
        expected = self.stored_next_offset(topic, partition)
        if fetched_from != expected:
            self.refresh_incarnations()
            expected = self.stored_next_offset(topic, partition)
        return expected

    def stored_next_offset(self, topic: str, partition: int) -> int:
        """One past the store's position of the partition (0 when it has none), by the topic id known now."""
        stored = self.stored_position(topic, partition)
        return 0 if stored is None else stored + 1

    def _position_name(self, topic: str, partition: int) -> str:
        return position_name(topic, partition, self.incarnation_of(topic))

    def rate_batch(self, messages: Sequence[CdrMessage]) -> BatchOutcome:
        """Rate the batch; a message that raises something other than a rejection (a bug) is
        parked as `internal_error` and the batch is rated again from its start without it, on a
        service reloaded from the store: each pass parks one more message or finishes, so every
        message ends rated, duplicate or parked, and no pass keeps another's half-applied work."""
        parked: dict[int, Exception] = {}
        while True:
            try:
                return self._rate_all(messages, parked)
            except _UnexpectedError as failure:
                assert failure.index not in parked, "a parked message is never rated again"
                parked[failure.index] = failure.error
                self.service.discard()

    def _rate_all(self, messages: Sequence[CdrMessage], parked: dict[int, Exception]) -> BatchOutcome:
        outcome = BatchOutcome()
        if not messages:
            return outcome
        first = messages[0]
        stored = self.stored_position(first.topic, first.partition)
        # Each message is decoded once; the usage ids of the CDRs among them are looked up together.
        started = time.perf_counter()
        decoded = {index: _decoded(index, message) for index, message in enumerate(messages)
                   if index not in parked and (stored is None or message.offset > stored)}
        outcome.decode_seconds = time.perf_counter() - started
        self.service.look_up_usage_ids([cdr.usage_id for cdr in decoded.values() if isinstance(cdr, Cdr)])
        for index, message in enumerate(messages):
            assert (message.topic, message.partition) == (first.topic, first.partition), "one partition per batch"
            outcome.last_offset = message.offset
            if stored is not None and message.offset <= stored:
                outcome.skipped += 1
            elif index in parked:
                error = parked[index]
                outcome.dead_letters.append(DeadLetter(message, INTERNAL_ERROR, f"{type(error).__name__}: {error}"))
            else:
                try:
                    self._rate(message, decoded[index], outcome)
                except Exception as error:  # a bug must not stop the partition: park the message, go on
                    raise _UnexpectedError(index, error) from error
        return outcome

    def commit(self, outcome: BatchOutcome, topic: str, partition: int) -> None:
        if outcome.handled == 0:
            return  # everything was in the store already
        self.service.flush(Tracking(self._position_name(topic, partition), outcome.last_offset))

    def _rate(self, message: CdrMessage, cdr: Cdr | DomainError, outcome: BatchOutcome) -> None:
        try:
            if isinstance(cdr, DomainError):
                raise cdr
            result = self.service.handle(RateCdr(cdr))
        except DomainError as error:
            outcome.dead_letters.append(DeadLetter(message, error.code, error.message))
            return
        if result == DUPLICATE:
            outcome.duplicates += 1
        else:
            outcome.rated += 1


class _UnexpectedError(Exception):
    def __init__(self, index: int, error: Exception) -> None:
        super().__init__(index, error)
        self.index, self.error = index, error


def _decoded(index: int, message: CdrMessage) -> Cdr | DomainError:
    """The message's CDR, or the rejection that parks it."""
    try:
        return _decode(message)
    except DomainError as rejection:
        return rejection
    except Exception as error:  # a bug must not stop the partition: park the message, go on
        raise _UnexpectedError(index, error) from error


def _decode(message: CdrMessage) -> Cdr:
    if message.value is None:
        raise InvalidInput("the message has no value (a tombstone); a CDR is a JSON object")
    document = decode_json_object(message.value)
    cdr = cdr_from_document(document)
    if message.key is not None and message.key != cdr.org.encode():
        raise InvalidInput(f"message key {shown(message.key)} is not the CDR's org {cdr.org!r}: CDRs are keyed by "
                           "organization so that each organization's calls stay in order")
    return cdr
