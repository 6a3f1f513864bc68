"""Projections fed from `billing-events.v1` instead of the store's log, against the real broker
and both stores: the balance view built from the topic equals the one built from the log and
what `simulate` reports; a republished history changes nothing; a feed stopped half-way goes on
from its recorded offsets; a message that is not an event document is skipped and counted."""

import threading
import time

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from commcredits.simulate import Simulation
from producers.event_relay import EventRelay
from projections.balance_queries import organization_report, organizations
from projections.balance_view import BalanceView
from projections.kafka_source import MalformedEvent, TopicFeed, decode_event
from projections.projector import Projector
from projections.runner import catch_up
from projections.sources import StoreLog
from projections.view_database import ViewDatabase
from tests.support import SPEC_EXAMPLES, SPEC_RATES

EXAMPLES = sorted(path.stem for path in SPEC_EXAMPLES.glob("*.jsonl"))
READ_TIMEOUT_MS = 2000
RUN_TIMEOUT_S = 30.0


def expected_organizations(example: str) -> dict:
    return orjson.loads((SPEC_EXAMPLES / f"{example}.expected.json").read_bytes())["organizations"]


def simulate(store, example: str, lines: slice = slice(None)) -> None:
    app = BillingApplication(env=store.env)
    try:
        Simulation(app, SPEC_RATES, load_catalog(None)).run((SPEC_EXAMPLES / f"{example}.jsonl").read_bytes()
                                                            .splitlines()[lines])
    finally:
        app.close()


def relay(store, broker, topic: str, before_relaying=lambda: None) -> None:
    app = BillingApplication(env=store.env)
    event_relay = EventRelay(app, broker.bootstrap_servers, topic)
    try:
        before_relaying()
        while event_relay.relay_once():
            pass
    finally:
        event_relay.close()
        app.close()


def report(database: ViewDatabase, view: BalanceView) -> dict:
    return {org: organization_report(database, view, org) for org in organizations(database, view)}


def from_the_log(store, database: ViewDatabase) -> dict:
    app = BillingApplication(env=store.env)
    view = BalanceView("balance")
    try:
        catch_up(Projector(view, database), StoreLog(app))
    finally:
        app.close()
    return report(database, view)


