"""How fast the live pipeline moves CDRs and events, each beside the Kafka client's ceiling on the same messages.

Each repetition, on the embedded broker and for each store (a SQLite file, PostgreSQL):
  (a) raw kafka-python consumption of a freshly published CDR topic (no processing): the ceiling;
  (b) the CDR consumer as `run` builds it (a shard per partition, batches, positions, dead letters)
      on the same topic, from a fresh store with the month's set-up applied, in a process of its
      own: CDRs per second from the first poll that returned records (its rating counted) to the
      last CDR committed; µs per CDR by stage; its peak memory (VmHWM, read from /proc by the
      consumer process itself);
  (c) the event relay publishing that store's events to a fresh topic, and
  (d) a raw kafka-python producer, configured as the relay's, sending the very messages the
      relay sent (same keys, values, headers, partitions, flushed per relay batch): its ceiling.
(a) and (b), then (c) and (d), run back to back, and the repetitions interleave them; medians of
the repetitions are printed, each ratio taken within its repetition.

    python bench/pipeline_throughput.py [--cdrs 50000] [--repeat 3] [--stores sqlite,postgres]
                                        [--postgres postgresql://postgres@127.0.0.1:5432/test]
"""

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import orjson
import psycopg
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from application.billing_application import BillingApplication  # noqa: E402
from application.reference_data import load_catalog, load_rate_card  # noqa: E402
from application.service import BillingService  # noqa: E402
from application.settings import StoreSettings, sqlite_store, store_from_url  # noqa: E402
from application.shard import partition_for_key  # noqa: E402
from commcredits.collector import tune_collector  # noqa: E402
from commcredits.scenario import encoded, generate  # noqa: E402
from commcredits.simulate import Simulation  # noqa: E402
from consumers.cdr_consumer import CdrConsumer  # noqa: E402
from domain.payments import SimulatedGateway  # noqa: E402
from messaging.embedded_broker import EmbeddedBroker, ensure_topics  # noqa: E402
from messaging.topics import Topics  # noqa: E402
from producers.event_messages import OrganizationKeys, event_message  # noqa: E402
from producers.event_relay import RELAY_BATCH_EVENTS, RELAY_LINGER_MS, EventRelay  # noqa: E402

PARTITIONS = 4
STAGES = ("poll", "follow", "decode", "rate", "dead letters", "save", "commit")


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
    """CDRs per second of kafka-python alone, from the first poll that returned records."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    consumer.assign([TopicPartition(topic, partition) for partition in range(PARTITIONS)])
    consumer.seek_to_beginning()
    seen, started = 0, None
    while seen < expected:
        polled_at = time.perf_counter()
        batches = consumer.poll(timeout_ms=500, max_records=2000)
        if batches and started is None:
            started = polled_at
        seen += sum(len(records) for records in batches.values())
    elapsed = time.perf_counter() - started
    consumer.close()
    return expected / elapsed


def apply_setup(store: StoreSettings, setup: list[bytes]) -> None:
    app = BillingApplication(env=store.env)
    Simulation(app, load_rate_card(None), load_catalog(None)).run(setup)
    app.close()


def vm_hwm_mib() -> float:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def time_commits(seconds: Counter) -> None:
    """Count the store's commits as a stage of their own (inside `save` otherwise)."""
    import eventsourcing.sqlite

    commit = eventsourcing.sqlite.SQLiteConnection.commit

    def timed_commit(self):
        started = time.perf_counter()
        try:
            return commit(self)
        finally:
            seconds["commit"] += time.perf_counter() - started
    eventsourcing.sqlite.SQLiteConnection.commit = timed_commit
    transaction_exit = psycopg.Transaction.__exit__

    def timed_exit(self, *args):
        started = time.perf_counter()
        try:
            return transaction_exit(self, *args)
        finally:
            seconds["commit"] += time.perf_counter() - started
    psycopg.Transaction.__exit__ = timed_exit


def consume(store: StoreSettings, bootstrap: str, topics: Topics, expected: int, results) -> None:
    """One consumer process, as `run --role consumer` builds it; reports its own figures."""
    app = BillingApplication(env=store.env)
    rate_card, catalog = load_rate_card(None), load_catalog(None)
    consumer = CdrConsumer(lambda shard: BillingService(app, rate_card, catalog, SimulatedGateway(), shard=shard),
                           bootstrap, topics)
    tune_collector()
    commits: Counter = Counter()
    time_commits(commits)
    started = cpu_started = None
    while consumer.stats.handled < expected:
        polled_at, cpu_at = time.perf_counter(), time.process_time()
        if consumer.poll_once() and started is None:
            started, cpu_started = polled_at, cpu_at
            stage_seconds(consumer).clear()  # the stages from the same poll on
            commits.clear()
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    seconds = stage_seconds(consumer)
    seconds["save"] -= commits["commit"]
    seconds["commit"] = commits["commit"]
    results.put({"rate": expected / elapsed, "cpu_us": cpu / expected * 1e6, "vm_hwm_mib": vm_hwm_mib(),
                 "stages_us": {stage: seconds[stage] / expected * 1e6 for stage in STAGES},
                 "redone": consumer.stats.redone_batches})
    consumer.close()
    app.close()


def stage_seconds(consumer: CdrConsumer) -> Counter:
    """The consumer's seconds by stage (empty for a version before it kept them: an A/B run)."""
    return getattr(consumer.stats, "seconds", Counter())


def end_to_end(store: StoreSettings, bootstrap: str, topics: Topics, expected: int) -> dict:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    worker = context.Process(target=consume, args=(store, bootstrap, topics, expected, results))
    worker.start()
    figures = results.get(timeout=3600)
    worker.join(60)
    return figures


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
    return last, last / elapsed


