"""PostgreSQL goes away for a while and comes back (a restart, a network cut): the relay waits it
out and publishes every stored event exactly once, and under `run --role all` the CDR consumer
and the alert consumer live on with it.

The database sits behind a TCP proxy that the tests cut (every connection closed, new ones closed
as soon as they arrive) and later restore. The eventsourcing library retries each store call ten
times, each waiting up to the connect timeout for a connection; the stores here have a connect
timeout of 1 s, so an outage that lasts until the relay has logged a failed attempt outlasts those
retries, as a restart of half a minute does with the default 5 s.
"""

import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable, Iterator

import orjson
import psycopg
import pytest
from eventsourcing.persistence import IntegrityError
from kafka import KafkaProducer

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from application.settings import StoreSettings, postgres_store
from commcredits.live_pipeline import ALL_ROLES, LivePipeline, PipelineConfig
from commcredits.simulate import Simulation
from consumers.alerts.settings import AlertSettings
from producers.event_relay import EventRelay, relay_position_name
from tests.conftest import POSTGRES_URL
from tests.integration.test_event_relay import list_positions, positions, published, simulate_into
from tests.support import SPEC_EXAMPLES, SPEC_RATES

CONNECT_TIMEOUT_S = 1  # POSTGRES_CONNECT_TIMEOUT is whole seconds
WAIT_S = 120.0
PROXY_POLL_S = 0.2
RELAY_LOGGER = "commcredits.relay"


