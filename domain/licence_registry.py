"""The organization's users and the licences they hold (SPEC §3-§5).

Besides the users, it keeps how many users contribute to each pool (`DOMESTIC/US` → 12), kept up
to date by the event handlers, so a pool's capacity is a lookup, not a scan of every user.
"""

from collections.abc import Iterable
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.errors import DuplicateUser, LicenceConflict, LicenceNotHeld, LicencePrerequisite, UnknownUser
from domain.licences import licence_set_problem, pool_kinds_contributed
from domain.pools import PoolKey
from domain.rating import Caller
from domain.timestamps import encode_timestamp

_ERROR_FOR_CODE = {
    "unknown_user": UnknownUser,
    "licence_not_held": LicenceNotHeld,
    "licence_conflict": LicenceConflict,
    "licence_prerequisite": LicencePrerequisite,
}


class LicenceRegistry(Aggregate):
    class Opened(Aggregate.Created):
        org: str
        at: str

    def __init__(self, org: str, at: str) -> None:
        self.org = org
        self.locations: dict[str, str] = {}
        self.held: dict[str, set[str]] = {}
        self.contributors: dict[str, int] = {}

    @staticmethod
    def create_id(org: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"commcredits:licence-registry:{org}")

    @classmethod
    def open(cls, org: str, at: datetime) -> "LicenceRegistry":
        return cls._create(cls.Opened, id=cls.create_id(org), org=org, at=encode_timestamp(at))

    # ----- queries -----------------------------------------------------------------------------

    def has_user(self, user: str) -> bool:
        return user in self.locations

    def caller(self, user: str) -> Caller:
        return Caller(self.locations[user], frozenset(self.held[user]))

    def pool_contributors(self, pool: PoolKey) -> int:
        return self.contributors.get(pool, 0)

    @property
    def licensed_users(self) -> int:
        return sum(1 for held in self.held.values() if held)

    # ----- commands ----------------------------------------------------------------------------

    def check_new_user(self, user: str) -> None:
        if user in self.locations:
            raise DuplicateUser(f"user {user!r} already exists in organization {self.org!r}")

    def check_change(self, users: list[str], licences: list[str], *, assign: bool) -> None:
        if assign:
            self._check_bulk(users, lambda held: held | set(licences), removing=())
        else:
            self._check_bulk(users, lambda held: held - set(licences), removing=licences)

    def add_user(self, user: str, usage_location: str, at: datetime) -> None:
        self.check_new_user(user)
        self.trigger_event(self.UserAdded, user=user, usage_location=usage_location, at=encode_timestamp(at))

    def assign(self, users: list[str], licences: list[str], at: datetime) -> None:
        """Atomic bulk assignment: prerequisites are judged on each user's set after the change."""
        self.check_change(users, licences, assign=True)
        self.trigger_event(self.LicencesAssigned, users=_unique(users), licences=_unique(licences),
                           at=encode_timestamp(at))

    def remove(self, users: list[str], licences: list[str], at: datetime) -> None:
        self.check_change(users, licences, assign=False)
        self.trigger_event(self.LicencesRemoved, users=_unique(users), licences=_unique(licences),
                           at=encode_timestamp(at))

    def holders_of(self, licence: str) -> int:
        return sum(1 for held in self.held.values() if licence in held)

    def _check_bulk(self, users: list[str], change, removing: Iterable[str]) -> None:
        failures = [(user, problem) for user in users if (problem := self._problem_for(user, change, removing))]
        if failures:
            code = failures[0][1][0]
            listing = "; ".join(f"{user}: {code_} ({why})" for user, (code_, why) in failures)
            raise _ERROR_FOR_CODE[code](f"{len(failures)} of {len(users)} user(s) failed, nothing changed: {listing}")

    def _problem_for(self, user: str, change, removing: Iterable[str]) -> tuple[str, str] | None:
        """SPEC §4's per-user order: unknown_user, licence_not_held, licence_conflict, licence_prerequisite."""
        if user not in self.held:
            return "unknown_user", "no such user in the organization"
        held = self.held[user]
        missing = sorted(set(removing) - held)
        if missing:
            return "licence_not_held", f"does not hold {', '.join(missing)}"
        return licence_set_problem(frozenset(change(held)))

    # ----- events ------------------------------------------------------------------------------

    class UserAdded(Aggregate.Event):
        user: str
        usage_location: str
        at: str

        def apply(self, registry: "LicenceRegistry") -> None:
            registry.locations[self.user] = self.usage_location
            registry.held[self.user] = set()

    class LicencesAssigned(Aggregate.Event):
        users: list[str]
        licences: list[str]
        at: str

        def apply(self, registry: "LicenceRegistry") -> None:
            for user in self.users:
                registry._set_licences(user, registry.held[user] | set(self.licences))

    class LicencesRemoved(Aggregate.Event):
        users: list[str]
        licences: list[str]
        at: str

        def apply(self, registry: "LicenceRegistry") -> None:
            for user in self.users:
                registry._set_licences(user, registry.held[user] - set(self.licences))

    def _set_licences(self, user: str, after: set[str]) -> None:
        location = self.locations[user]
        for kind in pool_kinds_contributed(self.held[user]):
            self.contributors[PoolKey(kind, location)] -= 1
        for kind in pool_kinds_contributed(after):
            key = PoolKey(kind, location)
            self.contributors[key] = self.contributors.get(key, 0) + 1
        self.held[user] = after


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))

