"""The broker restarts while the consumer runs: the consumer reconnects and goes on by itself.

The embedded broker keeps messages in memory, so its restart empties every topic and offsets
start at 0 again; the consumer must notice the new topic (its id changed) and rate the new
messages instead of skipping them as 'already done' by the old topic's position."""

import threading
import time

import orjson
import pytest
from kafka import KafkaProducer

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from commcredits.simulate import RunLog, Simulation, report_document
from consumers.cdr_consumer import CdrConsumer
from messaging.embedded_broker import EmbeddedBroker, ensure_topics
from tests.support import SPEC_EXAMPLES, SPEC_RATES, simulate_lines

RECOVERY_TIMEOUT_S = 120.0
# As many partitions as Tansu gives a topic it creates by itself: after the restart, the
# consumer's metadata request can reach the empty broker before `ensure_topics` does, and Tansu
# then creates the topic with its default of 4 (it does not honour allow_auto_topic_creation=false).
# With 1 partition here that race changed the partition count under the group, and kafka-python's
# rejoin then ended without an assignment (about one run in ten under the parallel suite).
PARTITIONS = 4


def publish(broker: EmbeddedBroker, topic: str, lines: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
    for line in lines:
        producer.send(topic, key=orjson.loads(line)["org"].encode(), value=line)
    producer.flush()
    producer.close()


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
def test_the_consumer_goes_on_after_the_broker_restarts(store, unique_topics):
    lines = (SPEC_EXAMPLES / "01-basics.jsonl").read_bytes().splitlines()
    first_cdr = next(index for index, line in enumerate(lines) if b'"type":"cdr"' in line)
    cdrs = [line for line in lines[first_cdr:] if b'"type":"cdr"' in line]
    before, after = cdrs[: len(cdrs) // 2], cdrs[len(cdrs) // 2:]

    app = BillingApplication(env=store.env)
    simulation = Simulation(app, SPEC_RATES, load_catalog(None))
    simulation.run(lines[:first_cdr])
    broker = EmbeddedBroker().start()
    port = broker.port
    ensure_topics(broker.bootstrap_servers, {unique_topics.cdrs: PARTITIONS, unique_topics.dead_letters: 1})
    consumer = CdrConsumer(simulation.service, broker.bootstrap_servers, unique_topics)
    stop = threading.Event()
    worker = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    worker.start()
    try:
        publish(broker, unique_topics.cdrs, before)
        stats = consumer.stats
        wait_for(lambda: stats.handled >= len(before), "the first half")

        broker.stop()
        broker = EmbeddedBroker(port=port).start()  # same address, empty: offsets start at 0 again
        ensure_topics(broker.bootstrap_servers, {unique_topics.cdrs: PARTITIONS, unique_topics.dead_letters: 1})
        publish(broker, unique_topics.cdrs, after)
        wait_for(lambda: stats.handled >= len(cdrs), "the second half")
    finally:
        stop.set()
        worker.join(30)
        broker.stop()
    report = report_document(app, RunLog())
    app.close()
    expected = simulate_lines(lines[:first_cdr] + cdrs)
    assert report["calls"] == expected["calls"]  # both halves, each CDR once
    assert report["organizations"] == expected["organizations"]
