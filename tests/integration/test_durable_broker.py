"""Against a durable broker nothing is lost: the broker crashes (SIGKILL) while the consumer is
in the middle of a stream, comes back with its topics, and the consumer goes on by itself from
the store's position: every CDR rated once, none twice, none skipped.

The durable broker is the embedded one (Tansu) on its S3 storage engine, the S3 store a local
moto server: topics survive the broker process, as they do on a Kafka cluster."""

import subprocess
import sys
import threading
import time

import boto3
import orjson
import pytest
from kafka import KafkaProducer

from application.billing_application import BillingApplication
from application.reference_data import load_catalog, load_rate_card
from commcredits.scenario import encoded, generate
from commcredits.simulate import RunLog, Simulation, report_document
from consumers.cdr_consumer import CdrConsumer
from messaging.embedded_broker import EmbeddedBroker, ensure_topics, free_port
from tests.support import simulate_lines

BUCKET = "commcredits-broker"
S3_START_TIMEOUT_S = 30.0
RECOVERY_TIMEOUT_S = 120.0
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3_storage():
    """A local S3-compatible server with one bucket; yields the broker's environment for it."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    credentials = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
    deadline = time.monotonic() + S3_START_TIMEOUT_S
    while True:
        try:
            boto3.client("s3", endpoint_url=endpoint, **credentials).create_bucket(Bucket=BUCKET)
            break
        except Exception:  # not listening yet
            assert time.monotonic() < deadline and server.poll() is None, "the S3 server did not start"
            time.sleep(0.2)
    yield {"AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "test",
           "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    server.terminate()
    server.wait(10)


def wait_for(condition, what: str) -> None:
    deadline = time.monotonic() + RECOVERY_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_a_durable_broker_crashing_mid_stream_loses_and_doubles_nothing(store, unique_topics, s3_storage):
    lines = [encoded(line) for line in generate(organizations=3, users=60, cdrs=3000, seed=3)]
    first_cdr = next(index for index, line in enumerate(lines) if b'"type":"cdr"' in line)
    setup, cdrs = lines[:first_cdr], [line for line in lines[first_cdr:] if b'"type":"cdr"' in line]
    app = BillingApplication(env=store.env)
    simulation = Simulation(app, load_rate_card(None), load_catalog(None))
    simulation.run(setup)

    broker = EmbeddedBroker(storage=f"s3://{BUCKET}/", environment=s3_storage).start()
    ensure_topics(broker.bootstrap_servers, {unique_topics.cdrs: 1, unique_topics.dead_letters: 1})
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all", linger_ms=5)
    for line in cdrs:
        producer.send(unique_topics.cdrs, key=orjson.loads(line)["org"].encode(), value=line)
    producer.flush()
    producer.close()

    consumer = CdrConsumer(simulation.service, broker.bootstrap_servers, unique_topics, max_records=100)
    stop = threading.Event()
    worker = threading.Thread(target=consumer.run, args=(stop,), daemon=True)
    worker.start()
    stats = consumer.stats
    try:
        wait_for(lambda: stats.handled >= 300, "the first batches")
        broker.kill()  # mid-stream: some CDRs rated, most still on the topic
        at_crash = stats.handled
        assert at_crash < len(cdrs), "the consumer finished before the crash; make the stream longer"
        broker = EmbeddedBroker(port=broker.port, storage=broker.storage, environment=s3_storage).start()
        wait_for(lambda: stats.handled >= len(cdrs), "the rest of the stream")
        time.sleep(1)  # anything re-delivered would show up as extra rated or duplicate CDRs by now
    finally:
        stop.set()
        worker.join(30)
        broker.stop()

    assert stats.handled == len(cdrs)  # each CDR once: none skipped, none taken twice
    report = report_document(app, RunLog())
    app.close()
    expected = simulate_lines(setup + cdrs, rate_card=load_rate_card(None))
    assert stats.duplicates == expected["counts"]["duplicates"]  # only the month's own repeats
    assert report["calls"] == expected["calls"]
    assert report["organizations"] == expected["organizations"]

