"""Deciding how a call is rated (SPEC §6), before anything is applied.

`plan_call` is pure: given the call, the caller's licences and the pools' remaining minutes, it
returns the whole decision or raises `NoRate`, so a rejected call never touches any state.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from domain import licences
from domain.calls import DIALOUT, FREE_KINDS, OUTBOUND, RATE_KIND_OF, Cdr, billed_minutes
from domain.catalog import DIALOUT as DIALOUT_POOL
from domain.catalog import DOMESTIC, INTERNATIONAL, Catalog
from domain.commerce import NCE
from domain.errors import NoRate
from domain.money import ZERO
from domain.phone import country_of, digits_of
from domain.pools import PoolKey
from domain.rates import RateCard, RateRow
from domain.timestamps import month_key

# Who pays the charge of a call.
PAYER_NONE, PAYER_CREDITS, PAYER_OVERAGE, PAYER_UNCOLLECTED = "none", "credits", "overage", "uncollected"


@dataclass(frozen=True, slots=True)
class Caller:
    """What rating needs to know of the user on the call (None when the CDR names none)."""
    usage_location: str
    licences: frozenset[str]


@dataclass(frozen=True, slots=True)
class CallPlan:
    kind: str
    billed_minutes: int
    pool: PoolKey | None
    pool_month: str
    covered_minutes: int
    chargeable_minutes: int
    rate: RateRow | None
    charge: Decimal
    payer: str
    uncollected_reason: str | None


@dataclass(frozen=True, slots=True)
class Billing:
    """The organization's side of rating: its currency, commerce and whether credits are active."""
    currency: str
    commerce: str
    credits_active: bool


def plan_call(cdr: Cdr, caller: Caller | None, billing: Billing, remaining_minutes: Callable[[str, PoolKey], int],
              rate_card: RateCard, catalog: Catalog) -> CallPlan:
    """`remaining_minutes(month, pool_key)` answers a pool's remaining minutes this month."""
    kind, minutes, month = cdr.kind, billed_minutes(cdr.duration_seconds), month_key(cdr.start_time)
    if kind in FREE_KINDS or minutes == 0:
        return CallPlan(kind, minutes, None, month, 0, 0, None, ZERO, PAYER_NONE, None)
    pool = pool_tried(cdr, caller, catalog)
    covered = min(minutes, remaining_minutes(month, pool)) if pool else 0
    chargeable = minutes - covered
    if chargeable == 0:
        return CallPlan(kind, minutes, pool, month, covered, 0, None, ZERO, PAYER_NONE, None)
    rate = rate_card.find(billing.currency, RATE_KIND_OF[kind], digits_of(cdr.rated_number), cdr.start_time)
    if rate is None:
        raise NoRate(f"no {RATE_KIND_OF[kind]} rate in {billing.currency} for {cdr.rated_number} "
                     f"effective at the call's start")
    charge = chargeable * rate.rate_per_minute + rate.connection_fee
    payer, reason = who_pays(kind, caller, billing) if charge > 0 else (PAYER_NONE, None)
    return CallPlan(kind, minutes, pool, month, covered, chargeable, rate, charge, payer, reason)


def pool_tried(cdr: Cdr, caller: Caller | None, catalog: Catalog) -> PoolKey | None:
    return pool_for(cdr.kind, cdr.destination_number, caller, catalog)


def pool_for(kind: str, destination_number: str, caller: Caller | None, catalog: Catalog) -> PoolKey | None:
    """SPEC §6's "pool tried" column: for outbound and dial-out calls of a user, by the user's
    usage location and licences and the destination's country; None otherwise."""
    if caller is None or kind not in (OUTBOUND, DIALOUT):
        return None
    location, held = caller.usage_location, caller.licences
    destination = country_of(destination_number)
    if kind == DIALOUT:
        if licences.has_audio_conferencing(held) and destination in catalog.dialout_countries:
            return PoolKey(DIALOUT_POOL, location)
        return None
    if destination == location:
        return PoolKey(DOMESTIC, location) if licences.has_domestic_minutes(held) else None
    return PoolKey(INTERNATIONAL, location) if licences.has_international_minutes(held) else None


def who_pays(kind: str, caller: Caller | None, billing: Billing) -> tuple[str, str | None]:
    """SPEC §6 step 6: the payer, and the reason when the charge goes uncollected."""
    if billing.commerce == NCE:
        return PAYER_OVERAGE, None
    if not billing.credits_active:
        return PAYER_UNCOLLECTED, "credits_not_active"
    if kind in (OUTBOUND, DIALOUT) and (caller is None or licences.COMMUNICATIONS_CREDITS not in caller.licences):
        return PAYER_UNCOLLECTED, "no_credits_licence"
    return PAYER_CREDITS, None


