"""Where records come from, the other way: the `billing-events.v1` topic instead of the store's log.

The relay (`producers.event_relay`) publishes every stored event as its event document, keyed by
organization, so each partition holds its organizations' events in store order: positions
increase within a partition, not across partitions. Each partition is therefore a stream of its
own (`kafka:{topic}/{partition}`), with its own position per projection, and the projections
receive the same `EventRecord`s as from the store's log: they cannot tell the two apart.

Steps, for each partition's batch of a poll and each projector:
1. decode the messages into records; a message that is not an event document is logged with its
   partition and offset, counted and skipped (it never blocks the partition);
2. apply the records above the stream's position (`Projector.apply`: a republished history, or a
   batch read again, changes nothing) and record the partition's next offset, in the same
   view-database transaction.

The offset is what spares a restarted feed re-reading the topic: on start each partition is moved
to the smallest next offset its projectors recorded (the beginning when one has none). It is a
hint, never a reason to miss a record. Reading again is always safe (the positions decide what is
applied); skipping is not, so the recorded offsets are keyed by the broker's topic id: a topic
created again (a memory-only broker restarted, the history republished at new offsets) has none
and is read from its beginning. A running feed asks for the topic's id after every poll that
returned messages and, when it changed, drops what it fetched and starts over from the new
topic's recorded offsets. An offset past a partition's end is reset to its beginning by the
consumer (`auto_offset_reset="earliest"`). No consumer group is used: the view database holds the
offsets, and Kafka is never told.

A projection fed from the topic must depend only on the order of each organization's events:
partitions (and the engine's events, keyed `engine`) interleave in no particular order.
"""

import logging
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg
from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError

from messaging.topic_metadata import refresh_topic_metadata, topic_incarnation
from projections.projector import ConcurrentProjector, Projector
from projections.records import EventRecord

log = logging.getLogger("commcredits.projections.kafka")

POLL_TIMEOUT_MS = 200
MAX_RECORDS_PER_POLL = 2000
METADATA_TIMEOUT_S = 10.0
RETRY_BACKOFF_S = 1.0
NO_TOPIC_WAIT_S = 1.0
CATCH_UP_TIMEOUT_S = 60.0
RETRYABLE = (KafkaError, ConcurrentProjector, sqlite3.OperationalError, psycopg.OperationalError)
_DOCUMENT_FIELDS = {"type": str, "version": int, "aggregate_id": str, "aggregate_version": int, "timestamp": str,
                    "position": int, "data": dict}


def partition_stream(topic: str, partition: int) -> str:
    """The stream name of a partition: the projector tracks one position per stream."""
    return f"kafka:{topic}/{partition}"


def offset_stream(topic: str, partition: int, incarnation: str) -> str:
    """Where a projector records a partition's next offset. `incarnation` is the broker's topic id:
    a topic created again starts its offsets at 0 and must not inherit the old one's."""
    return f"kafka-offset:{topic}@{incarnation}/{partition}" if incarnation else f"kafka-offset:{topic}/{partition}"


class MalformedEvent(ValueError):
    """A message whose value is not an event document (`application.event_documents`)."""


def decode_event(value: bytes | None) -> EventRecord:
    """The record a message carries, or MalformedEvent with the reason."""
    if value is None:
        raise MalformedEvent("no value")
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        raise MalformedEvent(f"not JSON: {error}") from None
    if not isinstance(document, dict):
        raise MalformedEvent(f"a JSON {type(document).__name__}, not an object")
    wrong = [name for name, kind in _DOCUMENT_FIELDS.items() if not _is(document.get(name), kind)]
    if wrong:
        raise MalformedEvent(f"missing or mistyped field(s) {', '.join(wrong)}")
    if document["position"] < 1:
        raise MalformedEvent(f"position {document['position']} is not a store position")
    return EventRecord.from_document(document)


def _is(value: Any, kind: type) -> bool:
    return isinstance(value, kind) and not (kind is int and isinstance(value, bool))


@dataclass
class FeedStats:
    polled: int = 0  # messages read from the topic, malformed ones included
    applied: int = 0  # records applied, summed over the projectors
    malformed: int = 0  # skipped messages (counted again if their batch is redone)
    batches: int = 0  # partition batches applied
    positionings: int = 0  # times the partitions were moved to the recorded offsets


