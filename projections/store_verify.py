"""`commcredits audit verify|checkpoint`: the event store checked against its seals.

The seals (`application.seal_chain`) are written with the events, in their transaction, so they
hold whatever happened to an event after it was stored, whether or not a projection has read it.
One pass over the seal batches and the events, both in position order (bounded memory):
1. each batch's seal is SHA-256 of the seal before it and the batch's entries, else the seals
   were changed;
2. each event matches its entry's digest, else it was changed after it was stored (named: its
   position, type, aggregate and version). An event without an entry was written around the
   recorder; an entry without its event names an event that was removed;
3. the chain recomputed from the events themselves (not from the stored digests) reaches each
   checkpoint's seal at the checkpoint's position, else history up to it changed: this catches
   whoever rewrote an event and every seal after it;
4. (`readable=True`) each event can be read: its topic is one of our event classes, its state
   decodes, and it has the fields of its class. A problem is named, never raised.
The first problem is listed first, then the rest (up to `MAX_PROBLEMS`).
"""

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from uuid import UUID

from eventsourcing.persistence import StoredEvent

from application.billing_application import BillingApplication
from application.seal_chain import (
    GENESIS_SEAL,
    Checkpoint,
    StoredRecord,
    batch_entries,
    batch_seal,
    read_entries,
    record_digest,
)
from application.sealed_recorders import SealedPostgresProcessRecorder, SealedSQLiteProcessRecorder
from projections.ledger_verify import Findings
from projections.sources import event_classes

EVENT_PAGE_SIZE = 1000
SEAL_PAGE_ROWS = 50  # a batch holds up to a save's events (40 bytes each): 50 rows of 4,000 are 8 MB
SEALED_RECORDERS = (SealedSQLiteProcessRecorder, SealedPostgresProcessRecorder)
MAX_POSITION = (1 << 63) - 1


@dataclass
class StoreVerification(Findings):
    events: int = 0
    batches: int = 0
    head: Checkpoint = Checkpoint(0, GENESIS_SEAL)  # the last batch's position and stored seal
    checkpoints: int = 0  # how many checkpoints matched


def verify_store(app: BillingApplication, checkpoints: Iterable[Checkpoint] = (), *,
                 readable: bool = True) -> StoreVerification:
    result, recorder = StoreVerification(), app.recorder
    if not isinstance(recorder, SEALED_RECORDERS):
        result.found("this store keeps no seals (an in-memory store): nothing anchors its history")
        return result
    last = recorder.last_seal()
    end = max(last[0] if last else 0, recorder.max_notification_id() or 0)  # later writes are not checked
    walk = _Walk(app, result, _records(recorder, end), checkpoints, readable)
    for position, entries, seal in _batches(recorder, end):
        walk.batch(position, entries, seal)
    walk.finish()
    return result


class _Walk:
    """The seal batches and the events, merged in position order."""

    def __init__(self, app: BillingApplication, result: StoreVerification, events: Iterator[StoredRecord],
                 checkpoints: Iterable[Checkpoint], readable: bool) -> None:
        self.app, self.result, self.events, self.readable = app, result, events, readable
        self.pending = next(events, None)
        self.wanted = {checkpoint.position: checkpoint for checkpoint in checkpoints}
        self.stored_previous = self.recomputed = GENESIS_SEAL
        if 0 in self.wanted:  # taken of an empty store
            _check_checkpoint(self.wanted.pop(0), self.recomputed, result)

    def batch(self, position: int, entries: bytes, seal: bytes) -> None:
        result, first = self.result, self.result.head.position + 1
        result.batches += 1
        if batch_seal(self.stored_previous, entries) != seal:
            result.found(f"the seal of the events {first}..{position} does not match their digests and the seal "
                         "before it: the seals were changed")
        digests = _digests(entries, first, position, result)
        events = self._events_up_to(position, digests)
        for removed in sorted(digests):
            result.found(f"event {removed} was sealed but the store no longer holds it: it was removed")
        self.recomputed = batch_seal(self.recomputed, batch_entries(events))  # from the events themselves
        self.stored_previous, result.head = seal, Checkpoint(position, seal)
        if position in self.wanted:
            _check_checkpoint(self.wanted.pop(position), self.recomputed, result)

    def _events_up_to(self, position: int, digests: dict[int, bytes]) -> list[StoredRecord]:
        """Check the events up to `position` against their digests (taken out of `digests`)."""
        events = []
        while self.pending is not None and self.pending.position <= position:
            _check_event(self.app, self.pending, digests.pop(self.pending.position, None), self.readable, self.result)
            events.append(self.pending)
            self.pending = next(self.events, None)
        return events

    def finish(self) -> None:
        self._events_up_to(MAX_POSITION, {})  # events after the last seal have none
        for checkpoint in self.wanted.values():
            self.result.found(f"checkpoint {checkpoint.token}: no sealed batch ends at position "
                              f"{checkpoint.position} (the store's seals end at {self.result.head.position}): the "
                              "history before it was rewritten, or the checkpoint is not from this store")


