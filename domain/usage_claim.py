"""A rated CDR's `usage_id`, claimed once for ever (SPEC §10).

The claim's id is derived from the usage id, and the event store refuses a second version 1 of
the same aggregate: saved in the same transaction as the `CallRated` event, it makes double
charging impossible even for two processes racing on the same CDR, and it survives restarts.
"""

from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate


class UsageClaim(Aggregate):
    class UsageClaimed(Aggregate.Created):
        usage_id: str
        org: str

    def __init__(self, usage_id: str, org: str) -> None:
        self.usage_id, self.org = usage_id, org

    @staticmethod
    def create_id(usage_id: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"commcredits:usage:{usage_id}")

    @classmethod
    def claim(cls, usage_id: str, org: str) -> "UsageClaim":
        return cls._create(cls.UsageClaimed, id=cls.create_id(usage_id), usage_id=usage_id, org=org)
