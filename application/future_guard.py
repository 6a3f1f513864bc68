"""The live engine refuses times far ahead of the wall clock (`future_time`).

The engine's clock follows the commands it accepts and never goes back (SPEC §11), which is
right for `simulate` and for a switch's slightly skewed clock, but it lets one CDR dated 2199
move a shard to 2199: every organization's funds expire, later calls are rated in 2199 and the
next `funds add` is dated then. In the live service (`run`, `serve`, the admin CLI on a
persistent store) a command whose time is more than a tolerance ahead of the wall clock is
rejected before anything is decided, so it moves no clock. `simulate` has no guard.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from domain.errors import FutureTime
from domain.timestamps import format_timestamp

DEFAULT_TOLERANCE = timedelta(minutes=5)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class FutureGuard:
    tolerance: timedelta = DEFAULT_TOLERANCE
    now: Callable[[], datetime] = utc_now

    def check(self, at: datetime, field: str) -> None:
        now = self.now()
        if at > now + self.tolerance:
            raise FutureTime(f"{field} {format_timestamp(at)} is more than {self.tolerance.total_seconds():g} s "
                             f"ahead of the wall clock ({format_timestamp(now)}); nothing was applied")
