"""The event relay: the event store's notification log (the outbox) to `billing-events.v1`.

Steps, for each batch of stored events in log order:
1. build one message per event (`producers.event_messages`), keyed by organization, sent to a
   partition chosen here (murmur2 of the key, as Kafka's default partitioner does) so that the
   relay knows where each position went;
2. wait until the broker confirmed every message of the batch (idempotent producer, acks=all,
   so retries neither duplicate nor reorder within a partition);
3. record the last relayed position in the store (a tracking record).

A crash after 2 and before 3 would publish the batch again on restart. To avoid that, the relay
reads the last message of every partition when it starts and skips each event whose position is
at or below its partition's last published position: every position is published exactly once,
per organization in order. (One relay per store; a second one would publish everything twice.)

A store that does not answer (PostgreSQL restarting, a network cut) is waited out, not a reason
to stop: `run` logs each failed attempt at WARNING with its error and tries again after a pause
that doubles from `RETRY_BACKOFF_S` up to `RETRY_BACKOFF_CAP_S`, for as long as it takes. Only
reading the batch and step 3 touch the store, and the relay's position (in memory) moves past a
batch only once the broker confirmed it, so a retry goes on from there: a failed read published
nothing, and a confirmed batch whose step 3 failed is recorded before the next batch is read.
A step 3 that committed but whose answer was lost is retried by the library and refused (the
position is recorded already): the relay reads the store's position back and goes on. Broker
failures are not retried here: what the broker took of a half-sent batch is known only to a
restarted relay, which reads every partition's last message.
"""

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from eventsourcing.persistence import IntegrityError, Notification, PersistenceError, Tracking
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from application.billing_application import BillingApplication
from application.service import organizations_in_creation_order
from application.shard import partition_for_key
from messaging.embedded_broker import ensure_topics
from producers.event_messages import OrganizationKeys, event_message

log = logging.getLogger("commcredits.relay")

RELAY_BATCH_EVENTS = 1000
RELAY_IDLE_SLEEP_S = 0.2
CONFIRM_TIMEOUT_S = 30.0
RELAY_LINGER_MS = 5
TAIL_READ_TIMEOUT_MS = 5000
DEFAULT_EVENT_PARTITIONS = 4
RETRY_BACKOFF_S = 0.5  # the pause after a first failed attempt; it doubles with each further one
RETRY_BACKOFF_CAP_S = 15.0  # the longest pause between two attempts


def relay_position_name(topic: str) -> str:
    return f"relay:{topic}"


@dataclass
class RelayStats:
    published: int = 0
    skipped: int = 0
    batches: int = 0