def published(broker, topic: str) -> list:
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, consumer_timeout_ms=READ_TIMEOUT_MS)
    partitions = [TopicPartition(topic, partition) for partition in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(partitions)
    consumer.seek_to_beginning()
    messages = list(consumer)
    consumer.close()
    return messages


def produce(broker, topic: str, messages: list[tuple[int, bytes | None, bytes, list]]) -> None:
    """(partition, key, value, headers) as they are, confirmed by the broker."""
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all", enable_idempotence=True)
    try:
        futures = [producer.send(topic, key=key, value=value, headers=headers, partition=partition)
                   for partition, key, value, headers in messages]
        producer.flush(timeout=30)
        for future in futures:
            future.get(timeout=30)
    finally:
        producer.close()


@pytest.fixture
def view_database(store):
    database = ViewDatabase.for_store(store)
    yield database
    database.close()


def feed_into(database: ViewDatabase, broker, topic: str, view: BalanceView, **options) -> TopicFeed:
    return TopicFeed(broker.bootstrap_servers, topic, [Projector(view, database)], **options)


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_view_from_the_topic_equals_the_view_from_the_log_and_simulate(
        example, store, view_database, kafka_broker, unique_topics):
    simulate(store, example)
    relay(store, kafka_broker, unique_topics.events)
    view = BalanceView("balance_kafka")
    feed = feed_into(view_database, kafka_broker, unique_topics.events, view)
    try:
        assert feed.catch_up() > 0
    finally:
        feed.close()
    from_topic = report(view_database, view)
    assert from_topic == from_the_log(store, view_database)
    assert from_topic == expected_organizations(example)
    assert feed.stats.malformed == 0
    assert feed.stats.polled == len(published(kafka_broker, unique_topics.events))


def test_a_republished_history_changes_nothing(store, view_database, kafka_broker, unique_topics):
    example, topic = "02-expiry-and-recharge", unique_topics.events
    simulate(store, example)
    relay(store, kafka_broker, topic)
    view = BalanceView("balance_kafka")
    feed = feed_into(view_database, kafka_broker, topic, view)
    try:
        feed.catch_up()
        before, offsets = report(view_database, view), feed.recorded_offsets()
        history = published(kafka_broker, topic)
        produce(kafka_broker, topic, [(m.partition, m.key, m.value, m.headers) for m in history])
        applied, polled = feed.stats.applied, feed.stats.polled
        assert feed.catch_up() == 0
        assert feed.stats.applied == applied
        assert feed.stats.polled - polled == len(history)  # every message read again, none applied
        assert feed.recorded_offsets() == {partition: 2 * offset for partition, offset in offsets.items()}
    finally:
        feed.close()
    assert report(view_database, view) == before == expected_organizations(example)


def test_a_feed_stopped_half_way_goes_on_from_its_recorded_offsets(store, view_database, kafka_broker, unique_topics):
    example, topic = "03-nce-pools-bulk", unique_topics.events
    simulate(store, example, slice(0, 20))
    relay(store, kafka_broker, topic)
    total = len(published(kafka_broker, topic))
    view = BalanceView("balance_kafka")
    first = feed_into(view_database, kafka_broker, topic, view, max_records=7)
    try:
        for _ in range(1000):  # a bound, should the feed stall
            if first.stats.polled >= total // 2:
                break
            first.poll_once()
    finally:
        first.close()
    assert 0 < first.stats.polled < total
    simulate(store, example, slice(20, None))  # more events while the feed is down
    relay(store, kafka_broker, topic)
    total = len(published(kafka_broker, topic))
    second = feed_into(view_database, kafka_broker, topic, view)
    try:
        second.catch_up()
    finally:
        second.close()
    assert second.stats.polled == total - first.stats.polled  # nothing read twice, nothing skipped
    assert report(view_database, view) == from_the_log(store, view_database) == expected_organizations(example)
    assert [second.stats.positionings, second.stats.malformed] == [1, 0]


def test_a_message_that_is_not_an_event_document_is_skipped_and_counted(
        store, view_database, kafka_broker, unique_topics):
    example, topic = "01-basics", unique_topics.events
    simulate(store, example, slice(0, 6))
    relay(store, kafka_broker, topic)  # creates the topic with its partitions
    partitions = sorted({message.partition for message in published(kafka_broker, topic)})
    bad = [(partitions[0], b"contoso", b"not json {", []), (partitions[0], b"contoso", b'{"type": 1}', []),
           (partitions[-1], None, b"[1, 2]", [])]
    simulate(store, example, slice(6, None))  # the feed must go past the bad messages to these
    # (produced once the relay started: it reads the `position` header of each partition's last
    # messages when it starts, and fails on a message without one)
    relay(store, kafka_broker, topic, before_relaying=lambda: produce(kafka_broker, topic, bad))
    view = BalanceView("balance_kafka")
    feed = feed_into(view_database, kafka_broker, topic, view)
    try:
        feed.catch_up()
    finally:
        feed.close()
    assert feed.stats.malformed == len(bad)
    assert report(view_database, view) == expected_organizations(example)

    produce(kafka_broker, topic, [(partitions[0], b"contoso", b"\xff\xfe", [])])  # the last message of its partition
    again = feed_into(view_database, kafka_broker, topic, view)
    try:
        again.catch_up()
        assert again.stats.polled == 1 and again.stats.malformed == 1  # read from the recorded offsets
    finally:
        again.close()
    restarted = feed_into(view_database, kafka_broker, topic, view)
    try:
        restarted.catch_up()
        assert restarted.stats.polled == 0  # its offset was recorded though nothing was applied
    finally:
        restarted.close()


@pytest.mark.parametrize("value, reason", [
    (None, "no value"), (b"", "not JSON"), (b"null", "a JSON NoneType"),
    (b'{"type": "CreditAccount.Opened"}', "missing or mistyped"),
    (orjson.dumps({"type": "X.Y", "version": 1, "aggregate_id": "a", "aggregate_version": True,
                   "timestamp": "t", "position": 3, "data": {}}), "aggregate_version"),
    (orjson.dumps({"type": "X.Y", "version": 1, "aggregate_id": "a", "aggregate_version": 1,
                   "timestamp": "t", "position": 0, "data": {}}), "not a store position"),
])
def test_what_is_not_an_event_document_is_told_apart(value, reason):
    with pytest.raises(MalformedEvent, match=reason):
        decode_event(value)


def test_a_topic_created_again_is_read_from_its_beginning(store, view_database, kafka_broker, unique_topics):
    """As after a memory-only broker's restart: the history is published again at new offsets.
    Here the old topic held messages the new one has not (malformed ones), so its recorded offsets
    lie past events of the new topic: a feed that inherited them would skip those events."""
    example, topic = "01-basics", unique_topics.events
    simulate(store, example, slice(0, 10))
    relay(store, kafka_broker, topic)
    history = published(kafka_broker, topic)
    produce(kafka_broker, topic, [(organization_partition(history), None, b"not an event", [])] * 5)
    view = BalanceView("balance_kafka")
    feed = feed_into(view_database, kafka_broker, topic, view)
    try:
        feed.catch_up()
        old_incarnation = feed._positioned_for
    finally:
        feed.close()
    recreate(kafka_broker, topic, history)
    simulate(store, example, slice(10, None))
    relay(store, kafka_broker, topic)  # goes on after the republished history's last position
    restarted = feed_into(view_database, kafka_broker, topic, view)
    try:
        restarted.catch_up()
        assert restarted._positioned_for not in ("", old_incarnation)
    finally:
        restarted.close()
    assert report(view_database, view) == expected_organizations(example)
    assert restarted.stats.polled == len(published(kafka_broker, topic))  # all of it, from offset 0


def recreate(broker, topic: str, history: list) -> None:
    from kafka.admin import KafkaAdminClient

    from messaging.embedded_broker import ensure_topics
    from producers.event_relay import DEFAULT_EVENT_PARTITIONS

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap_servers)
    try:
        admin.delete_topics([topic])
    finally:
        admin.close()
    ensure_topics(broker.bootstrap_servers, {topic: DEFAULT_EVENT_PARTITIONS})
    produce(broker, topic, [(m.partition, m.key, m.value, m.headers) for m in history])


