"""A topic deleted and created again under a running consumer whose group survives it.

The consumer's fetch position from the old topic (offset 4) is valid in the new one once it holds
4 messages: no fetch fails, no rebalance comes, and without a look at the topic's id the new
messages would wait for ever (what made `test_broker_restart` time out now and then under load).
The consumer notices the new id within `METADATA_MAX_AGE_MS` and positions the partition from the
store again, at the new topic's start.
"""

import time

import orjson
import pytest
from kafka import KafkaAdminClient

from messaging.embedded_broker import ensure_topics
from tests.integration.test_cdr_consumer import CDR, Pipeline, setup_then_calls, wait_until_assigned

DELETION_TIMEOUT_S = 30.0


def publish_calls(pipeline: Pipeline, prefix: str, count: int) -> None:
    for number in range(count):
        pipeline.producer.send(pipeline.topics.cdrs, key=b"contoso",
                               value=orjson.dumps({**CDR, "usage_id": f"{prefix}-{number}"}))
    pipeline.published += count
    pipeline.wait_until_consumed()


def delete_topic(bootstrap_servers: str, topic: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    try:
        admin.delete_topics([topic])
        deadline = time.monotonic() + DELETION_TIMEOUT_S
        while topic in admin.list_topics():
            assert time.monotonic() < deadline, f"{topic} was not deleted"
            time.sleep(0.1)
    finally:
        admin.close()


@pytest.mark.slow
def test_a_topic_created_again_under_a_running_consumer_is_read_from_its_start(store, kafka_broker, unique_topics):
    setup, _ = setup_then_calls()
    with Pipeline(store, kafka_broker, unique_topics) as pipeline:
        pipeline.simulation.run(setup)
        wait_until_assigned(pipeline.consumer)
        publish_calls(pipeline, "old", 4)
        delete_topic(kafka_broker.bootstrap_servers, unique_topics.cdrs)
        ensure_topics(kafka_broker.bootstrap_servers, {unique_topics.cdrs: 1})
        publish_calls(pipeline, "new", 4)  # as many as before: the old fetch position is valid
        assert pipeline.consumer.stats.rated == 8 and pipeline.consumer.stats.duplicates == 0


def test_a_membership_that_never_settles_joins_the_group_again(store, kafka_broker, unique_topics, monkeypatch):
    """kafka-python's rejoin can end without an assignment after the broker lost the group: the
    consumer then leaves and joins with a fresh client, and reads on from the store's position."""
    from kafka.structs import MemberState

    import consumers.cdr_consumer as cdr_consumer

    setup, _ = setup_then_calls()
    with Pipeline(store, kafka_broker, unique_topics) as pipeline:
        pipeline.simulation.run(setup)
        wait_until_assigned(pipeline.consumer)
        publish_calls(pipeline, "before", 2)
        stuck = pipeline.consumer.consumer
        monkeypatch.setattr(cdr_consumer, "STUCK_REBALANCE_S", 1.0)  # after the first join, which takes longer
        monkeypatch.setattr(stuck, "group_metadata", lambda: stuck._coordinator.group_metadata()._replace(
            state=MemberState.REBALANCING))
        deadline = time.monotonic() + 30
        while pipeline.consumer.rejoins == 0:
            assert time.monotonic() < deadline, "the consumer never joined again"
            pipeline.consumer.poll_once()
        monkeypatch.setattr(cdr_consumer, "STUCK_REBALANCE_S", 60.0)  # the fresh client's join may take seconds
        assert pipeline.consumer.consumer is not stuck and pipeline.consumer.rejoins == 1
        publish_calls(pipeline, "after", 2)
        assert pipeline.consumer.stats.rated == 4 and pipeline.consumer.stats.duplicates == 0


def test_a_partition_held_but_never_resumed_makes_the_consumer_join_again(store, kafka_broker, unique_topics,
                                                                           monkeypatch):
    """A hand-over lost between kafka-python's thread and ours leaves a held partition paused for
    good while the group is stable: the consumer joins again and reads on from the store."""
    import consumers.cdr_consumer as cdr_consumer

    setup, _ = setup_then_calls()
    with Pipeline(store, kafka_broker, unique_topics) as pipeline:
        pipeline.simulation.run(setup)
        partition = wait_until_assigned(pipeline.consumer)
        publish_calls(pipeline, "before", 2)
        pipeline.consumer.consumer.pause(partition)  # as if its hand-over never came
        monkeypatch.setattr(cdr_consumer, "STUCK_REBALANCE_S", 1.0)
        deadline = time.monotonic() + 30
        while pipeline.consumer.rejoins == 0:
            assert time.monotonic() < deadline, "the consumer never joined again"
            pipeline.consumer.poll_once()
        monkeypatch.setattr(cdr_consumer, "STUCK_REBALANCE_S", 60.0)
        publish_calls(pipeline, "after", 2)
        assert pipeline.consumer.stats.rated == 4 and pipeline.consumer.stats.duplicates == 0


def test_a_position_past_the_end_of_the_log_moves_back_to_the_stores(store, kafka_broker, unique_topics):
    """The embedded broker answers a fetch past the log's end with no records (Kafka would say
    OFFSET_OUT_OF_RANGE), so a position kept from an older topic would wait until the log grows
    past it; the consumer sees the broker's end behind its position and reads from the store's."""
    setup, _ = setup_then_calls()
    with Pipeline(store, kafka_broker, unique_topics) as pipeline:
        pipeline.simulation.run(setup)
        partition = wait_until_assigned(pipeline.consumer)
        publish_calls(pipeline, "before", 2)
        pipeline.consumer.consumer.seek(partition, 50)  # as if positioned against an older topic
        publish_calls(pipeline, "after", 2)
        assert pipeline.consumer.stats.rated == 4 and pipeline.consumer.stats.duplicates == 0
