"""Two consumer instances in one group share the CDR partitions: each partition is a shard with
its own clock and expiry steps, so the instances rate side by side on one store. Every call is
rated once, and every amount equals `simulate` on the same month (with several partitions only
the dates of steps taken between an organization's own calls may differ: docs/pipeline.md)."""

import threading
import time

import orjson
import pytest
from kafka import KafkaProducer

from application.billing_application import BillingApplication
from application.reference_data import load_catalog, load_rate_card
from application.service import BillingService
from application.shard import Shard
from commcredits.admin import Admin
from commcredits.scenario import encoded, generate
from commcredits.simulate import RunLog, report_document
from consumers.cdr_consumer import CdrConsumer
from domain.errors import DomainError
from domain.payments import SimulatedGateway
from messaging.embedded_broker import ensure_topics
from tests.support import simulate_lines

PARTITIONS = 4
CATCH_UP_TIMEOUT_S = 120.0
JOIN_TIMEOUT_S = 60.0


class Instance:
    """One consumer process: an application of its own and a service per partition it holds."""

    def __init__(self, store, broker, topics, name: str) -> None:
        self.app = BillingApplication(env=store.env)
        rate_card, catalog = load_rate_card(None), load_catalog(None)

        def service_for(shard: Shard) -> BillingService:
            return BillingService(self.app, rate_card, catalog, SimulatedGateway(), shard=shard)

        self.consumer = CdrConsumer(service_for, broker.bootstrap_servers, topics, client_id=name)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.consumer.run, args=(self.stop,), name=name, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.app.close()


def amounts(organization: dict) -> dict:
    """An organization's report without the dates of its lots."""
    lots = [{key: value for key, value in lot.items() if key not in ("added_at", "expires_at")}
            for lot in organization["lots"]]
    return {**organization, "lots": lots}


def wait_until(condition, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_two_instances_share_the_partitions_and_rate_every_call_once(store, kafka_broker, unique_topics):
    lines = [encoded(line) for line in generate(organizations=6, users=120, cdrs=1500, seed=11)]
    ensure_topics(kafka_broker.bootstrap_servers, {unique_topics.cdrs: PARTITIONS, unique_topics.dead_letters: 1})
    admin = Admin(store)
    instances = [Instance(store, kafka_broker, unique_topics, f"rater-{n}") for n in (1, 2)]
    producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers, acks="all")
    handled = lambda: sum(instance.consumer.stats.handled for instance in instances)  # noqa: E731
    try:
        wait_until(lambda: all(len(instance.consumer.consumer.assignment()) == PARTITIONS // 2
                               for instance in instances), "both instances to hold two partitions", JOIN_TIMEOUT_S)
        published, log = 0, RunLog()
        for raw in lines:
            document = orjson.loads(raw) if raw.startswith(b"{") else None
            if document is None or document.get("type") == "cdr":
                key = document["org"].encode() if document else None
                producer.send(unique_topics.cdrs, key=key, value=raw)
                published += 1
                continue
            producer.flush()
            wait_until(lambda: handled() >= published, f"{published} CDRs", CATCH_UP_TIMEOUT_S)
            admin.refresh()
            try:
                admin.run(document)
            except DomainError:
                pass  # rejected by `simulate` too: compared below through the amounts
        producer.flush()
        wait_until(lambda: handled() >= published, f"all {published} CDRs", CATCH_UP_TIMEOUT_S)
        stats = [instance.consumer.stats for instance in instances]
    finally:
        producer.close()
        for instance in instances:
            instance.close()

    assert all(stat.rated > 0 for stat in stats), stats  # both instances rated calls
    # No batch was redone: the instances never wrote the same aggregate (with one shared clock
    # every batch of one instance conflicts with the other's: about 20 redone batches here),
    # and each batch started from the admin steps stored before it.
    assert [stat.redone_batches for stat in stats] == [0, 0], stats
    assert sum(stat.handled for stat in stats) == published  # each CDR once, none left over
    admin.refresh()
    report = report_document(admin.app, log)
    admin.close()
    expected = simulate_lines(lines, rate_card=load_rate_card(None))
    assert report["calls"] == expected["calls"]
    assert sorted(report["organizations"]) == sorted(expected["organizations"])
    for org, organization in expected["organizations"].items():
        assert amounts(report["organizations"][org]) == amounts(organization), org
