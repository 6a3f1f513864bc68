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
    fast_state = _text_timestamp_state(notification.state, transcoder)
    document = _document(notification, transcoder.decode(notification.state) if fast_state is None else fast_state)
    value = orjson.dumps(document, default=_plain, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)
    return document["type"], document["data"], value


def event_document(notification: Notification, transcoder: Transcoder) -> dict[str, Any]:
    """The same document as the wire carries it, decoded: exactly what a topic reader sees. Our
    own events decode to JSON values already (their timestamp kept as its text): their document
    is built as is, instead of written out and read back (the projections read every event so)."""
    fast_state = _text_timestamp_state(notification.state, transcoder)
    if fast_state is None:
        return orjson.loads(encoded_event(notification, transcoder)[2])
    return _document(notification, fast_state)


def _document(notification: Notification, state: dict[str, Any]) -> dict[str, Any]:
    name, version = event_type(notification.topic)
    timestamp = state.pop("timestamp")
    for field in _ENVELOPE_FIELDS:
        state.pop(field, None)
    return {"type": name, "version": version, "aggregate_id": str(notification.originator_id),
            "aggregate_version": notification.originator_version, "timestamp": timestamp,
            "position": notification.id, "data": state}


def _text_timestamp_state(stored: bytes, transcoder: Transcoder) -> dict[str, Any] | None:
    """The stored event's fields with the timestamp as the text the document shows (no datetime
    made and written out again: a fifth of the relay's own work); None when that does not apply."""
    return decode_with_text_timestamp(stored) if isinstance(transcoder, OrjsonTranscoder) else None
