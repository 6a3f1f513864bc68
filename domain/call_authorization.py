"""A `call_id`'s authorization, for ever (SPEC §13): decided once, in any organization.

The organization's account holds what an open reservation holds (it bounds later decisions) and
records the decision and its end as events; an `AuthorizationRecord`, kept by the call id
(`application.authorization_table`), is the decision itself and how it ended, so that a retried
`call.authorize` anywhere finds the earlier answer, a `call.released` of another organization's
call is `unknown_authorization`, and a switch can read a decision back.

Stores written before that table existed hold one `CallAuthorization` aggregate per call id (a
`Decided` event and, once its reservation ended, an `Ended` one). The class stays so that their
histories read as they were written; nothing new is recorded with it.
"""

from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.reservations import DENIED, ENDINGS, OPEN
from domain.timestamps import decode_timestamp, format_timestamp

ID_CACHE_SIZE = 16_384  # call ids of the calls in progress and recently decided
DECISION_FIELDS = ("decision", "code", "max_seconds", "pool", "held_minutes", "held_amount")


@dataclass(slots=True)
class AuthorizationRecord:
    """One call id's decision (`decision_fields`, made in `org`) and its status."""
    call_id: str
    org: str
    fields: dict[str, Any]
    status: str
    ended_at: str | None = None
    is_new: bool = True  # not in the store yet

    @classmethod
    def decided(cls, org: str, fields: dict[str, Any]) -> "AuthorizationRecord":
        return cls(fields["call_id"], org, fields, DENIED if fields["decision"] == DENIED else OPEN)

    def end(self, status: str, at: str) -> None:
        assert self.status == OPEN and status in ENDINGS, (self.status, status)
        self.status, self.ended_at = status, at

    def as_record(self) -> dict[str, Any]:
        """SPEC §13.3's record of the decision (instants cut to whole seconds), with its call id."""
        fields = self.fields
        expires_at = None if fields["expires_at"] is None else format_timestamp(decode_timestamp(fields["expires_at"]))
        return {"call_id": self.call_id, "org": self.org, **{name: fields[name] for name in DECISION_FIELDS},
                "status": self.status, "expires_at": expires_at}


class CallAuthorization(Aggregate):
    class Decided(Aggregate.Created):
        call_id: str
        org: str
        decision: str
        code: str | None
        max_seconds: int
        pool: str | None
        held_minutes: int
        held_amount: str
        expires_at: str | None
        at: str

    def __init__(self, call_id: str, org: str, decision: str, code: str | None, max_seconds: int, pool: str | None,
                 held_minutes: int, held_amount: str, expires_at: str | None, at: str) -> None:
        self.call_id, self.org, self.decision, self.code = call_id, org, decision, code
        self.max_seconds, self.pool, self.held_minutes, self.held_amount = max_seconds, pool, held_minutes, held_amount
        self.expires_at, self.decided_at = expires_at, at
        self.status = DENIED if decision == DENIED else OPEN
        self.ended_at: str | None = None

    @staticmethod
    @lru_cache(maxsize=ID_CACHE_SIZE)
    def create_id(call_id: str) -> UUID:
        """Asked several times per decision (is it decided? store it; settle it): computed once."""
        return uuid5(NAMESPACE_URL, f"commcredits:call-authorization:{call_id}")

    @classmethod
    def record(cls, org: str, decision: dict[str, Any]) -> "CallAuthorization":
        """The decision (`decision_fields`) made in `org`."""
        return cls._create(cls.Decided, id=cls.create_id(decision["call_id"]), org=org, **decision)

    def as_record(self) -> dict[str, Any]:
        """SPEC §13.3's record of the decision (instants cut to whole seconds), with its call id."""
        expires_at = None if self.expires_at is None else format_timestamp(decode_timestamp(self.expires_at))
        return {"call_id": self.call_id, "org": self.org, "decision": self.decision, "code": self.code,
                "max_seconds": self.max_seconds, "pool": self.pool, "held_minutes": self.held_minutes,
                "held_amount": self.held_amount, "status": self.status, "expires_at": expires_at}

    def end(self, status: str, at: str) -> None:
        assert self.status == OPEN and status in ENDINGS, (self.status, status)
        self.trigger_event(self.Ended, status=status, at=at)

    class Ended(Aggregate.Event):
        status: str
        at: str

        def apply(self, authorization: "CallAuthorization") -> None:
            authorization.status, authorization.ended_at = self.status, self.at
