"""What kafka-python knows of a topic and does not expose: its id, and a metadata refresh now.

A topic deleted and created again (a memory-only broker restarted) has a new id and offsets that
start at 0 again; the consumers and the projection feed name their positions after the id so that
a new topic never inherits an old topic's position.
"""

import threading
import time

from kafka import KafkaConsumer
from kafka.errors import KafkaTimeoutError


def topic_incarnation(consumer: KafkaConsumer, topic: str) -> str:
    # kafka-python keeps topic ids (Kafka >= 2.8 metadata) in its cluster view, not in a public API
    topic_id = consumer._client.cluster.topic_id(topic)
    return str(topic_id) if topic_id is not None else ""


def refresh_topic_metadata(consumer: KafkaConsumer, timeout_s: float) -> None:
    """Wait for a metadata response requested after this call (one already in flight may predate
    a topic's re-creation, so it is waited out first)."""
    cluster = consumer._client.cluster  # kafka-python has no public "refresh now with a timeout"
    deadline = time.monotonic() + timeout_s
    for _ in range(2 if cluster.metadata_refresh_in_progress else 1):
        done = threading.Event()
        future = cluster.request_update()
        future.add_both(lambda _result: done.set())
        if not done.wait(max(0.0, deadline - time.monotonic())):
            raise KafkaTimeoutError(f"no topic metadata from the broker within {timeout_s:g} s")
        if future.failed():
            raise future.exception
