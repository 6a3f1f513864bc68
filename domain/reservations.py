"""Reservations (SPEC §13.2): what allowed call authorizations hold until their CDR settles them,
the call is released, or they expire.

An account keeps only its open reservations (a bounded set: the calls in progress); ended ones
live on in its history. Held minutes count against a pool only in the reservation's pool month.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from domain.money import ZERO

OPEN, SETTLED, RELEASED, EXPIRED, DENIED = "open", "settled", "released", "expired", "denied"
ENDINGS = (SETTLED, RELEASED, EXPIRED)


@dataclass(frozen=True, slots=True)
class Reservation:
    call_id: str
    pool: str | None  # the pool key's text, as events store it
    pool_month: str
    held_minutes: int
    held_amount: Decimal
    expires_at: datetime


def held_minutes(reservations: Iterable[Reservation], pool: str, month: str) -> int:
    """Minutes the reservations hold on `pool` in `month`."""
    return sum(r.held_minutes for r in reservations if r.pool == pool and r.pool_month == month)


def held_amount(reservations: Iterable[Reservation]) -> Decimal:
    return sum((r.held_amount for r in reservations), ZERO)


def still_open_at(reservations: Mapping[str, Reservation], now: datetime, settling: str | None = None) -> list[Reservation]:
    """The reservations open once `now`'s expiry step has run and `settling` (a CDR's `call_id`)
    is settled: what limits the pool minutes the CDR may draw."""
    return [r for r in reservations.values() if r.expires_at > now and r.call_id != settling]


def due(reservations: Mapping[str, Reservation], now: datetime) -> list[Reservation]:
    """Open reservations whose `expires_at` has come, earliest first (full precision)."""
    return sorted((r for r in reservations.values() if r.expires_at <= now), key=lambda r: (r.expires_at, r.call_id))
