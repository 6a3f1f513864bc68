"""The alert consumer: `billing-events.v1` in, e-mails, webhooks and `alerts.v1` messages out.

Two halves that share only the outbox (`consumers.alerts.outbox`) in the view database:
- the feed (`projections.kafka_source.TopicFeed` with `AlertProjection`) reads every partition
  of the events topic and records each event's alerts and deliveries with the partition's
  position, in one transaction: nothing read is lost or recorded twice;
- one dispatcher per channel (`consumers.alerts.dispatcher`) sends what is due.
A slow SMTP server delays only its own dispatcher. Run one alert consumer per event store: a
second one's feed would only lose to the first (`ConcurrentProjector`), but its dispatchers
would compete for the same deliveries (safely: claims are conditional, but to no gain).
"""

import logging
import threading
from dataclasses import dataclass, field

from application.settings import StoreSettings
from consumers.alerts.channels import channels_for
from consumers.alerts.dispatcher import ChannelDispatcher
from consumers.alerts.outbox import AlertOutbox
from consumers.alerts.projection import AlertProjection
from consumers.alerts.settings import AlertSettings
from projections.kafka_source import TopicFeed
from projections.projector import Projector
from projections.view_database import ViewDatabase

log = logging.getLogger("commcredits.alerts")

LEASE_SEND_TIMEOUTS = 3  # a claim outlives the slowest send by this many send timeouts
LEASE_MARGIN_S = 5.0


class AlertsNeedAPersistentStore(ValueError):
    pass


def claim_lease_s(settings: AlertSettings) -> float:
    """How long a claimed delivery is a dispatcher's before another may take it over."""
    return settings.send_timeout_s * LEASE_SEND_TIMEOUTS + LEASE_MARGIN_S


@dataclass
class AlertConsumer:
    store: StoreSettings
    bootstrap_servers: str
    events_topic: str
    settings: AlertSettings
    failures: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.store.is_memory:
            raise AlertsNeedAPersistentStore(
                "the alert consumer keeps its outbox beside the event store: use a SQLite file or PostgreSQL")
        self.feed = TopicFeed(self.bootstrap_servers, self.events_topic,
                              [Projector(AlertProjection(self.settings.topic), ViewDatabase.for_store(self.store))],
                              client_id="commcredits-alerts")
        self.dispatchers = [ChannelDispatcher(name, channel, AlertOutbox(ViewDatabase.for_store(self.store)),
                                              self.settings.retry, lease_s=claim_lease_s(self.settings))
                            for name, channel in channels_for(self.settings, self.bootstrap_servers).items()]

    def run(self, stop: threading.Event) -> None:
        """Feed and dispatch until `stop` is set; if a part fails for a reason that retrying cannot
        cure (a bug), everything stops and the failure is in `failures`."""
        threads = [self._thread("alerts-feed", lambda: self.feed.run(stop), stop)]
        threads += [self._thread(f"alerts-{dispatcher.channel_name}", lambda d=dispatcher: d.run(stop), stop)
                    for dispatcher in self.dispatchers]
        for thread in threads:
            thread.join()

    def status(self) -> str:
        sent = sum(dispatcher.stats.sent for dispatcher in self.dispatchers)
        dead = sum(dispatcher.stats.dead for dispatcher in self.dispatchers)
        retried = sum(dispatcher.stats.failed for dispatcher in self.dispatchers)
        return (f"alerts: events read {self.feed.stats.polled}, deliveries sent {sent}, "
                f"retries {retried}, dead letters {dead}")

    def _thread(self, name: str, target, stop: threading.Event) -> threading.Thread:
        def guarded() -> None:
            try:
                target()
            except Exception as error:
                log.exception("%s failed; stopping the alert consumer", name)
                self.failures.append(f"{name}: {type(error).__name__}: {error}")
                stop.set()

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        return thread
