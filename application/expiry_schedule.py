"""When each organization next has work for the expiry step: lots falling due (SPEC §7), lots
coming within 30 days of it (the `ExpiryApproached` notice) and reservations expiring (SPEC §13.2).

One heap entry per lot, pushed once, as the lot appears: lots never expire earlier than older
ones, so an organization's next due time is always at the top of the heap. Due organizations are
handed out in creation order, as SPEC §11's expiry step runs them.
"""

import heapq
from dataclasses import dataclass
from datetime import datetime

from domain.credit_account import CreditAccount


@dataclass(order=True, frozen=True, slots=True)
class _Due:
    at: datetime
    creation_index: int
    org: str


class ExpirySchedule:
    def __init__(self) -> None:
        self._expiries: list[_Due] = []
        self._notices: list[_Due] = []
        self._reservations: list[_Due] = []
        self._scheduled_lots: dict[str, int] = {}

    def clear(self) -> None:
        self._expiries.clear()
        self._notices.clear()
        self._reservations.clear()
        self._scheduled_lots.clear()

    def schedule(self, account: CreditAccount, creation_index: int) -> None:
        """Learn the account's lots added since it was last scheduled."""
        for lot in account.lots[self._scheduled_lots.get(account.org, 0):]:
            if lot.remaining > 0:
                heapq.heappush(self._expiries, _Due(lot.expires_at, creation_index, account.org))
                if not lot.noticed:
                    heapq.heappush(self._notices, _Due(lot.notice_at, creation_index, account.org))
        self._scheduled_lots[account.org] = len(account.lots)

    def schedule_reservation(self, org: str, expires_at: datetime, creation_index: int) -> None:
        """A reservation opened (or found open when the account was loaded)."""
        heapq.heappush(self._reservations, _Due(expires_at, creation_index, org))

    def reservations_expiring_by(self, now: datetime) -> list[str]:
        """The organizations with a reservation due by `now`, in creation order."""
        return _pop_due(self._reservations, now)

    def expiring_by(self, now: datetime) -> list[str]:
        """The organizations with a lot due by `now` (taken off the schedule), in creation order."""
        return _pop_due(self._expiries, now)

    def noticed_by(self, now: datetime) -> list[str]:
        """The organizations with a lot that comes within 30 days of expiry by `now`, in creation order."""
        return _pop_due(self._notices, now)

    def next_at(self) -> datetime | None:
        times = [heap[0].at for heap in (self._expiries, self._notices, self._reservations) if heap]
        return min(times) if times else None


def _pop_due(heap: list[_Due], now: datetime) -> list[str]:
    due: dict[str, int] = {}
    while heap and heap[0].at <= now:
        entry = heapq.heappop(heap)
        due[entry.org] = entry.creation_index
    return sorted(due, key=due.__getitem__)
