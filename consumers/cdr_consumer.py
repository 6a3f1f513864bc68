"""The CDR consumer: Kafka partitions in, rated events and partition positions into the store.

Steps, for each partition's batch of a poll:
1. read what other writers (the admin CLI) stored since the last batch;
2. rate the batch (`consumers.cdr_rating`): skip what the store already holds, rate the rest,
   collect the rejected messages as dead letters;
3. send the dead letters to the DLQ topic and wait until the broker confirmed every one;
4. save the batch's events with the partition's new position in one store transaction;
5. commit the offset to Kafka: a hint for tools, the store's position is what counts.

Each partition is rated by a billing service of its own (a shard: the partition's
organizations, their clock and expiry steps), so instances of one group never write the same
aggregates. Assignments arrive on kafka-python's IO thread, possibly while a batch is being
rated: the listener only pauses the new partitions and queues them. The polling thread then
refreshes the topic metadata (a recreated topic has a new id, hence a new position name), gives
each partition a freshly loaded service, moves it to the offset after the store's position (the
beginning when the store has none: the group's offset is a hint, never a reason to skip) and
resumes it. A position past the end of the partition's log (the embedded broker answers it
with no records, Kafka with OFFSET_OUT_OF_RANGE) also moves back to the store's. A store
conflict (another writer changed the same organization) or an unavailable store or broker drops the batch's unsaved work and rewinds the partition to the batch's start:
the batch is redone. A crash between steps 3 and 4 sends those dead letters again on the redo;
they carry their source partition and offset, so a reader can tell.
"""

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from eventsourcing.persistence import IntegrityError, PersistenceError
from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import CommitFailedError, KafkaError, KafkaTimeoutError
from kafka.structs import MemberState, OffsetAndMetadata

from application.service import BillingService
from application.settings import StoreSettings
from application.shard import Shard
from consumers.cdr_rating import BatchOutcome, CdrMessage, CdrRater, DeadLetter
from consumers.dead_letters import STORE_ERRORS, LetterRecord, OversizedPayloads, is_oversized, letter_record
from consumers.expiry_scheduler import TICK_INTERVAL_S, ExpiryScheduler
from messaging.topic_metadata import refresh_topic_metadata, topic_incarnation
from messaging.topics import Topics
from projections.view_database import ViewDatabase

log = logging.getLogger("commcredits.consumer")

POLL_TIMEOUT_MS = 200
MAX_RECORDS_PER_POLL = 2000
SESSION_TIMEOUT_MS = 6000  # the embedded broker joins a group in ~3 s with this, ~23 s with the default
HEARTBEAT_INTERVAL_MS = 2000
DLQ_CONFIRM_TIMEOUT_S = 30.0
DLQ_LINGER_MS = 5
RETRY_BACKOFF_S = 1.0
METADATA_REFRESH_TIMEOUT_S = 10.0
# How old the broker's metadata may get (kafka-python's default is 5 minutes): a topic created
# again is noticed by its new id within this time, even when no fetch fails and no rebalance comes.
METADATA_MAX_AGE_MS = 10_000
# How long a request to the broker may go unanswered (kafka-python's consumer default is 305 s): a
# SyncGroup the broker never answers (seen after the embedded broker restarted) is sent again
# after this, not after five minutes without a partition. More than the session time-out.
REQUEST_TIMEOUT_MS = 20_000
STUCK_REBALANCE_S = 3 * REQUEST_TIMEOUT_MS / 1000  # a join that has not settled by then will not
END_CHECK_INTERVAL_S = 2.0  # how often positions are compared with the ends of the logs