class TopicFeed:
    """Keeps projectors up to date from every partition of `topic` (see the module docstring).
    One feed per set of projectors: two feeds moving the same projection would only ever lose
    to each other (`ConcurrentProjector`), never apply a record twice."""

    def __init__(self, bootstrap_servers: str, topic: str, projectors: Sequence[Projector], *,
                 client_id: str = "commcredits-projector", max_records: int = MAX_RECORDS_PER_POLL) -> None:
        assert projectors, "a feed needs at least one projector"
        self.topic, self.projectors, self.max_records = topic, list(projectors), max_records
        self.stats = FeedStats()
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers, client_id=client_id, group_id=None,
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=max_records,
            allow_auto_create_topics=False)  # the relay creates the topic with its partition count
        self._positioned_for: str | None = None  # the topic id the partitions were moved for

    @property
    def positioned(self) -> bool:
        return self._positioned_for is not None

    def run(self, stop: threading.Event) -> None:
        """Poll and apply until `stop` is set; broker and view-database failures are retried
        after a pause, from the recorded offsets."""
        try:
            while not stop.is_set():
                try:
                    self.poll_once()
                except RETRYABLE as error:
                    log.warning("feed from %s interrupted (%s: %s); going on from the recorded offsets",
                                self.topic, type(error).__name__, error)
                    stop.wait(RETRY_BACKOFF_S)
                    continue
                if not self.positioned:
                    stop.wait(NO_TOPIC_WAIT_S)  # the topic does not exist yet
        finally:
            self.close()

    def poll_once(self) -> int:
        """Read the next messages and apply them; returns how many records were applied."""
        if not self.positioned and not self._position():
            return 0
        polled = self.consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=self.max_records)
        if polled and self._topic_created_again():
            log.warning("%s was created again: reading it from the recorded offsets of the new topic", self.topic)
            self._positioned_for = None  # what was fetched may belong to either topic: read it again
            self._position()
            return 0
        applied = 0
        try:
            for partition, messages in sorted(polled.items()):
                applied += self._apply(partition, messages)
        except BaseException:
            self._positioned_for = None  # fetched past what was recorded: the next poll moves back
            raise
        return applied

    def catch_up(self, timeout_s: float = CATCH_UP_TIMEOUT_S) -> int:
        """Poll until every partition is read up to the high watermark of its latest fetch (the
        end the broker reported while we read); returns how many records were applied. Raises
        TimeoutError if that takes longer than `timeout_s`. The fetch's high watermark, not
        `end_offsets()`: the embedded Tansu broker answers ListOffsets(latest) with the last
        record batch's base offset + 1, short of the end when that batch holds several records."""
        deadline, applied = time.monotonic() + timeout_s, 0
        while True:
            self._wait_for(deadline, "the end")
            applied += self.poll_once()
            if self.positioned and self._at_high_watermarks():
                return applied

    def _at_high_watermarks(self) -> bool:
        for partition in self.consumer.assignment():
            end = self.consumer.highwater(partition)
            if end is None or self.consumer.position(partition) < end:
                return False
        return True

    def recorded_offsets(self) -> dict[int, int]:
        """The next offset each partition would be read from on start (0: its beginning)."""
        assert self.positioned
        return {partition.partition: self._recorded_offset(partition.partition, self._positioned_for)
                for partition in sorted(self.consumer.assignment())}

    def close(self) -> None:
        self.consumer.close(autocommit=False)

    # ----- steps -------------------------------------------------------------------------------

    def _position(self) -> bool:
        """Assign every partition of the topic and move each to the smallest next offset its
        projectors recorded; False when the topic does not exist (yet)."""
        refresh_topic_metadata(self.consumer, METADATA_TIMEOUT_S)
        numbers = self.consumer.partitions_for_topic(self.topic)
        if not numbers:
            return False
        partitions = [TopicPartition(self.topic, number) for number in sorted(numbers)]
        self.consumer.assign(partitions)
        incarnation = topic_incarnation(self.consumer, self.topic)
        offsets = {partition: self._recorded_offset(partition.partition, incarnation) for partition in partitions}
        for partition, offset in offsets.items():
            if offset == 0:
                self.consumer.seek_to_beginning(partition)
            else:
                self.consumer.seek(partition, offset)
        self._positioned_for = incarnation
        self.stats.positionings += 1
        log.info("reading %s (topic id %s) from offsets %s", self.topic, incarnation or "unknown",
                 ", ".join(f"[{partition.partition}] {offset}" for partition, offset in offsets.items()))
        return True

    def _topic_created_again(self) -> bool:
        """Whether the topic's id changed since the partitions were positioned, by metadata asked
        for now: a message fetched from a topic created again was fetched before this answer,
        so it cannot be mistaken for one of the old topic (whose offsets it may share)."""
        refresh_topic_metadata(self.consumer, METADATA_TIMEOUT_S)
        return topic_incarnation(self.consumer, self.topic) != self._positioned_for

    def _recorded_offset(self, partition: int, incarnation: str) -> int:
        stream = offset_stream(self.topic, partition, incarnation)
        return min(projector.position(stream) for projector in self.projectors)

    def _apply(self, partition: TopicPartition, messages: list[ConsumerRecord]) -> int:
        records = list(self._decode(messages))
        stream = partition_stream(partition.topic, partition.partition)
        offsets = offset_stream(partition.topic, partition.partition, self._positioned_for)
        next_offset, applied = messages[-1].offset + 1, 0
        for projector in self.projectors:
            applied += projector.apply(records, stream=stream,
                                       also_track={projector.tracking_key(offsets): next_offset})
        self.stats.polled += len(messages)
        self.stats.applied += applied
        self.stats.batches += 1
        return applied

    def _decode(self, messages: Iterable[ConsumerRecord]) -> Iterable[EventRecord]:
        for message in messages:
            try:
                yield decode_event(message.value)
            except MalformedEvent as error:
                self.stats.malformed += 1
                log.warning("skipped the message of %s[%d] at offset %d: %s", message.topic, message.partition,
                            message.offset, error)

    def _wait_for(self, deadline: float, what: str) -> None:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} of {self.topic} not reached in time")
