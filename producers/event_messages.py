"""The wire format of `billing-events.v1` (docs/pipeline.md): one message per stored event.

Value (orjson): `type` (e.g. `CreditAccount.CallRated`), `version` (the event class's version),
`aggregate_id`, `aggregate_version`, `timestamp`, `position` (the event's place in the store's
notification log, unique and increasing), `data` (the event's own fields, amounts as strings).
Key: the organization id (events that belong to no organization, such as the engine clock's,
use `ENGINE_KEY`). Headers: `type` and `position`, so consumers can filter and de-duplicate
without parsing the value.
"""

from functools import lru_cache
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Notification, Transcoder
from eventsourcing.utils import resolve_topic

from domain.credit_account import CreditAccount
from domain.licence_registry import LicenceRegistry

ENGINE_KEY = b"engine"
_ENVELOPE_FIELDS = ("originator_id", "originator_version", "timestamp")


class OrganizationKeys:
    """Which organization an aggregate belongs to: from the event itself when it names one,
    else from the ids of the organizations' accounts and registries seen so far."""

    def __init__(self) -> None:
        self._org_of: dict[UUID, str] = {}

    def learn(self, org: str) -> None:
        self._org_of[CreditAccount.create_id(org)] = org
        self._org_of[LicenceRegistry.create_id(org)] = org

    def key(self, aggregate_id: UUID, data: dict[str, Any]) -> bytes:
        org = data.get("org")
        if isinstance(org, str):
            self.learn(org)
            return org.encode()
        known = self._org_of.get(aggregate_id)
        return known.encode() if known is not None else ENGINE_KEY


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


def event_message(notification: Notification, transcoder: Transcoder,
                  keys: OrganizationKeys) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of the message for one stored event."""
    state = transcoder.decode(notification.state)
    name, version = event_type(notification.topic)
    data = {field: value for field, value in state.items() if field not in _ENVELOPE_FIELDS}
    value = orjson.dumps({
        "type": name, "version": version, "aggregate_id": str(notification.originator_id),
        "aggregate_version": notification.originator_version, "timestamp": state["timestamp"],
        "position": notification.id, "data": data,
    }, default=_plain, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)
    key = keys.key(notification.originator_id, data)
    return key, value, [("type", name.encode()), ("position", str(notification.id).encode())]