@dataclass
class ConsumerStats:
    rated: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    batches: int = 0
    redone_batches: int = 0
    dead_letter_codes: Counter = field(default_factory=Counter)
    # Where the time goes, by stage (poll, follow, decode, rate, dead letters, save): seconds in all
    # batches, redone ones included, read by `bench/pipeline_throughput.py` and the status line.
    seconds: Counter = field(default_factory=Counter)

    @property
    def handled(self) -> int:
        """Messages rated, acknowledged as duplicates or parked: all that left the topic for good."""
        return self.rated + self.duplicates + self.dead_letters

    def stage_summary(self) -> str:
        """µs per handled message by stage, for the status line: where a slow consumer's time goes."""
        if not self.handled:
            return "µs per CDR: none handled yet"
        stages = ", ".join(f"{stage} {seconds / self.handled * 1e6:.0f}" for stage, seconds in self.seconds.items()
                           if stage != "poll")  # a poll's time includes waiting for messages
        return f"µs per CDR: {stages}"

    def add(self, outcome: BatchOutcome) -> None:
        self.rated += outcome.rated
        self.duplicates += outcome.duplicates
        self.dead_letters += len(outcome.dead_letters)
        self.dead_letter_codes.update(letter.code for letter in outcome.dead_letters)
        self.batches += 1


ServiceForShard = Callable[[Shard], BillingService]


class DeadLetterRefused(Exception):
    """The broker will not take a dead letter, and would not on a redo either: stop loudly."""