def test_a_running_feed_notices_a_topic_created_again(store, view_database, kafka_broker, unique_topics):
    example, topic = "01-basics", unique_topics.events
    simulate(store, example, slice(0, 10))
    relay(store, kafka_broker, topic)
    history = published(kafka_broker, topic)
    produce(kafka_broker, topic, [(organization_partition(history), None, b"not an event", [])] * 5)
    view = BalanceView("balance_kafka")
    feed = feed_into(view_database, kafka_broker, topic, view)
    try:
        feed.catch_up()
        old_incarnation = feed._positioned_for
        recreate(kafka_broker, topic, history)  # the feed's fetch positions are valid offsets of the new topic
        simulate(store, example, slice(10, None))
        relay(store, kafka_broker, topic)
        feed.catch_up()
        assert feed._positioned_for not in ("", old_incarnation)
        assert feed.stats.positionings == 2
    finally:
        feed.close()
    assert report(view_database, view) == expected_organizations(example)


def organization_partition(messages: list) -> int:
    """The partition of the (first) organization's events."""
    return next(m.partition for m in messages if orjson.loads(m.value)["type"].startswith("CreditAccount."))


def test_run_keeps_the_view_up_to_date_until_told_to_stop(store, view_database, kafka_broker, unique_topics):
    example, topic = "02-expiry-and-recharge", unique_topics.events
    simulate(store, example, slice(0, 8))
    relay(store, kafka_broker, topic)
    view = BalanceView("balance_kafka")
    feeds_database = ViewDatabase.for_store(store)  # a connection of its own: this thread reads the view
    feed = feed_into(feeds_database, kafka_broker, topic, view)
    stop = threading.Event()
    runner = threading.Thread(target=feed.run, args=(stop,))
    runner.start()
    try:
        simulate(store, example, slice(8, None))  # while the feed runs
        relay(store, kafka_broker, topic)
        deadline = time.monotonic() + RUN_TIMEOUT_S
        while report(view_database, view) != expected_organizations(example) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        runner.join(RUN_TIMEOUT_S)
        feeds_database.close()
    assert not runner.is_alive()
    assert report(view_database, view) == expected_organizations(example)
