"""Crash tests: the consumer and the relay are killed with SIGKILL at random points while they
work, restarted, and the final state is compared with `simulate` on the same input: no CDR lost,
none charged twice, every event position published once."""

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from application.billing_application import BillingApplication
from application.reference_data import load_catalog, load_rate_card
from commcredits.simulate import RunLog, Simulation, report_document
from consumers.cdr_consumer import topic_incarnation
from consumers.cdr_rating import position_name
from messaging.embedded_broker import ensure_topics
from producers.event_relay import relay_position_name
from tests.support import simulate_lines

ROOT = Path(__file__).resolve().parents[2]
KILLS_PER_PROCESS = 12  # per store: 24 consumer kills and 24 relay kills in all
BATCH_SIZE = 50  # small batches: many store transactions to land a kill between
KILL_WITHIN_S = 0.3
FINISH_TIMEOUT_S = 180.0
pytestmark = pytest.mark.slow


def scenario() -> tuple[list[bytes], list[bytes]]:
    """A generated month: the administrative lines before the first CDR, then its CDRs."""
    output = subprocess.run([sys.executable, str(ROOT / "examples" / "generate_scenario.py"), "--organizations", "2",
                             "--users", "30", "--cdrs", "8000", "--seed", "5"],
                            check=True, capture_output=True).stdout.splitlines()
    first_cdr = next(index for index, line in enumerate(output) if b'"type":"cdr"' in line)
    return output[:first_cdr], [line for line in output[first_cdr:] if b'"type":"cdr"' in line]


def database_url(store_kind: str, tmp_path: Path, schema: str | None) -> str:
    from tests.conftest import POSTGRES_URL
    return f"sqlite:///{tmp_path / 'events.sqlite'}" if store_kind == "sqlite" else f"{POSTGRES_URL}?schema={schema}"


def start(role: str, url: str, broker, topics, restart: int, log: Path) -> subprocess.Popen:
    environment = {**os.environ, "COMMCREDITS_DATABASE_URL": url, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
                   "COMMCREDITS_CDR_TOPIC": topics.cdrs, "COMMCREDITS_DLQ_TOPIC": topics.dead_letters,
                   "COMMCREDITS_EVENTS_TOPIC": topics.events,
                   # a new group each time: the dead member's session need not time out first, and
                   # it shows that the store's positions, not Kafka's offsets, decide where to resume
                   "COMMCREDITS_CONSUMER_GROUP": f"{topics.consumer_group}.{restart}"}
    return subprocess.Popen([sys.executable, "-m", "commcredits.cli", "run", "--role", role, "--no-wall-clock-expiry",
                             "--batch-size", str(BATCH_SIZE)],
                            env=environment, stdout=subprocess.DEVNULL, stderr=log.open("wb"))


def wait_until_started(process: subprocess.Popen, log: Path) -> None:
    """A SIGTERM that arrives while Python is still importing ends the process the default way
    (-15), before `run` has installed its handler: wait for `run`'s start-up line first."""
    deadline = time.monotonic() + FINISH_TIMEOUT_S
    while b"event store:" not in log.read_bytes():
        assert time.monotonic() < deadline and process.poll() is None, "the process did not start"
        time.sleep(0.05)


def kill_repeatedly(role: str, url: str, broker, topics, progress, done, logs: Path) -> list[int]:
    """SIGKILL the process at a random moment once it is making progress, KILLS_PER_PROCESS
    times; then let it finish. Returns the progress seen at each kill."""
    rng = random.Random(20261126)
    seen = []
    for restart in range(KILLS_PER_PROCESS):
        before = progress()
        process = start(role, url, broker, topics, restart, logs / f"{role}-{restart}.log")
        deadline = time.monotonic() + FINISH_TIMEOUT_S
        while progress() == before and not done():
            assert time.monotonic() < deadline and process.poll() is None, f"{role} makes no progress"
            time.sleep(0.02)
        time.sleep(rng.uniform(0, KILL_WITHIN_S))
        process.send_signal(signal.SIGKILL)
        process.wait()
        seen.append(progress())
    final_log = logs / f"{role}-final.log"
    process = start(role, url, broker, topics, KILLS_PER_PROCESS, final_log)
    wait_until_started(process, final_log)
    deadline = time.monotonic() + FINISH_TIMEOUT_S
    while not done():
        assert time.monotonic() < deadline, f"not finished; progress {progress()}"
        assert process.poll() is None, "the restarted process died"
        time.sleep(0.5)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    return seen


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request, tmp_path):
    schema = request.getfixturevalue("postgres_schema") if request.param == "postgres" else None
    return database_url(request.param, tmp_path, schema)


def test_killing_the_consumer_and_the_relay_loses_nothing_and_doubles_nothing(store_url, kafka_broker, unique_topics,
                                                                             tmp_path):
    from application.settings import store_from_url

    store = store_from_url(store_url)
    setup, cdrs = scenario()
    expected = simulate_lines(setup + cdrs, rate_card=load_rate_card(None))

    app = BillingApplication(env=store.env)
    setup_run = Simulation(app, load_rate_card(None), load_catalog(None))
    setup_run.run(setup)
    ensure_topics(kafka_broker.bootstrap_servers, {unique_topics.cdrs: 1, unique_topics.dead_letters: 1})
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers, acks="all", linger_ms=5)
    for line in cdrs:
        producer.send(unique_topics.cdrs, key=orjson.loads(line)["org"].encode(), value=line)
    producer.flush()
    producer.close()
    last_offset = len(cdrs) - 1

    observer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap_servers)
    observer.partitions_for_topic(unique_topics.cdrs)
    cdr_position = position_name(unique_topics.cdrs, 0, topic_incarnation(observer, unique_topics.cdrs))
    observer.close()
    assert "@" in cdr_position  # the broker gives topic ids

    def consumer_position() -> int:
        return app.recorder.max_tracking_id(cdr_position) or -1

    seen = kill_repeatedly("consumer", store_url, kafka_broker, unique_topics, consumer_position,
                           lambda: consumer_position() == last_offset, tmp_path)
    assert len({position for position in seen if 0 <= position < last_offset}) >= 5, (
        f"the kills should land while CDRs are being rated: positions at the kills {seen}")

    report = report_document(app, RunLog())
    assert report["organizations"] == expected["organizations"]
    assert report["calls"] == expected["calls"]

    def relay_position() -> int:
        return app.recorder.max_tracking_id(relay_position_name(unique_topics.events)) or 0

    last_event = app.recorder.max_notification_id()
    seen = kill_repeatedly("relay", store_url, kafka_broker, unique_topics, relay_position,
                           lambda: relay_position() >= last_event, tmp_path)
    assert len({position for position in seen if 0 < position < last_event}) >= 5, (
        f"the kills should land while events are being relayed: positions at the kills {seen}")
    published = Counter(published_positions(kafka_broker, unique_topics.events))
    stored = [notification.id for notification in app.recorder.select_notifications(1, last_event + 1)
              if notification.id <= last_event]
    app.close()
    assert sorted(published) == stored  # every position published
    assert max(published.values()) == 1  # and none twice


def published_positions(broker, topic: str) -> list[int]:
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, consumer_timeout_ms=3000)
    consumer.assign([TopicPartition(topic, partition) for partition in consumer.partitions_for_topic(topic)])
    consumer.seek_to_beginning()
    positions = [int(dict(message.headers)["position"]) for message in consumer]
    consumer.close()
    return positions
