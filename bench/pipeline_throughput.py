"""How fast the live pipeline moves CDRs and events, next to the ceiling of the Kafka client.

One run, on the embedded broker, measures:
  (a) raw kafka-python consumption of the CDR topic (no processing): the ceiling;
  (b) end to end, CDRs per second from the topic to committed events (the CDR consumer as `run`
      builds it: a shard per partition, batches, positions and dead letters), on a file-backed
      SQLite store and on PostgreSQL, with one consumer process and with two in one group;
  (c) the event relay, stored events per second to `billing-events.v1`;
and prints each with its ratio to (a). Group joins and start-up are excluded: the clock starts at
the first record.

    python bench/pipeline_throughput.py [--cdrs 50000] [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import orjson
import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from application.billing_application import BillingApplication  # noqa: E402
from application.reference_data import load_catalog, load_rate_card  # noqa: E402
from application.service import BillingService  # noqa: E402
from application.settings import StoreSettings, sqlite_store, store_from_url  # noqa: E402
from commcredits.scenario import encoded, generate  # noqa: E402
from commcredits.simulate import Simulation  # noqa: E402
from consumers.cdr_consumer import CdrConsumer  # noqa: E402
from domain.payments import SimulatedGateway  # noqa: E402
from messaging.embedded_broker import EmbeddedBroker, ensure_topics  # noqa: E402
from messaging.topics import Topics  # noqa: E402
from producers.event_relay import EventRelay  # noqa: E402

PARTITIONS = 4


def scenario(cdrs: int) -> tuple[list[bytes], list[bytes]]:
    lines = [encoded(line) for line in generate(5, 500, cdrs, 11)]
    first = next(index for index, line in enumerate(lines) if b'"type":"cdr"' in line)
    return lines[:first], [line for line in lines[first:] if b'"type":"cdr"' in line]


def publish(bootstrap: str, topic: str, cdrs: list[bytes]) -> None:
    ensure_topics(bootstrap, {topic: PARTITIONS})
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=256 * 1024)
    for line in cdrs:
        producer.send(topic, key=orjson.loads(line)["org"].encode(), value=line)
    producer.flush()
    producer.close()


def raw_consume(bootstrap: str, topic: str, expected: int) -> float:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, partition) for partition in range(PARTITIONS)])
    consumer.seek_to_beginning()
    seen, started = 0, None
    while seen < expected:
        for records in consumer.poll(timeout_ms=500, max_records=2000).values():
            started = started or time.perf_counter()
            seen += len(records)
    elapsed = time.perf_counter() - started
    consumer.close()
    return elapsed


def apply_setup(store: StoreSettings, setup: list[bytes]) -> None:
    app = BillingApplication(env=store.env)
    Simulation(app, load_rate_card(None), load_catalog(None)).run(setup)
    app.close()


def consume(store: StoreSettings, bootstrap: str, topics: Topics, handled, first_record_at, stop) -> None:
    """One consumer instance, as `run --role consumer` builds it; counts into shared values."""
    app = BillingApplication(env=store.env)
    rate_card, catalog = load_rate_card(None), load_catalog(None)
    consumer = CdrConsumer(lambda shard: BillingService(app, rate_card, catalog, SimulatedGateway(), shard=shard),
                           bootstrap, topics)
    counted = 0
    while not stop.is_set():
        if consumer.poll_once():
            with first_record_at.get_lock():
                if first_record_at.value == 0:
                    first_record_at.value = time.time()
        with handled.get_lock():
            handled.value += consumer.stats.handled - counted
        counted = consumer.stats.handled
    consumer.close()
    app.close()


def end_to_end(store: StoreSettings, bootstrap: str, topics: Topics, expected: int, instances: int) -> float:
    """Seconds from the first record polled to the last CDR committed, with `instances`
    consumer processes in one group (each process uses one core)."""
    context = multiprocessing.get_context("spawn")
    handled, first_record_at, stop = context.Value("q", 0), context.Value("d", 0.0), context.Event()
    workers = [context.Process(target=consume, args=(store, bootstrap, topics, handled, first_record_at, stop))
               for _ in range(instances)]
    for worker in workers:
        worker.start()
    while handled.value < expected:
        time.sleep(0.01)
    elapsed = time.time() - first_record_at.value
    stop.set()
    for worker in workers:
        worker.join(60)
    return elapsed


def relay(store: StoreSettings, bootstrap: str, topic: str) -> tuple[int, float]:
    app = BillingApplication(env=store.env)
    event_relay = EventRelay(app, bootstrap, topic)
    last = app.recorder.max_notification_id()
    started = time.perf_counter()
    while event_relay.position < last:
        event_relay.relay_once()
    elapsed = time.perf_counter() - started
    event_relay.close()
    app.close()
    return last, elapsed


def postgres_store(url: str) -> StoreSettings:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    return store_from_url(f"{url}?schema={schema}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdrs", type=int, default=50_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    options = parser.parse_args()
    setup, cdrs = scenario(options.cdrs)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; {len(cdrs):,} CDR messages, "
          f"{PARTITIONS} partitions, embedded broker")
    rows = []
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as workdir:
        topic = f"cdr.v1.bench.{uuid.uuid4().hex[:6]}"
        publish(broker.bootstrap_servers, topic, cdrs)
        ceiling = len(cdrs) / raw_consume(broker.bootstrap_servers, topic, len(cdrs))
        rows.append(("(a) kafka-python consume, no processing", len(cdrs), ceiling))
        fresh_stores = [("SQLite file", lambda run: sqlite_store(Path(workdir) / f"events-{run}.sqlite")),
                        ("PostgreSQL", lambda run: postgres_store(options.postgres))]
        for name, fresh_store in fresh_stores:
            for instances in (1, 2):
                store = fresh_store(instances)  # the same calls each time: a used store would see duplicates
                apply_setup(store, setup)
                topics = Topics(cdrs=f"{topic}.{name[:6].lower()}.{instances}",
                                events=f"billing-events.v1.bench.{uuid.uuid4().hex[:6]}",
                                dead_letters=f"cdr.dlq.v1.bench.{uuid.uuid4().hex[:6]}",
                                consumer_group=f"bench-{uuid.uuid4().hex[:6]}")
                publish(broker.bootstrap_servers, topics.cdrs, cdrs)
                ensure_topics(broker.bootstrap_servers, {topics.dead_letters: 1})
                seconds = end_to_end(store, broker.bootstrap_servers, topics, len(cdrs), instances)
                rows.append((f"(b) CDR topic → committed events, {name}, {instances} process(es)", len(cdrs),
                             len(cdrs) / seconds))
                if instances == 1:
                    events, seconds = relay(store, broker.bootstrap_servers, topics.events)
                    rows.append((f"(c) relay, stored events → topic, {name}", events, events / seconds))
    print(f"{'measure':<66}{'messages':>10}{'per second':>12}{'ratio to (a)':>14}")
    for name, count, rate in rows:
        print(f"{name:<66}{count:>10,}{rate:>12,.0f}{rate / ceiling:>14.2f}")


if __name__ == "__main__":
    main()
