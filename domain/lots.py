"""Credit lots (SPEC §7): what each addition of funds left, and the order money leaves them."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from domain.timestamps import add_calendar_months

LOT_LIFETIME_MONTHS = 12
EXPIRY_NOTICE = timedelta(days=30)  # how long before a lot expires its organization is told
ORDER, MANUAL, AUTO_RECHARGE = "order", "manual", "auto_recharge"
LOT_SOURCES = (ORDER, MANUAL, AUTO_RECHARGE)


@dataclass(slots=True)
class Lot:
    number: int  # 1-based creation order
    source: str
    amount: Decimal
    added_at: datetime
    expires_at: datetime
    remaining: Decimal
    expired: Decimal
    noticed: bool = False  # its coming expiry was announced (ExpiryApproached)

    @property
    def notice_at(self) -> datetime:
        return self.expires_at - EXPIRY_NOTICE

    @property
    def debit_key(self) -> tuple[datetime, datetime, int]:
        """Debits and expiries take lots oldest first: by expiry, then addition, then creation."""
        return (self.expires_at, self.added_at, self.number)


def expiry_of(added_at: datetime) -> datetime:
    return add_calendar_months(added_at, LOT_LIFETIME_MONTHS)


def plan_debit(open_lots: list[Lot], amount: Decimal) -> list[tuple[int, Decimal]]:
    """(lot number, amount) taken from lots already in debit order; takes at most what they hold."""
    taken = []
    for lot in open_lots:
        if amount <= 0:
            break
        portion = min(lot.remaining, amount)
        taken.append((lot.number, portion))
        amount -= portion
    return taken


def lots_to_notice(open_lots: list[Lot], now: datetime) -> list[Lot]:
    """Open lots, in debit order, that now expire within EXPIRY_NOTICE and were not announced yet.
    A lot already due gets no notice: it expires in this very step."""
    return [lot for lot in open_lots if not lot.noticed and lot.notice_at <= now < lot.expires_at]


def due_lots(open_lots: list[Lot], now: datetime) -> list[Lot]:
    """Lots in debit order whose expiry has come; open lots are sorted, so stop at the first not due."""
    due = []
    for lot in open_lots:
        if lot.expires_at > now:
            break
        due.append(lot)
    return due
