"""The event relay against the real broker and stores: every stored event is published once per
position, keyed by organization and in order, across restarts and a crash between publishing
and recording the position."""

from collections import defaultdict

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from commcredits.simulate import Simulation
from producers.event_relay import EventRelay
from tests.support import SPEC_EXAMPLES, SPEC_RATES


def simulate_into(store, example: str, lines: slice = slice(None)) -> int:
    """Apply (part of) a spec example to the store; returns the store's last position."""
    app = BillingApplication(env=store.env)
    simulation = Simulation(app, SPEC_RATES, load_catalog(None))
    simulation.run((SPEC_EXAMPLES / f"{example}.jsonl").read_bytes().splitlines()[lines])
    last = app.recorder.max_notification_id() or 0
    app.close()
    return last


def relay_all(store, broker, topic: str, *, crash_after_publishing: bool = False) -> None:
    app = BillingApplication(env=store.env)
    relay = EventRelay(app, broker.bootstrap_servers, topic)
    if crash_after_publishing:
        def crash(*args, **kwargs):
            raise KeyboardInterrupt("killed after the broker confirmed, before the position was recorded")
        app.save = crash
        with pytest.raises(KeyboardInterrupt):
            relay.relay_once()
    else:
        while relay.relay_once():
            pass
    relay.close()
    app.close()


def published(broker, topic: str) -> list:
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, consumer_timeout_ms=2000)
    partitions = [TopicPartition(topic, partition) for partition in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    messages = list(consumer)
    consumer.close()
    return messages


def positions(messages) -> list[int]:
    return sorted(int(dict(message.headers)["position"]) for message in messages)


def test_every_stored_event_is_published_once_keyed_by_organization(store, kafka_broker, unique_topics):
    last = simulate_into(store, "02-expiry-and-recharge")
    relay_all(store, kafka_broker, unique_topics.events)
    messages = published(kafka_broker, unique_topics.events)

    app = BillingApplication(env=store.env)
    stored = list(app.recorder.select_notifications(1, last + 1))
    app.close()
    assert positions(messages) == [notification.id for notification in stored]

    by_type = defaultdict(int)
    for message in messages:
        value = orjson.loads(message.value)
        headers = dict(message.headers)
        assert headers["type"].decode() == value["type"] and int(headers["position"]) == value["position"]
        assert value["timestamp"].endswith("Z") and value["version"] == 1
        by_type[value["type"].rpartition(".")[2]] += 1
        if value["type"].startswith(("CreditAccount.", "LicenceRegistry.", "Order.", "UsageClaim.")):
            assert message.key != b"engine", value
    for required in ("FundsAdded", "CallRated", "RechargeTriggered", "FundsExpired"):
        assert by_type[required] > 0, required

    per_partition = defaultdict(list)
    for message in messages:
        per_partition[message.partition].append(int(dict(message.headers)["position"]))
    for in_partition in per_partition.values():
        assert in_partition == sorted(in_partition)  # each organization's events in store order


def test_a_call_rated_message_carries_what_an_auditor_needs(store, kafka_broker, unique_topics):
    simulate_into(store, "01-basics")
    relay_all(store, kafka_broker, unique_topics.events)
    calls = [orjson.loads(message.value) for message in published(kafka_broker, unique_topics.events)
             if dict(message.headers)["type"] == b"CreditAccount.CallRated"]
    assert calls
    for call in calls:
        data = call["data"]
        assert {"usage_id", "rate", "pool", "debits", "charge", "debited", "uncollected", "overage"} <= data.keys()
        assert isinstance(data["charge"], str)


def test_a_restarted_relay_goes_on_from_its_position(store, kafka_broker, unique_topics):
    simulate_into(store, "02-expiry-and-recharge", slice(0, 12))
    relay_all(store, kafka_broker, unique_topics.events)
    last = simulate_into(store, "02-expiry-and-recharge", slice(12, None))
    relay_all(store, kafka_broker, unique_topics.events)
    assert positions(published(kafka_broker, unique_topics.events)) == list_positions(store, last)


def test_a_crash_after_publishing_and_before_recording_publishes_nothing_twice(store, kafka_broker, unique_topics):
    last = simulate_into(store, "03-nce-pools-bulk")
    relay_all(store, kafka_broker, unique_topics.events, crash_after_publishing=True)
    relay_all(store, kafka_broker, unique_topics.events)
    assert positions(published(kafka_broker, unique_topics.events)) == list_positions(store, last)


def list_positions(store, last: int) -> list[int]:
    app = BillingApplication(env=store.env)
    ids = [notification.id for notification in app.recorder.select_notifications(1, last + 1)]
    app.close()
    return ids


def test_republishing_into_an_emptied_topic_publishes_the_history_once_and_does_not_crash(store, kafka_broker,
                                                                                       unique_topics):
    """A memory-only broker restarted: the topic is empty although the store recorded a position.
    The relay publishes the history again (recording no position twice), then goes on."""
    from kafka import KafkaAdminClient

    from messaging.embedded_broker import ensure_topics
    from producers.event_relay import DEFAULT_EVENT_PARTITIONS

    topic = unique_topics.events
    simulate_into(store, "02-expiry-and-recharge", slice(0, 12))
    relay_all(store, kafka_broker, topic)
    admin = KafkaAdminClient(bootstrap_servers=kafka_broker.bootstrap_servers)
    admin.delete_topics([topic])
    admin.close()
    ensure_topics(kafka_broker.bootstrap_servers, {topic: DEFAULT_EVENT_PARTITIONS})
    app = BillingApplication(env=store.env)
    relay = EventRelay(app, kafka_broker.bootstrap_servers, topic, republish_when_topic_empty=True)
    while relay.relay_once():
        pass
    last = simulate_into(store, "02-expiry-and-recharge", slice(12, None))
    while relay.relay_once():
        pass
    relay.close()
    app.close()
    assert positions(published(kafka_broker, topic)) == list_positions(store, last)


def test_a_foreign_message_at_the_end_of_a_partition_does_not_stop_the_relay(store, kafka_broker, unique_topics):
    from kafka import KafkaProducer

    simulate_into(store, "01-basics", slice(0, 10))
    relay_all(store, kafka_broker, unique_topics.events)
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers)
    for partition in producer.partitions_for(unique_topics.events):
        producer.send(unique_topics.events, value=b"not an event", partition=partition)
    producer.flush()
    producer.close()
    last = simulate_into(store, "01-basics", slice(10, None))
    relay_all(store, kafka_broker, unique_topics.events)  # starts by reading every partition's last message
    relayed = [message for message in published(kafka_broker, unique_topics.events) if message.headers]
    assert positions(relayed) == list_positions(store, last)