def _records(recorder, end: int) -> Iterator[StoredRecord]:
    after = 0
    while records := recorder.select_records(after, EVENT_PAGE_SIZE, end):
        yield from records
        after = records[-1].position


def _batches(recorder, end: int) -> Iterator[tuple[int, bytes, bytes]]:
    after = 0
    while rows := recorder.select_seals(after, SEAL_PAGE_ROWS, end):
        yield from rows
        after = rows[-1][0]


def _digests(entries: bytes, first: int, position: int, result: StoreVerification) -> dict[int, bytes]:
    try:
        return dict(read_entries(entries))
    except ValueError as error:
        result.found(f"the seal of the events {first}..{position} is unreadable ({error}): the seals were changed")
        return {}


def _check_event(app: BillingApplication, record: StoredRecord, digest: bytes | None, readable: bool,
                 result: StoreVerification) -> None:
    result.events += 1
    where = _name(record)
    if digest is None:
        result.found(f"{where} has no seal: it was written around the store's recorder")
    elif digest != record_digest(record):
        result.found(f"{where} changed after it was stored: it no longer matches its seal")
    if readable and (unreadable := _unreadable(app, record)):
        result.found(f"{where}: {unreadable}")


def _check_checkpoint(checkpoint: Checkpoint, recomputed: bytes, result: StoreVerification) -> None:
    if recomputed == checkpoint.seal:
        result.checkpoints += 1
        return
    result.found(f"checkpoint {checkpoint.token}: the events up to position {checkpoint.position} no longer hash "
                 f"to it (now {recomputed.hex()}): history before the checkpoint was changed since it was taken")


def _name(record: StoredRecord) -> str:
    topic = record.topic if isinstance(record.topic, str) else repr(record.topic)
    try:
        aggregate = str(UUID(str(record.originator_id)))  # SQLite keeps it as hex: name it as PostgreSQL does
    except ValueError:
        aggregate = repr(record.originator_id)
    return (f"event {record.position} ({topic.rpartition(':')[2]}, aggregate {aggregate} "
            f"version {record.originator_version})")


def _unreadable(app: BillingApplication, record: StoredRecord) -> str | None:
    """What makes the stored event unreadable as one of ours, or None."""
    cls = event_classes().get(record.topic) if isinstance(record.topic, str) else None
    if cls is None:
        return f"its topic {record.topic!r} is not an event of ours"
    if not isinstance(record.state, bytes):
        return f"its state is {type(record.state).__name__}, not the bytes the store writes"
    try:
        stored = StoredEvent(UUID(str(record.originator_id)), int(record.originator_version), record.topic,
                             record.state)
        fields = vars(app.mapper.to_domain_event(stored))
    except Exception as error:  # whatever the row holds: name it, do not raise
        return f"it cannot be decoded: {type(error).__name__}: {error}"
    return _field_problem(cls, fields.keys())


def _field_problem(cls: type, fields: Iterable[str]) -> str | None:
    """A wrong type's state shows as missing or unexpected fields."""
    declared = dataclasses.fields(cls)
    required = {f.name for f in declared
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    missing, unexpected = sorted(required - set(fields)), sorted(set(fields) - {f.name for f in declared})
    parts = [f"{what} {', '.join(names)}" for what, names in (("missing", missing), ("unexpected", unexpected))
             if names]
    return f"its state is not a {cls.__qualname__}: {'; '.join(parts)}" if parts else None
