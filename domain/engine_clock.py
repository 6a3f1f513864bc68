"""The engine's clock (SPEC §11): the time of the last accepted command; it never goes back.

Kept in the store so that a restarted engine carries on at the time it stopped: lines that
changed nothing but the time (a `clock` line, a duplicate CDR) must still count after a restart.
"""

from datetime import datetime
from uuid import NAMESPACE_URL, uuid5

from eventsourcing.domain import Aggregate

from domain.timestamps import decode_timestamp, encode_timestamp

ENGINE_CLOCK_ID = uuid5(NAMESPACE_URL, "commcredits:engine-clock")


class EngineClock(Aggregate):
    class Started(Aggregate.Created):
        at: str

    def __init__(self, at: str) -> None:
        self.now = decode_timestamp(at)

    @classmethod
    def start(cls, at: datetime) -> "EngineClock":
        return cls._create(cls.Started, id=ENGINE_CLOCK_ID, at=encode_timestamp(at))

    def advance(self, at: datetime) -> None:
        assert at >= self.now, "the engine clock never goes backwards"
        if at > self.now:
            self.trigger_event(self.Advanced, at=encode_timestamp(at))

    class Advanced(Aggregate.Event):
        at: str

        def apply(self, clock: "EngineClock") -> None:
            clock.now = decode_timestamp(self.at)