def relay_messages(store: StoreSettings, partitions: int) -> list[tuple]:
    """The (key, value, headers, partition) the relay sends for each stored event, in order."""
    app = BillingApplication(env=store.env)
    keys, messages, start = OrganizationKeys(), [], 1
    while page := app.recorder.select_notifications(start, RELAY_BATCH_EVENTS):
        for notification in page:
            key, value, headers = event_message(notification, app.mapper.transcoder, keys)
            messages.append((key, value, headers, partition_for_key(key, partitions)))
        start = page[-1].id + 1
    app.close()
    return messages


def raw_produce(bootstrap: str, topic: str, messages: list[tuple]) -> float:
    """Messages per second of a kafka-python producer configured as the relay's, flushed per relay batch."""
    ensure_topics(bootstrap, {topic: PARTITIONS})
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                             max_in_flight_requests_per_connection=5, linger_ms=RELAY_LINGER_MS)
    producer.partitions_for(topic)
    started = time.perf_counter()
    for start in range(0, len(messages), RELAY_BATCH_EVENTS):
        futures = [producer.send(topic, key=key, value=value, headers=headers, partition=partition)
                   for key, value, headers, partition in messages[start:start + RELAY_BATCH_EVENTS]]
        producer.flush()
        for future in futures:
            future.get()
    elapsed = time.perf_counter() - started
    producer.close()
    return len(messages) / elapsed


def postgres_store(url: str) -> StoreSettings:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    return store_from_url(f"{url}?schema={schema}")


def one_repetition(name: str, fresh_store, broker: EmbeddedBroker, setup, cdrs) -> dict:
    bootstrap = broker.bootstrap_servers
    suffix = uuid.uuid4().hex[:8]
    topics = Topics(cdrs=f"cdr.v1.bench.{suffix}", events=f"billing-events.v1.bench.{suffix}",
                    dead_letters=f"cdr.dlq.v1.bench.{suffix}", consumer_group=f"bench-{suffix}")
    publish(bootstrap, topics.cdrs, cdrs)
    ensure_topics(bootstrap, {topics.dead_letters: 1})
    store = fresh_store()
    apply_setup(store, setup)
    figures = {"ceiling": raw_consume(bootstrap, topics.cdrs, len(cdrs))}
    figures.update(end_to_end(store, bootstrap, topics, len(cdrs)))
    figures["events"], figures["relay"] = relay(store, bootstrap, topics.events)
    figures["producer"] = raw_produce(bootstrap, f"{topics.events}.raw", relay_messages(store, PARTITIONS))
    print(f"  {name}: ceiling {figures['ceiling']:,.0f}/s, consumer {figures['rate']:,.0f} CDR/s "
          f"({figures['cpu_us']:.0f} µs CPU/CDR, VmHWM {figures['vm_hwm_mib']:.0f} MiB), relay "
          f"{figures['relay']:,.0f}/s, raw producer {figures['producer']:,.0f}/s", flush=True)
    return figures


def median(runs: list[dict], key) -> float:
    return statistics.median(key(run) for run in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cdrs", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    options = parser.parse_args()
    setup, cdrs = scenario(options.cdrs)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; {len(cdrs):,} CDR messages, "
          f"{PARTITIONS} partitions, embedded broker; {options.repeat} repetitions")
    names = {"sqlite": "SQLite file", "postgres": "PostgreSQL"}
    runs: dict[str, list[dict]] = {names[key]: [] for key in options.stores.split(",")}
    with EmbeddedBroker() as broker, tempfile.TemporaryDirectory() as workdir:
        fresh = {"SQLite file": lambda: sqlite_store(Path(workdir) / f"events-{uuid.uuid4().hex[:8]}.sqlite"),
                 "PostgreSQL": lambda: postgres_store(options.postgres)}
        for repetition in range(options.repeat):
            print(f"repetition {repetition + 1}", flush=True)
            for name in runs:
                runs[name].append(one_repetition(name, fresh[name], broker, setup, cdrs))
    print(f"\nmedians of {options.repeat} repetitions")
    print(f"{'store':<13}{'ceiling/s':>11}{'CDR/s':>9}{'ratio':>7}{'µs CPU/CDR':>12}{'VmHWM MiB':>11}"
          f"{'relay/s':>9}{'producer/s':>12}{'ratio':>7}")
    for name, done in runs.items():
        print(f"{name:<13}{median(done, lambda r: r['ceiling']):>11,.0f}{median(done, lambda r: r['rate']):>9,.0f}"
              f"{median(done, lambda r: r['rate'] / r['ceiling']):>7.2f}{median(done, lambda r: r['cpu_us']):>12.0f}"
              f"{median(done, lambda r: r['vm_hwm_mib']):>11.0f}{median(done, lambda r: r['relay']):>9,.0f}"
              f"{median(done, lambda r: r['producer']):>12,.0f}{median(done, lambda r: r['relay'] / r['producer']):>7.2f}")
    print("\nµs per CDR by stage (medians; 'rate' includes the batch's usage-id look-up)")
    print(f"{'store':<13}" + "".join(f"{stage:>14}" for stage in STAGES) + f"{'sum':>8}")
    for name, done in runs.items():
        by_stage = [median(done, lambda r, stage=stage: r["stages_us"][stage]) for stage in STAGES]
        print(f"{name:<13}" + "".join(f"{value:>14.1f}" for value in by_stage) + f"{sum(by_stage):>8.1f}")


if __name__ == "__main__":
    main()
