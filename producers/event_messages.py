"""The wire format of `billing-events.v1` (docs/pipeline.md): one message per stored event.

Value: the event's document (`application.event_documents`). Key: the organization id (events
that belong to no organization, such as the engine clock's, use `ENGINE_KEY`). Headers: `type` and `position`, so consumers can filter and de-duplicate
without parsing the value.
"""

from typing import Any
from uuid import UUID

from eventsourcing.persistence import Notification, Transcoder

from application.event_documents import encoded_event
from domain.credit_account import CreditAccount
from domain.licence_registry import LicenceRegistry

ENGINE_KEY = b"engine"


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


def event_message(notification: Notification, transcoder: Transcoder,
                  keys: OrganizationKeys) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """(key, value, headers) of the message for one stored event."""
    name, data, value = encoded_event(notification, transcoder)
    key = keys.key(notification.originator_id, data)
    return key, value, [("type", name.encode()), ("position", str(notification.id).encode())]
