"""Where records come from: the event store's log (one stream, in position order)."""

from collections.abc import Iterable
from functools import cache

from eventsourcing.domain import Aggregate
from eventsourcing.utils import get_topic, resolve_topic

from application.billing_application import BillingApplication
from application.event_documents import event_document
from domain.billing_contacts import BillingContacts
from domain.credit_account import CreditAccount
from domain.engine_clock import EngineClock
from domain.licence_registry import LicenceRegistry
from domain.order import Order
from domain.usage_claim import UsageClaim
from projections.records import EventRecord

AGGREGATES = (CreditAccount, LicenceRegistry, Order, UsageClaim, EngineClock, BillingContacts)


@cache
def _topics_by_type() -> dict[str, str]:
    """'CreditAccount.FundsAdded' → the stored topic of that event class."""
    topics = {}
    for aggregate in AGGREGATES:
        for member in vars(aggregate).values():
            if isinstance(member, type) and issubclass(member, Aggregate.Event):
                topic = get_topic(member)
                topics[topic.rpartition(":")[2]] = topic
    return topics


@cache
def event_classes() -> dict[str, type[Aggregate.Event]]:
    """The stored topic of each of our event classes → the class."""
    return {topic: resolve_topic(topic) for topic in _topics_by_type().values()}


def stored_topics(event_types: Iterable[str]) -> list[str]:
    known = _topics_by_type()
    unknown = sorted(set(event_types) - known.keys())
    assert not unknown, f"no stored event has the type(s) {unknown}"
    return sorted(known[event_type] for event_type in event_types)


class StoreLog:
    """Pages of records from the store's notification log, only of the types asked for (the
    store filters them, so skipped events cost nothing to decode)."""

    def __init__(self, app: BillingApplication) -> None:
        self.app = app

    def end(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def read(self, after: int, limit: int, stop: int, event_types: Iterable[str]) -> list[EventRecord]:
        notifications = self.app.recorder.select_notifications(after + 1, limit, stop=stop,
                                                               topics=stored_topics(event_types))
        transcoder = self.app.mapper.transcoder
        return [EventRecord.from_document(event_document(notification, transcoder)) for notification in notifications]
