"""The CDR consumer: Kafka partitions in, rated events and partition positions into the store.

Steps, for each partition's batch of a poll:
1. rate the batch (`consumers.cdr_rating`): skip what the store already holds, rate the rest,
   collect the rejected messages as dead letters;
2. send the dead letters to the DLQ topic and wait until the broker confirmed every one;
3. save the batch's events with the partition's new position in one store transaction;
4. commit the offset to Kafka: a hint for tools, the store's position is what counts.

On assignment each partition is moved to the offset after the store's position. A store conflict
(another writer changed the same organization) or an unavailable store or broker drops the
batch's unsaved work and rewinds the partition to the batch's start: the batch is redone. A crash
between steps 2 and 3 sends those dead letters again on the redo; they carry their source
partition and offset, so a reader can tell.
"""

import logging
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from eventsourcing.persistence import IntegrityError, PersistenceError
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from commcredits.pipeline_settings import Topics
from commcredits.service import BillingService
from consumers.cdr_rating import BatchOutcome, CdrMessage, CdrRater, DeadLetter
from consumers.expiry_scheduler import TICK_INTERVAL_S, ExpiryScheduler

log = logging.getLogger("commcredits.consumer")

POLL_TIMEOUT_MS = 200
MAX_RECORDS_PER_POLL = 2000
SESSION_TIMEOUT_MS = 6000  # the embedded broker joins a group in ~3 s with this, ~23 s with the default
HEARTBEAT_INTERVAL_MS = 2000
DLQ_CONFIRM_TIMEOUT_S = 30.0
DLQ_LINGER_MS = 5
RETRY_BACKOFF_S = 1.0


@dataclass
class ConsumerStats:
    rated: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    batches: int = 0
    redone_batches: int = 0
    dead_letter_codes: Counter = field(default_factory=Counter)

    @property
    def handled(self) -> int:
        """Messages rated, acknowledged as duplicates or parked: all that left the topic for good."""
        return self.rated + self.duplicates + self.dead_letters

    def add(self, outcome: BatchOutcome) -> None:
        self.rated += outcome.rated
        self.duplicates += outcome.duplicates
        self.dead_letters += len(outcome.dead_letters)
        self.dead_letter_codes.update(letter.code for letter in outcome.dead_letters)
        self.batches += 1


