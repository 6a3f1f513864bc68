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
"""

import logging
import threading
import time
from dataclasses import dataclass

from eventsourcing.persistence import Tracking
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from commcredits.application import BillingApplication
from commcredits.embedded_broker import ensure_topics
from commcredits.service import organizations_in_creation_order
from commcredits.shard import partition_for_key
from producers.event_messages import OrganizationKeys, event_message

log = logging.getLogger("commcredits.relay")

RELAY_BATCH_EVENTS = 1000
RELAY_IDLE_SLEEP_S = 0.2
CONFIRM_TIMEOUT_S = 30.0
RELAY_LINGER_MS = 5
TAIL_READ_TIMEOUT_MS = 5000
DEFAULT_EVENT_PARTITIONS = 4


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
        try:
            while not stop.is_set():
                if not self.relay_once():
                    stop.wait(RELAY_IDLE_SLEEP_S)
        finally:
            self.close()

    def relay_once(self) -> int:
        """Publish the next batch; returns how many stored events it covered."""
        notifications = self.app.recorder.select_notifications(self.position + 1, self.batch_events)
        if not notifications:
            return 0
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
        self.position = notifications[-1].id
        if self.position > self.recorded:  # a republished history is recorded already: the store refuses it twice
            self.app.save(tracking=Tracking(relay_position_name(self.topic), self.position))
            self.recorded = self.position
        self.stats.published += len(futures)
        self.stats.batches += 1
        return len(notifications)

    def partition_of(self, key: bytes) -> int:
        return self.partitions[partition_for_key(key, len(self.partitions))]

    def close(self) -> None:
        self.producer.close()

    def _learn_organizations(self) -> None:
        """Accounts and registries created before our position: their later events need the org."""
        for org in organizations_in_creation_order(self.app):
            self.keys.learn(org)


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