class CuttableProxy:
    """Forwards 127.0.0.1:`port` to the PostgreSQL server until `cut()`, and again after `restore()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(PROXY_POLL_S)
        self.port = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open, self._stopped = True, False
        self._sockets: list[socket.socket] = []
        self._acceptor = threading.Thread(target=self._accept, name="pg-proxy", daemon=True)
        self._acceptor.start()

    def cut(self) -> None:
        with self._lock:
            self._open, sockets, self._sockets = False, self._sockets, []
        for sock in sockets:
            _close(sock)

    def restore(self) -> None:
        with self._lock:
            self._open = True

    def close(self) -> None:
        self._stopped = True
        self.cut()
        self._acceptor.join()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            with self._lock:
                server = self._connect() if self._open else None
                if server is None:
                    _close(client)
                    continue
                self._sockets += [client, server]
            threading.Thread(target=_pump, args=(client, server), daemon=True).start()

    def _connect(self) -> socket.socket | None:
        try:
            return socket.create_connection(self.target)
        except OSError:
            return None


def _pump(one: socket.socket, other: socket.socket) -> None:
    """Copy both ways until either side closes (or the proxy closes both)."""
    with selectors.DefaultSelector() as selector:
        selector.register(one, selectors.EVENT_READ, other)
        selector.register(other, selectors.EVENT_READ, one)
        try:
            while True:
                for key, _ in selector.select():
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            _close(one)
            _close(other)


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


@pytest.fixture
def proxy() -> Iterator[CuttableProxy]:
    info = psycopg.conninfo.conninfo_to_dict(POSTGRES_URL)
    cuttable = CuttableProxy((info.get("host", "127.0.0.1"), int(info.get("port", 5432))))
    yield cuttable
    cuttable.close()


def stores(schema: str, proxy: CuttableProxy) -> tuple[StoreSettings, StoreSettings]:
    """The schema reached directly (for the test's own reads and writes) and through the proxy."""
    info = psycopg.conninfo.conninfo_to_dict(POSTGRES_URL)
    dbname, user, password = info.get("dbname", "test"), info.get("user", "postgres"), info.get("password", "")
    direct = postgres_store(dbname, info.get("host", "127.0.0.1"), int(info.get("port", 5432)), user, password, schema)
    proxied = postgres_store(dbname, "127.0.0.1", proxy.port, user, password, schema)
    env = {**proxied.env, "POSTGRES_CONNECT_TIMEOUT": str(CONNECT_TIMEOUT_S)}
    return direct, StoreSettings(env, f"{proxied.description} behind a cuttable proxy")


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def relay_warnings(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records
            if record.name == RELAY_LOGGER and record.levelno == logging.WARNING]


def recorded_position(store: StoreSettings, topic: str) -> int:
    app = BillingApplication(env=store.env)
    try:
        return app.recorder.max_tracking_id(relay_position_name(topic)) or 0
    finally:
        app.close()


@pytest.mark.postgres
def test_the_relay_waits_out_a_database_outage_and_publishes_every_event_once(postgres_schema, proxy, kafka_broker,
                                                                              unique_topics, caplog):
    """The store goes away while the relay records a batch it has just published (the worst
    moment: the broker has the batch, the store not its position) and stays away while more
    events are written; once it is back, the relay, still running, publishes the rest."""
    caplog.set_level(logging.WARNING, logger=RELAY_LOGGER)
    direct, proxied = stores(postgres_schema, proxy)
    topic = unique_topics.events
    simulate_into(direct, "02-expiry-and-recharge", slice(0, 12))
    app = BillingApplication(env=proxied.env)
    relay = EventRelay(app, kafka_broker.bootstrap_servers, topic, batch_events=3)
    save, saves = app.save, []

    def cut_before_the_second_save(*args, **kwargs):
        saves.append(relay.position)
        if len(saves) == 2:
            proxy.cut()
        return save(*args, **kwargs)

    app.save = cut_before_the_second_save
    stop = threading.Event()
    worker = threading.Thread(target=relay.run, args=(stop,), name="relay", daemon=True)
    worker.start()
    try:
        wait_until(lambda: relay_warnings(caplog) or not worker.is_alive(), "a failed attempt of the relay")
        assert worker.is_alive(), "the relay stopped when the store went away"
        cut_at = saves[1]
        last = simulate_into(direct, "02-expiry-and-recharge", slice(12, None))  # written while it is away
        proxy.restore()
        wait_until(lambda: relay.recorded == last or not worker.is_alive(), "the relay to catch up")
        assert worker.is_alive()
    finally:
        stop.set()
        worker.join(30)
        app.close()

    assert 0 < cut_at < last
    assert positions(published(kafka_broker, topic)) == list_positions(direct, last)  # each once, none missing
    assert recorded_position(direct, topic) == last
    warnings = relay_warnings(caplog)
    assert warnings[0].startswith("event store unavailable (attempt 1: OperationalError: ")
    assert f"relaying on from position {cut_at} in 0.5 s" in warnings[0]
    assert [int(text.split("attempt ")[1].split(":")[0]) for text in warnings] == list(range(1, len(warnings) + 1))


def test_a_position_recorded_by_a_save_whose_answer_was_lost_is_not_a_failure(store, kafka_broker, unique_topics):
    """The commit of the relay's position reached the store but its answer did not; the library
    tried the save again and the store refused the position as recorded already (IntegrityError,
    what killed the relay when PostgreSQL restarted at that moment). The relay reads the store's
    position back and goes on."""
    topic = unique_topics.events
    last = simulate_into(store, "02-expiry-and-recharge")
    app = BillingApplication(env=store.env)
    relay = EventRelay(app, kafka_broker.bootstrap_servers, topic, batch_events=5)
    save = app.save

    def answer_lost(*args, **kwargs):
        app.save = save
        save(*args, **kwargs)
        raise IntegrityError(f"Failed to record tracking for {relay_position_name(topic)}")

    app.save = answer_lost
    try:
        assert relay.relay_once() == 5
        assert relay.recorded == relay.position == 5
        while relay.relay_once():
            pass
    finally:
        relay.close()
        app.close()
    assert positions(published(kafka_broker, topic)) == list_positions(store, last)
    assert recorded_position(store, topic) == last


def cdr_lines() -> tuple[list[bytes], list[bytes]]:
    """01-basics: the set-up lines, and its CDRs."""
    lines = (SPEC_EXAMPLES / "01-basics.jsonl").read_bytes().splitlines()
    first_cdr = next(index for index, line in enumerate(lines) if b'"type":"cdr"' in line)
    return lines[:first_cdr], [line for line in lines[first_cdr:] if b'"type":"cdr"' in line]


def publish_cdrs(bootstrap_servers: str, topic: str, lines: list[bytes]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    for line in lines:
        producer.send(topic, key=orjson.loads(line)["org"].encode(), value=line)
    producer.flush()
    producer.close()


def stored_last_position(store: StoreSettings) -> int:
    app = BillingApplication(env=store.env)
    try:
        return app.recorder.max_notification_id() or 0
    finally:
        app.close()


@pytest.mark.postgres
@pytest.mark.slow
def test_run_all_keeps_rating_relaying_and_alerting_through_a_database_outage(postgres_schema, proxy, kafka_broker,
                                                                              unique_topics, caplog):
    """What `commcredits run --role all` composes (`LivePipeline` with every role, the wall-clock
    expiry ticks included), on a store behind the proxy: half the CDRs before the outage, half
    during it; afterwards every CDR is rated once, every stored event is on the events topic once,
    the alert consumer has read them all, and nothing stopped."""
    caplog.set_level(logging.WARNING, logger=RELAY_LOGGER)
    direct, proxied = stores(postgres_schema, proxy)
    setup, cdrs = cdr_lines()
    billing = BillingApplication(env=direct.env)
    Simulation(billing, SPEC_RATES, load_catalog(None)).run(setup)
    billing.close()
    suffix = unique_topics.cdrs.rpartition(".")[2]
    pipeline = LivePipeline(PipelineConfig(
        store=proxied, topics=unique_topics, bootstrap_servers=kafka_broker.bootstrap_servers, cdr_partitions=2,
        rates=SPEC_EXAMPLES / "rates.csv", roles=ALL_ROLES,
        alerts=AlertSettings(smtp=None, webhook_master_secret=b"k" * 32, topic=f"alerts.v1.{suffix}")))
    pipeline.start()
    try:
        assert pipeline.alerts is not None, "the alert consumer did not start"

        def caught_up(handled: int) -> bool:
            last = stored_last_position(direct)
            return (pipeline.consumer.stats.handled >= handled and pipeline.relay.recorded == last
                    and pipeline.alerts.feed.stats.polled >= pipeline.relay.stats.published)

        def settled(handled: int) -> bool:
            return pipeline.stop_requested.is_set() or caught_up(handled)

        half = len(cdrs) // 2
        publish_cdrs(kafka_broker.bootstrap_servers, unique_topics.cdrs, cdrs[:half])
        wait_until(lambda: settled(half), "the first half")
        proxy.cut()
        wait_until(lambda: relay_warnings(caplog) or pipeline.stop_requested.is_set(), "a failed attempt")
        publish_cdrs(kafka_broker.bootstrap_servers, unique_topics.cdrs, cdrs[half:])
        proxy.restore()
        wait_until(lambda: settled(len(cdrs)), "everything after the outage")
        assert not pipeline.stop_requested.is_set(), pipeline.failures
        assert pipeline.consumer.stats.handled == len(cdrs)
        assert all(thread.is_alive() for thread in pipeline._threads)
    finally:
        pipeline.stop()
    assert pipeline.failures == []
    last = stored_last_position(direct)
    assert positions(published(kafka_broker, unique_topics.events)) == list_positions(direct, last)