class CdrConsumer:
    """`services` is either one billing service for every partition (`simulate`-like set-ups
    and tests, where other lines go through the same service) or a factory that makes one per
    partition this instance is given (`run`): each partition is then a shard with its own clock
    and expiry steps, so instances in one group do not write the same aggregates."""

    def __init__(self, services: BillingService | ServiceForShard, bootstrap_servers: str, topics: Topics, *,
                 client_id: str = "commcredits-rater", max_records: int = MAX_RECORDS_PER_POLL,
                 oversized_payloads: OversizedPayloads | None = None) -> None:
        self.topics, self.max_records = topics, max_records
        self._shared_service = services if isinstance(services, BillingService) else None
        self._service_for: ServiceForShard = services if self._shared_service is None else lambda shard: services
        self._raters: dict[TopicPartition, CdrRater] = {}
        self.stats = ConsumerStats()
        self._bootstrap_servers, self._client_id = bootstrap_servers, client_id
        self._assigned: queue.SimpleQueue[set[TopicPartition]] = queue.SimpleQueue()
        self.consumer = self._subscribe()
        self._unstable_since: float | None = None
        self._next_end_check = 0.0
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers, client_id=f"{client_id}-dlq",
            acks="all", enable_idempotence=True, linger_ms=DLQ_LINGER_MS, allow_auto_create_topics=False)
        self._gap_rewinds: dict[TopicPartition, int] = {}
        self._oversized_payloads = oversized_payloads
        self.rejoins = 0

    def _subscribe(self) -> KafkaConsumer:
        consumer = KafkaConsumer(
            bootstrap_servers=self._bootstrap_servers, client_id=self._client_id, group_id=self.topics.consumer_group,
            enable_auto_commit=False, auto_offset_reset="earliest", max_poll_records=self.max_records,
            session_timeout_ms=SESSION_TIMEOUT_MS, heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            metadata_max_age_ms=METADATA_MAX_AGE_MS, request_timeout_ms=REQUEST_TIMEOUT_MS,
            allow_auto_create_topics=False)  # partitions are the operator's choice (`run` creates the topic)
        consumer.subscribe([self.topics.cdrs], listener=_HandOverAssignments(consumer, self._assigned))
        return consumer

    def _rejoin_if_stuck(self) -> None:
        """A consumer whose group membership has not become stable, or that holds partitions it does
        not read (`_stalled_partitions`), for `STUCK_REBALANCE_S` leaves
        and joins again with a fresh client. Seen with kafka-python against a broker that lost the
        group (a memory-only broker restarted, or a topic's partitions changed): the rejoin ended
        without an assignment and no partition was read again. An idle member of a stable group
        (more instances than partitions) is stable, so it is left alone."""
        if self.consumer.group_metadata().state == MemberState.STABLE and not self._stalled_partitions():
            self._unstable_since = None
            return
        now = time.monotonic()
        if self._unstable_since is None:
            self._unstable_since = now
        if now - self._unstable_since < STUCK_REBALANCE_S:
            return
        log.warning("group membership not stable, or partitions not read, for %.0f s: joining the group again",
                    now - self._unstable_since)
        self.consumer.close(autocommit=False)
        self._raters.clear()
        self.consumer, self._unstable_since = self._subscribe(), None
        self.rejoins += 1

    def _stalled_partitions(self) -> set[TopicPartition]:
        """Partitions we hold but do not read: still paused, or without a rater. Positioning ends
        both within a poll, unless a hand-over was lost between kafka-python's thread and ours
        (a broker restart under the running group once left every partition paused for good)."""
        paused = self.consumer.paused()
        return {partition for partition in self.consumer.assignment()
                if partition in paused or partition not in self._raters}

    @property
    def services(self) -> list[BillingService]:
        """The billing services of the partitions this instance holds (one when shared)."""
        unique = {id(rater.service): rater.service for rater in self._raters.values()}
        return list(unique.values())

    def run(self, stop: threading.Event, expiry_clock: Callable[[], datetime] | None = None) -> None:
        """Poll and process until `stop` is set; the batch in hand is finished first. With an
        `expiry_clock` (the wall clock in `run`) each shard's expiry step ticks on this thread
        between polls, so each shard has one writer."""
        next_tick = 0.0
        try:
            while not stop.is_set():
                self.poll_once()
                if expiry_clock is not None and time.monotonic() >= next_tick:
                    for service in self.services:
                        self._tick(ExpiryScheduler(service, expiry_clock))
                    next_tick = time.monotonic() + TICK_INTERVAL_S
        finally:
            self.close()

    def _tick(self, scheduler: ExpiryScheduler) -> None:
        service = scheduler.service
        try:
            service.follow_store()
            if scheduler.tick():
                log.info("expiry step run at %s%s", service.clock, f" ({service.shard.name})" if service.shard else "")
        except (IntegrityError, PersistenceError) as error:
            log.warning("expiry step not saved (%s: %s); tried again at the next tick", type(error).__name__, error)
            service.discard()

    def poll_once(self) -> int:
        started = time.perf_counter()
        polled = self.consumer.poll(timeout_ms=POLL_TIMEOUT_MS, max_records=self.max_records)
        self.stats.seconds["poll"] += time.perf_counter() - started
        self._rejoin_if_stuck()
        self._reposition_recreated_topics()
        self._rewind_past_the_end()
        repositioned = self._position_assigned_partitions()
        for partition, records in polled.items():
            if partition in repositioned or partition not in self._raters:
                continue  # fetched before the partition was moved to its stored position
            self._process(partition, [CdrMessage(r.topic, r.partition, r.offset, r.key, r.value) for r in records])
        return sum(len(records) for records in polled.values())

    def _reposition_recreated_topics(self) -> None:
        """A partition whose topic has a new id (deleted and created again: a memory-only broker
        restarted) is positioned afresh, as if newly assigned. The fetch position it kept from the
        old topic may be valid in the new one (offset 5 of 5), and then no batch would come to
        show the gap and no rebalance either, when the group survived: the new messages would
        wait forever."""
        recreated = {partition for partition, rater in self._raters.items()
                     if rater.incarnation != self.topic_incarnation(partition.topic) != ""}
        if recreated:
            log.warning("%s created again (a new topic id): positioned from the store again", _names(recreated))
            self.consumer.pause(*recreated)
            self._assigned.put(recreated)

    def _rewind_past_the_end(self) -> None:
        """A fetch position past the end of the partition's log (kept from an older incarnation of
        the topic, or from a position read against one) reads nothing until the log grows past it:
        Kafka answers OFFSET_OUT_OF_RANGE there, but the embedded broker answers with no records.
        When the broker's last fetch answer says the log ends before our position, the topic's id is
        fetched afresh and the partition moves back to the store's next offset, if that is earlier."""
        if time.monotonic() < self._next_end_check:
            return
        self._next_end_check = time.monotonic() + END_CHECK_INTERVAL_S
        readable = self.consumer.assignment() - self.consumer.paused()
        for partition, rater in list(self._raters.items()):
            end = self.consumer.highwater(partition)
            if end is None or partition not in readable:
                continue
            position = self.consumer.position(partition, timeout_ms=0)
            if position is None or position <= end:
                continue
            try:
                rater.refresh_incarnations()  # the store's position is named after the topic's id
                expected = rater.stored_next_offset(partition.topic, partition.partition)
            except (PersistenceError, KafkaError) as error:
                log.warning("could not check %s[%d]'s position yet (%s)", partition.topic, partition.partition, error)
                continue
            if expected < position:
                log.warning("%s[%d] is positioned at %d, past the log's end (%d): reading from the store's next, %d",
                            partition.topic, partition.partition, position, end, expected)
                self.consumer.seek(partition, expected)

    def _position_assigned_partitions(self) -> set[TopicPartition]:
        """Give newly assigned partitions a freshly loaded service, move each to the offset after
        the store's position, then resume them. On a broker or store failure they stay paused
        and are tried again after the next poll."""
        assigned: set[TopicPartition] = set()
        while not self._assigned.empty():
            assigned |= self._assigned.get()
        held = self.consumer.assignment()
        for gone in set(self._raters) - held:
            del self._raters[gone]
        assigned &= held
        if not assigned:
            return assigned
        try:
            self.refresh_topic_ids()
            if self._shared_service is not None:
                self._shared_service.discard()  # another instance may have changed our new organizations
            for partition in sorted(assigned):
                rater = self._raters[partition] = self._new_rater(partition)
                stored = rater.stored_position(partition.topic, partition.partition)
                if stored is None:
                    self.consumer.seek_to_beginning(partition)
                else:
                    self.consumer.seek(partition, stored + 1)
        except (PersistenceError, KafkaError) as error:
            log.warning("could not position %s yet (%s: %s)", _names(assigned), type(error).__name__, error)
            for partition in assigned:
                self._raters.pop(partition, None)
            self._assigned.put(assigned)
            time.sleep(RETRY_BACKOFF_S)
            return assigned
        self.consumer.resume(*assigned)
        log.info("assigned %s, each from the store's position", _names(assigned))
        return assigned

    def _new_rater(self, partition: TopicPartition) -> CdrRater:
        partitions = self.consumer.partitions_for_topic(partition.topic) or {partition.partition}
        service = self._service_for(Shard(partition.topic, partition.partition, len(partitions)))
        rater = CdrRater(service, self.topic_incarnation, self.refresh_topic_ids)
        rater.incarnation = self.topic_incarnation(partition.topic)
        return rater

    def refresh_topic_ids(self) -> None:
        """Fetch the topics' metadata (with their ids) from the broker now, or raise KafkaTimeoutError."""
        refresh_topic_metadata(self.consumer, METADATA_REFRESH_TIMEOUT_S)

    def topic_incarnation(self, topic: str) -> str:
        """The broker's id of the topic (empty when the broker has none): see `position_name`."""
        return topic_incarnation(self.consumer, topic)

    def close(self) -> None:
        self.consumer.close(autocommit=False)
        self.producer.close()
        if self._oversized_payloads is not None:
            self._oversized_payloads.close()

    def _process(self, partition: TopicPartition, messages: list[CdrMessage]) -> None:
        rater = self._raters[partition]
        try:
            if self._rewound_to_gap(rater, partition, messages[0].offset):
                return
            seconds, started = self.stats.seconds, time.perf_counter()
            rater.service.follow_store()
            followed = time.perf_counter()
            outcome = rater.rate_batch(messages)
            rated = time.perf_counter()
            self._send_dead_letters(outcome.dead_letters, rater.service.app.env)
            sent = time.perf_counter()
            rater.commit(outcome, partition.topic, partition.partition)
            seconds["follow"] += followed - started
            seconds["decode"] += outcome.decode_seconds
            seconds["rate"] += rated - followed - outcome.decode_seconds
            seconds["dead letters"] += sent - rated
            seconds["save"] += time.perf_counter() - sent
        except (IntegrityError, PersistenceError, KafkaError) as error:
            self._redo_later(rater.service, partition, messages[0].offset, error)
            return
        self._gap_rewinds.pop(partition, None)
        self.stats.add(outcome)
        self._hint_offset(partition, outcome.last_offset)

    def _rewound_to_gap(self, rater: CdrRater, partition: TopicPartition, fetched_from: int) -> bool:
        """A fetch that starts past the store's position would skip messages (the fetch position
        outlived a topic that was created again, say). Read from the store's position instead,
        once: if the broker again answers from further on, the gap is real (retention, control
        records) and the batch is taken."""
        expected = rater.next_offset(partition.topic, partition.partition, fetched_from)
        if fetched_from <= expected or self._gap_rewinds.get(partition) == expected:
            return False
        log.warning("%s[%d] fetched from offset %d but the store's next is %d: reading from %d",
                    partition.topic, partition.partition, fetched_from, expected, expected)
        self.consumer.seek(partition, expected)
        self._gap_rewinds[partition] = expected
        return True

    def _send_dead_letters(self, dead_letters: list[DeadLetter], store_env: Mapping[str, str]) -> None:
        """Send the batch's dead letters and wait until the broker confirmed each. An original too
        large for its letter is kept in the store's database first. A letter the broker refuses
        for good (too large after all, a topic we may not write) stops the consumer: redoing the
        batch would fail the same way forever and hold the partition, while the operator who
        reads the error can fix the topic's settings and restart."""
        futures = []
        try:
            for letter in dead_letters:
                record = self._letter_record(letter, store_env)
                futures.append(self.producer.send(self.topics.dead_letters, key=record.key, value=record.value,
                                                  headers=record.headers))
            if futures:
                self.producer.flush(timeout=DLQ_CONFIRM_TIMEOUT_S)
                for future in futures:
                    future.get(timeout=DLQ_CONFIRM_TIMEOUT_S)  # raises if the broker refused it
        except KafkaError as error:
            if getattr(error, "retriable", False) or isinstance(error, KafkaTimeoutError):
                raise
            raise DeadLetterRefused(f"the broker refused a dead letter for {self.topics.dead_letters} "
                                    f"({type(error).__name__}: {error}); the consumer stops rather than redo the "
                                    "batch forever") from error

    def _letter_record(self, letter: DeadLetter, store_env: Mapping[str, str]) -> LetterRecord:
        message = letter.message
        if is_oversized(message.key, message.value or b""):
            try:
                self.oversized_payloads(store_env).keep(message.topic, message.partition, message.offset, message.key,
                                               message.value or b"")
            except STORE_ERRORS as error:
                raise PersistenceError(f"could not keep an oversized dead letter's original: {error}") from error
        return letter_record(letter.code, letter.reason, message.topic, message.partition, message.offset,
                             message.key, message.value)

    def oversized_payloads(self, store_env: Mapping[str, str]) -> OversizedPayloads:
        """Where originals too large for a dead letter are kept: beside the store rated into."""
        if self._oversized_payloads is None:
            store = StoreSettings(dict(store_env), "the event store")
            self._oversized_payloads = OversizedPayloads(ViewDatabase.for_store(store))
        return self._oversized_payloads

    def _redo_later(self, service: BillingService, partition: TopicPartition, first_offset: int,
                    error: Exception) -> None:
        conflict = isinstance(error, IntegrityError)
        log.warning("batch of %s[%d] from offset %d not saved (%s: %s); redoing it", partition.topic,
                    partition.partition, first_offset, type(error).__name__, error)
        service.discard()
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


class _HandOverAssignments(ConsumerRebalanceListener):
    """Runs on kafka-python's IO thread, beside the batch being rated: it must not touch the
    store or the service. It pauses the new partitions (so nothing is fetched from a position the
    store has not confirmed) and hands them to the polling thread."""

    def __init__(self, consumer: KafkaConsumer, handover: "queue.SimpleQueue[set[TopicPartition]]") -> None:
        self.consumer, self.handover = consumer, handover

    def on_partitions_revoked(self, revoked) -> None:
        pass  # a batch saved after the revocation is still exact: the store's position and usage ids decide

    def on_partitions_assigned(self, assigned) -> None:
        if assigned:
            self.consumer.pause(*assigned)
            self.handover.put(set(assigned))


def _names(partitions) -> str:
    return ", ".join(f"{p.topic}[{p.partition}]" for p in sorted(partitions)) or "nothing"
