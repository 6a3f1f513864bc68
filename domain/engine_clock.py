"""The engine's clock (SPEC §11): the time of the last accepted command; it never goes back.

Kept in the store so that a restarted engine carries on at the time it stopped: lines that
changed nothing but the time (a `clock` line, a duplicate CDR) must still count after a restart.
`simulate` and the admin steps share one clock; the live consumer keeps one per shard (a CDR
partition), so that instances rating different partitions never write the same aggregate.
"""

from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.timestamps import decode_timestamp, encode_timestamp

ENGINE_CLOCK_ID = uuid5(NAMESPACE_URL, "commcredits:engine-clock")


def engine_clock_id(shard: str = "") -> UUID:
    """The shared clock's id, or the id of a shard's own clock."""
    return uuid5(NAMESPACE_URL, f"commcredits:engine-clock:{shard}") if shard else ENGINE_CLOCK_ID


class EngineClock(Aggregate):
    class Started(Aggregate.Created):
        at: str

    def __init__(self, at: str) -> None:
        self.now = decode_timestamp(at)

    @classmethod
    def start(cls, at: datetime, shard: str = "") -> "EngineClock":
        return cls._create(cls.Started, id=engine_clock_id(shard), at=encode_timestamp(at))

    def advance(self, at: datetime) -> None:
        assert at >= self.now, "the engine clock never goes backwards"
        if at > self.now:
            self.trigger_event(self.Advanced, at=encode_timestamp(at))

    class Advanced(Aggregate.Event):
        at: str

        def apply(self, clock: "EngineClock") -> None:
            clock.now = decode_timestamp(self.at)