class CdrConsumer:
    def __init__(self, service: BillingService, bootstrap_servers: str, topics: Topics, *,
                 client_id: str = "commcredits-rater", max_records: int = MAX_RECORDS_PER_POLL) -> None:
        self.service, self.topics, self.max_records = service, topics, max_records
        self.rater = CdrRater(service, self.topic_incarnation)
        self.stats = ConsumerStats()
        self.consumer = KafkaConsumer(
            bootstrap_servers=bootstrap_servers, client_id=client_id, group_id=topics.consumer_group,
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=max_records,
            session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            allow_auto_create_topics=False)  # partitions are the operator's choice (`run` creates the topic)
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers, client_id=f"{client_id}-dlq",
            acks="all", enable_idempotence=True, linger_ms=DLQ_LINGER_MS, allow_auto_create_topics=False)
        self.consumer.subscribe([topics.cdrs], listener=_StartAtStoredPositions(self))

    def run(self, stop: threading.Event, scheduler: ExpiryScheduler | None = None) -> None:
        """Poll and process until `stop` is set; the batch in hand is finished first. The expiry
        scheduler ticks on this thread between polls, so the store has one writer."""
        next_tick = 0.0
        try:
            while not stop.is_set():
                self.poll_once()
                if scheduler is not None and time.monotonic() >= next_tick:
                    self._tick(scheduler)
                    next_tick = time.monotonic() + TICK_INTERVAL_S
        finally:
            self.close()

    def _tick(self, scheduler: ExpiryScheduler) -> None:
        try:
            if scheduler.tick():
                log.info("expiry step run at %s", self.service.clock)
        except (IntegrityError, PersistenceError) as error:
            log.warning("expiry step not saved (%s: %s); tried again at the next tick", type(error).__name__, error)
            self.service.discard()

    def poll_once(self) -> int:
        polled = self.consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=self.max_records)
        for partition, records in polled.items():
            self._process(partition, [CdrMessage(r.topic, r.partition, r.offset, r.key, r.value) for r in records])
        return sum(len(records) for records in polled.values())

    def topic_incarnation(self, topic: str) -> str:
        """The broker's id of the topic (empty when the broker has none): see `position_name`."""
        return topic_incarnation(self.consumer, topic)

    def close(self) -> None:
        self.consumer.close(autocommit=False)
        self.producer.close()

    def _process(self, partition: TopicPartition, messages: list[CdrMessage]) -> None:
        try:
            outcome = self.rater.rate_batch(messages)
            self._send_dead_letters(outcome.dead_letters)
            self.rater.commit(outcome, partition.topic, partition.partition)
        except (IntegrityError, PersistenceError, KafkaError) as error:
            self._redo_later(partition, messages[0].offset, error)
            return
        self.stats.add(outcome)
        self._hint_offset(partition, outcome.last_offset)

    def _send_dead_letters(self, dead_letters: list[DeadLetter]) -> None:
        futures = [self.producer.send(self.topics.dead_letters, key=letter.message.key,
                                      value=letter.message.value or b"", headers=dead_letter_headers(letter))
                   for letter in dead_letters]
        if futures:
            self.producer.flush(timeout=DLQ_CONFIRM_TIMEOUT_S)
            for future in futures:
                future.get(timeout=DLQ_CONFIRM_TIMEOUT_S)  # raises if the broker refused it

    def _redo_later(self, partition: TopicPartition, first_offset: int, error: Exception) -> None:
        conflict = isinstance(error, IntegrityError)
        log.warning("batch of %s[%d] from offset %d not saved (%s: %s); redoing it", partition.topic,
                    partition.partition, first_offset, type(error).__name__, error)
        self.service.discard()
        self.consumer.seek(partition, first_offset)
        self.stats.redone_batches += 1
        if not conflict:
            time.sleep(RETRY_BACKOFF_S)

    def _hint_offset(self, partition: TopicPartition, last_offset: int | None) -> None:
        if last_offset is None:
            return
        try:
            self.consumer.commit({partition: OffsetAndMetadata(last_offset + 1, "", -1)})
        except (CommitFailedError, KafkaError) as error:
            log.info("offset hint for %s[%d] not committed (%s); the store has the position",
                     partition.topic, partition.partition, error)


def topic_incarnation(consumer: KafkaConsumer, topic: str) -> str:
    # kafka-python keeps topic ids (Kafka >= 2.8 metadata) in its cluster view, not in a public API
    topic_id = consumer._client.cluster.topic_id(topic)
    return str(topic_id) if topic_id is not None else ""


def dead_letter_headers(letter: DeadLetter) -> list[tuple[str, bytes]]:
    message = letter.message
    return [("error_code", letter.code.encode()), ("error_message", letter.reason.encode()),
            ("source_topic", message.topic.encode()), ("source_partition", str(message.partition).encode()),
            ("source_offset", str(message.offset).encode())]


class _StartAtStoredPositions(ConsumerRebalanceListener):
    def __init__(self, owner: CdrConsumer) -> None:
        self.owner = owner

    def on_partitions_revoked(self, revoked) -> None:
        pass  # batches are saved before the next poll: nothing in flight to give up

    def on_partitions_assigned(self, assigned) -> None:
        self.owner.service.discard()  # another instance may have changed our new organizations
        for partition in assigned:
            stored = self.owner.rater.stored_position(partition.topic, partition.partition)
            if stored is not None:
                self.owner.consumer.seek(partition, stored + 1)
        log.info("assigned %s", ", ".join(f"{p.topic}[{p.partition}]" for p in sorted(assigned)) or "nothing")
