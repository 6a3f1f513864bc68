"""A rated CDR's `usage_id`, as stores written by earlier versions claimed it: no longer written.

Those stores hold one `UsageClaimed` event per rated CDR; the class stays so that their history
can be read (the relay, the projections and the audit decode every stored event), and the usage
claims table of such a store is filled from them when it is created.
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
