"""The live pipeline in one process (`commcredits run`): the composition root that wires the
event store, the broker, the CDR consumer with the expiry scheduler, and the event relay.

Threads: the consumer (with the expiry scheduler) writes billing events; each CDR partition it
holds is a shard with its own clock and expiry steps, so more `run --role consumer` instances
in the same group share the partitions without writing the same aggregates. The relay reads the
store through an application of its own and writes only its position. A store that does not
answer (PostgreSQL restarting) is waited out by every thread, each retrying on its own. If a
thread fails (a bug), the whole pipeline stops (and `run` exits non-zero) rather than run
half-working.
With no `KAFKA_BOOTSTRAP_SERVERS` it starts the embedded broker, which keeps messages in memory
only; the relay then republishes the store's history into it (docs/pipeline.md).
"""

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

from application.future_guard import FutureGuard
from application.reference_data import load_catalog, load_rate_card
from application.service import BillingService
from application.settings import StoreSettings
from application.shard import Shard
from commcredits.composition import billing_service, open_application
from consumers.alerts.consumer import AlertConsumer, AlertsNeedAPersistentStore
from consumers.alerts.settings import AlertSettings, alert_settings_from_environment
from consumers.cdr_consumer import MAX_RECORDS_PER_POLL, CdrConsumer
from consumers.expiry_scheduler import wall_clock
from domain.payments import PaymentGateway, SimulatedGateway
from messaging.embedded_broker import EmbeddedBroker, ensure_topics
from messaging.topics import Topics
from producers.event_relay import RELAY_BATCH_EVENTS, EventRelay

log = logging.getLogger("commcredits.run")

DEFAULT_CDR_PARTITIONS = 4
CONSUMER, RELAY, ALERTS = "consumer", "relay", "alerts"
ALL_ROLES = frozenset({CONSUMER, RELAY, ALERTS})
THREAD_JOIN_TIMEOUT_S = 60.0


@dataclass
class PipelineConfig:
    store: StoreSettings
    topics: Topics
    bootstrap_servers: str | None = None  # None: start the embedded broker
    cdr_partitions: int = DEFAULT_CDR_PARTITIONS
    rates: Path | None = None
    catalog: Path | None = None
    broker_log: Path | None = None
    gateway: PaymentGateway = field(default_factory=SimulatedGateway)
    expire_by_wall_clock: bool = True
    batch_size: int | None = None  # CDRs per store transaction and events per relay batch; None: defaults
    roles: frozenset[str] = ALL_ROLES  # run the consumer and the relay as separate processes to scale them apart
    alerts: AlertSettings | None = None  # None: from the environment (consumers.alerts.settings)
    future_guard: FutureGuard | None = None  # `run`: times far ahead of the wall clock are refused (future_time)


class LivePipeline:
    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self.stop_requested = threading.Event()
        self.failures: list[str] = []
        self.broker: EmbeddedBroker | None = None
        self._threads: list[threading.Thread] = []
        self.consumer: CdrConsumer | None = None
        self.relay: EventRelay | None = None
        self.alerts: AlertConsumer | None = None

    @property
    def bootstrap_servers(self) -> str:
        return self.config.bootstrap_servers or self.broker.bootstrap_servers

    def start(self) -> "LivePipeline":
        config = self.config
        rate_card, catalog = load_rate_card(config.rates), load_catalog(config.catalog)
        if config.bootstrap_servers is None:
            self.broker = EmbeddedBroker(log_path=config.broker_log).start()
            log.info("embedded broker (memory only) at %s", self.broker.bootstrap_servers)
        ensure_topics(self.bootstrap_servers, {config.topics.cdrs: config.cdr_partitions,
                                               config.topics.dead_letters: 1})
        if CONSUMER in config.roles:
            self.writer = writer = open_application(config.store)

            def service_for(shard: Shard) -> BillingService:
                return billing_service(writer, rate_card, catalog, gateway=config.gateway, shard=shard,
                                       future_guard=config.future_guard)

            self.consumer = CdrConsumer(service_for, self.bootstrap_servers, config.topics,
                                        max_records=config.batch_size or MAX_RECORDS_PER_POLL)
            expiry_clock = wall_clock if config.expire_by_wall_clock else None
            self._start_thread(CONSUMER, lambda: self.consumer.run(self.stop_requested, expiry_clock))
        if RELAY in config.roles:
            self.relay = EventRelay(open_application(config.store), self.bootstrap_servers,
                                    config.topics.events, republish_when_topic_empty=self.broker is not None,
                                    batch_events=config.batch_size or RELAY_BATCH_EVENTS)
            self._start_thread(RELAY, lambda: self.relay.run(self.stop_requested))
        if ALERTS in config.roles:
            self._start_alerts()
        log.info("event store: %s; CDRs from %s, rejected CDRs to %s, events to %s", config.store.description,
                 config.topics.cdrs, config.topics.dead_letters, config.topics.events)
        return self

    def _start_alerts(self) -> None:
        config = self.config
        settings = config.alerts or alert_settings_from_environment()
        try:
            self.alerts = AlertConsumer(config.store, self.bootstrap_servers, config.topics.events, settings)
        except AlertsNeedAPersistentStore as error:
            log.warning("no alerts: %s", error)
            return
        ensure_topics(self.bootstrap_servers, {settings.topic: 1})
        self._start_thread(ALERTS, lambda: self._run_alerts(self.alerts))

    def _run_alerts(self, alerts: AlertConsumer) -> None:
        alerts.run(self.stop_requested)  # a failing part sets stop_requested: the pipeline stops
        self.failures.extend(f"alerts: {failure}" for failure in alerts.failures)

    def stop(self) -> None:
        self.stop_requested.set()
        for thread in self._threads:
            thread.join(THREAD_JOIN_TIMEOUT_S)
        if self.consumer is not None:
            self.writer.close()
        if self.relay is not None:
            self.relay.app.close()
        if self.broker is not None:
            self.broker.stop()

    def status(self) -> str:
        parts = []
        if self.consumer is not None:
            stats = self.consumer.stats
            parts.append(f"rated {stats.rated}, duplicates {stats.duplicates}, dead letters {stats.dead_letters}, "
                         f"redone batches {stats.redone_batches} ({stats.stage_summary()})")
        if self.relay is not None:
            parts.append(f"events relayed {self.relay.stats.published} (position {self.relay.position})")
        if self.alerts is not None:
            parts.append(self.alerts.status())
        return "; ".join(parts)

    def _start_thread(self, name: str, target) -> None:
        def guarded() -> None:
            try:
                target()
            except Exception as error:  # a bug: stop everything rather than run half a pipeline
                log.exception("%s failed; stopping the pipeline", name)
                self.failures.append(f"{name}: {type(error).__name__}: {error}")
                self.stop_requested.set()

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)
