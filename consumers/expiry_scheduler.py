"""Funds expire when their time comes, even when no CDR arrives for the organization (SPEC §7).

In `run` the wall clock drives it: when the earliest open lot of any organization is due, or
comes within 30 days of it, the engine's clock is advanced to now, which runs the expiry step
(and any recharge that follows) and the expiry notices (`ExpiryApproached`, which the alert
consumer turns into "funds expiring" alerts) for every organization in creation order, exactly
as a `clock` line does in `simulate`. Ticks in
between write nothing, so an idle engine stores no events. The scheduler runs on the consumer's
thread: the store keeps a single writer.
"""

from collections.abc import Callable
from datetime import datetime, timezone

from application.commands import AdvanceClock
from application.service import BillingService

TICK_INTERVAL_S = 1.0


def wall_clock() -> datetime:
    return datetime.now(timezone.utc)


class ExpiryScheduler:
    def __init__(self, service: BillingService, now: Callable[[], datetime] = wall_clock) -> None:
        self.service, self.now = service, now

    def tick(self) -> bool:
        """Run the expiry step if a lot is due; True when it did."""
        due, now = self.service.next_expiry_at(), self.now()
        if due is None or due > now:
            return False
        self.service.handle(AdvanceClock(now))
        self.service.flush()
        return True