class EventRelay:
    def __init__(self, app: BillingApplication, bootstrap_servers: str, topic: str, *,
                 partitions: int = DEFAULT_EVENT_PARTITIONS, client_id: str = "commcredits-relay",
                 republish_when_topic_empty: bool = False, batch_events: int = RELAY_BATCH_EVENTS) -> None:
        self.app, self.topic, self.batch_events = app, topic, batch_events
        self.stats = RelayStats()
        ensure_topics(bootstrap_servers, {topic: partitions})
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers, client_id=client_id,
            acks="all", enable_idempotence=True, max_in_flight_requests_per_connection=5,
            linger_ms=RELAY_LINGER_MS)
        self.partitions = sorted(self.producer.partitions_for(topic))
        self.keys = OrganizationKeys()
        self.position = self.recorded = app.recorder.max_tracking_id(relay_position_name(topic)) or 0
        self.published_tail = read_published_tail(bootstrap_servers, topic, self.partitions)
        if republish_when_topic_empty and self.position and not any(self.published_tail.values()):
            log.warning("%s is empty but %d events were relayed before (a memory-only broker restarted): "
                        "publishing the whole history again", topic, self.position)
            self.position = 0
        self._learn_organizations()

    def run(self, stop: threading.Event) -> None:
        """Relay until `stop` is set, waiting out a store that does not answer (module docstring)."""
        failures = 0
        try:
            while not stop.is_set():
                try:
                    relayed = self.relay_once()
                except PersistenceError as error:
                    failures += 1
                    pause_s = retry_pause_s(failures)
                    log.warning("event store unavailable (attempt %d: %s: %s); relaying on from position %d "
                                "in %.1f s", failures, type(error).__name__, error, self.position, pause_s)
                    stop.wait(pause_s)
                    continue
                failures = 0
                if not relayed:
                    stop.wait(RELAY_IDLE_SLEEP_S)
        finally:
            self.close()

    def relay_once(self) -> int:
        """Publish the next batch; returns how many stored events it covered. A PersistenceError
        leaves `position` at the last batch the broker confirmed: calling again goes on from there."""
        self._record_position()  # a confirmed batch whose position the store did not take
        notifications = self.app.recorder.select_notifications(self.position + 1, self.batch_events)
        if not notifications:
            return 0
        self.stats.published += self._publish(notifications)
        self.stats.batches += 1
        self.position = notifications[-1].id
        self._record_position()
        return len(notifications)

    def _publish(self, notifications: Sequence[Notification]) -> int:
        """Steps 1 and 2; returns how many messages the broker confirmed (the rest it had already)."""
        futures = []
        for notification in notifications:
            key, value, headers = event_message(notification, self.app.mapper.transcoder, self.keys)
            partition = self.partition_of(key)
            if notification.id <= self.published_tail.get(partition, 0):
                self.stats.skipped += 1
                continue
            futures.append(self.producer.send(self.topic, key=key, value=value, headers=headers, partition=partition))
        self.producer.flush(timeout=CONFIRM_TIMEOUT_S)
        for future in futures:
            future.get(timeout=CONFIRM_TIMEOUT_S)
        return len(futures)

    def _record_position(self) -> None:
        """Step 3, unless the store has the position already: a republished history (the store
        refuses a position twice), or a save that committed although its answer was lost."""
        if self.position <= self.recorded:
            return
        name = relay_position_name(self.topic)
        try:
            self.app.save(tracking=Tracking(name, self.position))
        except IntegrityError:
            self.recorded = self.app.recorder.max_tracking_id(name) or 0
            if self.recorded < self.position:
                raise
            log.info("position %d was recorded already (a save whose answer was lost)", self.position)
            return
        self.recorded = self.position

    def partition_of(self, key: bytes) -> int:
        return self.partitions[partition_for_key(key, len(self.partitions))]

    def close(self) -> None:
        self.producer.close()

    def _learn_organizations(self) -> None:
        """Accounts and registries created before our position: their later events need the org."""
        for org in organizations_in_creation_order(self.app):
            self.keys.learn(org)


def retry_pause_s(failures: int) -> float:
    """The pause after the `failures`-th failed attempt in a row: 0.5, 1, 2, 4, 8, then 15 s."""
    assert failures >= 1
    return min(RETRY_BACKOFF_CAP_S, RETRY_BACKOFF_S * 2 ** min(failures - 1, 32))


def read_published_tail(bootstrap_servers: str, topic: str, partitions: list[int]) -> dict[int, int]:
    """The position carried by the last message of each partition (0 when empty)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                             consumer_timeout_ms=TAIL_READ_TIMEOUT_MS)
    try:
        assigned = [TopicPartition(topic, partition) for partition in partitions]
        consumer.assign(assigned)
        ends = consumer.end_offsets(assigned)
        tail = {partition.partition: 0 for partition in assigned}
        waiting = {partition for partition in assigned if ends[partition] > 0}
        for partition in waiting:
            consumer.seek(partition, ends[partition] - 1)
        deadline = time.monotonic() + TAIL_READ_TIMEOUT_MS / 1000
        while waiting and time.monotonic() < deadline:
            for partition, records in consumer.poll(timeout_ms=200).items():
                for record in records:
                    position = dict(record.headers or []).get("position")
                    if position is None or not position.isdigit():
                        log.warning("%s[%d] offset %d is not a relayed event (no position header); ignored",
                                    topic, partition.partition, record.offset)
                        continue
                    tail[partition.partition] = max(tail[partition.partition], int(position))
                waiting.discard(partition)
        if waiting:
            raise RuntimeError(f"could not read the last message of {sorted(p.partition for p in waiting)} of {topic}")
        return tail
    finally:
        consumer.close()
