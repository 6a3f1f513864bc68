"""The one input every projection reads: a stored event as a plain document.

It is the value of a `billing-events.v1` message (`application.event_documents`), whether the
projector read it from the store's log or from the topic: projections cannot tell the two apart.
"""

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class EventRecord:
    type: str  # e.g. "CreditAccount.FundsAdded"
    version: int
    aggregate_id: str
    aggregate_version: int
    timestamp: str
    position: int
    data: dict[str, Any]

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> "EventRecord":
        return cls(type=document["type"], version=document["version"], aggregate_id=document["aggregate_id"],
                   aggregate_version=document["aggregate_version"], timestamp=document["timestamp"],
                   position=document["position"], data=document["data"])

    @classmethod
    def from_wire(cls, value: bytes) -> "EventRecord":
        return cls.from_document(orjson.loads(value))
