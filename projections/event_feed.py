"""Reading the event store's notification log in order, page by page, in bounded memory."""

from collections.abc import Iterable, Iterator
from typing import Any

from eventsourcing.application import Application
from eventsourcing.utils import get_topic

READ_PAGE_SIZE = 1000


def read_events(app: Application, after: int = 0, event_classes: Iterable[type] = (),
                page_size: int = READ_PAGE_SIZE) -> Iterator[tuple[int, Any]]:
    """(position, domain event) for every stored event after `after`, optionally only of the
    given classes (filtered by the store, so skipped events cost nothing to decode)."""
    topics = [get_topic(cls) for cls in event_classes]
    start = after + 1
    while True:
        page = app.recorder.select_notifications(start, page_size, topics=topics)
        for notification in page:
            yield notification.id, app.mapper.to_domain_event(notification)
        if len(page) < page_size:
            return
        start = page[-1].id + 1
