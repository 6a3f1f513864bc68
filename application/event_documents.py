"""One stored event as a plain document: the value of a `billing-events.v1` message.

`type` (e.g. `CreditAccount.CallRated`), `version` (the event class's version), `aggregate_id`,
`aggregate_version`, `timestamp` (ISO 8601, UTC), `position` (the event's place in the store's
notification log, unique and increasing), `data` (the event's own fields, amounts as strings).
The relay sends it; projections read it, from the store's log or from the topic alike, so that
what they compute cannot depend on where the events came from.
"""

from functools import lru_cache
from typing import Any

import orjson
from eventsourcing.persistence import Notification, Transcoder
from eventsourcing.utils import resolve_topic

from application.transcoder import OrjsonTranscoder, decode_with_text_timestamp

_ENVELOPE_FIELDS = ("originator_id", "originator_version", "timestamp")


def _plain(value: Any) -> Any:
    """Events carry strings for amounts; should one carry a richer value, it goes out as text."""
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return str(value)


@lru_cache(maxsize=256)
def event_type(topic: str) -> tuple[str, int]:
    """(`Aggregate.Event` name, class version) of a stored event's topic."""
    cls = resolve_topic(topic)
    return topic.rpartition(":")[2], getattr(cls, "class_version", 1)


def encoded_event(notification: Notification, transcoder: Transcoder) -> tuple[str, dict[str, Any], bytes]:
    """(type, the event's own fields, the document encoded as it goes on the wire)."""
    state = _state(notification.state, transcoder)
    name, version = event_type(notification.topic)
    timestamp = state.pop("timestamp")
    data = state
    for field in _ENVELOPE_FIELDS:
        data.pop(field, None)
    value = orjson.dumps({
        "type": name, "version": version, "aggregate_id": str(notification.originator_id),
        "aggregate_version": notification.originator_version, "timestamp": timestamp,
        "position": notification.id, "data": data,
    }, default=_plain, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)
    return name, data, value


def _state(stored: bytes, transcoder: Transcoder) -> dict[str, Any]:
    """The stored event's fields. Our own events keep their timestamp as the text the document
    shows (no datetime made and written out again: a fifth of the relay's own work)."""
    if isinstance(transcoder, OrjsonTranscoder):
        state = decode_with_text_timestamp(stored)
        if state is not None:
            return state
    return transcoder.decode(stored)


def event_document(notification: Notification, transcoder: Transcoder) -> dict[str, Any]:
    """The same document as the wire carries it, decoded: exactly what a topic reader sees."""
    return orjson.loads(encoded_event(notification, transcoder)[2])
