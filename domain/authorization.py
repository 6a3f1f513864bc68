"""Call authorization (SPEC §13.1): whether a billable call may start, for how long, and what the
reservation holds so that calls at the same moment cannot spend the same minutes or money twice.

`decide` is pure: the caller gives it the organization's state at the decision's moment (what the
pool has left after open holds, the balance and the money held) and records the decision.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from domain.calls import FREE_KINDS, RATE_KIND_OF, TOLLFREE, kind_of
from domain.catalog import Catalog
from domain.money import ZERO, format_money
from domain.phone import digits_of
from domain.pools import PoolKey
from domain.rates import RateCard, RateRow
from domain.rating import PAYER_OVERAGE, PAYER_UNCOLLECTED, Billing, Caller, pool_for, who_pays
from domain.timestamps import encode_timestamp

DEFAULT_REQUESTED_SECONDS = 14_400
MAX_REQUESTED_SECONDS = 86_400
CDR_GRACE = timedelta(hours=1)  # how long after the longest call its CDR may take to arrive
ALLOWED, DENIED = "allowed", "denied"
NO_RATE, INSUFFICIENT_FUNDS = "no_rate", "insufficient_funds"
DENIAL_CODES = (NO_RATE, "credits_not_active", "no_credits_licence", INSUFFICIENT_FUNDS)


@dataclass(frozen=True, slots=True)
class CallRequest:
    """A `call.authorize` (SPEC §13.1), validated."""
    org: str
    call_id: str
    call_type: str
    number_type: str | None
    user: str | None
    caller_number: str
    destination_number: str
    requested_seconds: int
    at: datetime

    @property
    def kind(self) -> str:
        return kind_of(self.call_type, self.number_type)

    @property
    def rated_number(self) -> str:
        return self.caller_number if self.kind == TOLLFREE else self.destination_number


@dataclass(frozen=True, slots=True)
class Funds:
    """What credits can pay at the decision's moment."""
    balance: Decimal
    held: Decimal  # the held amounts of the organization's open reservations
    auto_recharge_live: bool  # enabled and not suspended

    @property
    def available(self) -> Decimal:
        """SPEC §13.1's F."""
        return max(ZERO, self.balance - self.held)


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    code: str | None
    max_seconds: int
    pool: PoolKey | None  # the pool tried (rule 2), for allowed and denied decisions alike
    held_minutes: int
    held_amount: Decimal
    expires_at: datetime | None


def decision_fields(request: CallRequest, decision: Decision, at: datetime) -> dict[str, Any]:
    """The decision as events carry it (plain JSON values; instants at full precision)."""
    return {"call_id": request.call_id, "decision": ALLOWED if decision.allowed else DENIED, "code": decision.code,
            "max_seconds": decision.max_seconds, "pool": None if decision.pool is None else str(decision.pool),
            "held_minutes": decision.held_minutes, "held_amount": format_money(decision.held_amount),
            "expires_at": None if decision.expires_at is None else encode_timestamp(decision.expires_at),
            "at": encode_timestamp(at)}


def decide(request: CallRequest, caller: Caller | None, billing: Billing, available_minutes: Callable[[PoolKey], int],
           funds: Funds, rate_card: RateCard, catalog: Catalog, now: datetime) -> Decision:
    """The first of SPEC §13.1's seven rules that applies decides. `available_minutes(pool)` is
    the pool's P this month: capacity − used − minutes held by open reservations."""
    kind, requested = request.kind, request.requested_seconds
    if kind in FREE_KINDS:
        return _allowed(now, requested, None, 0)
    pool = pool_for(kind, request.destination_number, caller, catalog)
    minutes = available_minutes(pool) if pool is not None else 0
    rate = rate_card.find(billing.currency, RATE_KIND_OF[kind], digits_of(request.rated_number), now)
    if rate is None:
        return _pool_only(now, requested, pool, minutes, NO_RATE)
    if rate.rate_per_minute == 0 and rate.connection_fee == 0:
        return _allowed(now, requested, pool, minutes)
    payer, reason = who_pays(kind, caller, billing)
    if payer == PAYER_UNCOLLECTED:
        return _pool_only(now, requested, pool, minutes, reason)
    if payer == PAYER_OVERAGE:
        return _allowed(now, requested, pool, minutes)
    return _credits_pay(now, requested, pool, minutes, rate, funds)


def _credits_pay(now: datetime, requested: int, pool: PoolKey | None, minutes: int, rate: RateRow,
                 funds: Funds) -> Decision:
    """Rule 7: credits pay for what the pool does not cover."""
    available, fee, per_minute = funds.available, rate.connection_fee, rate.rate_per_minute
    if funds.auto_recharge_live:
        return _allowed(now, requested, pool, minutes, rate, money_cap=available)
    if available < fee:
        paid_max: int | None = 0
    elif per_minute == 0:
        paid_max = None  # the fee is all it costs: unlimited
    else:
        paid_max = int((available - fee) // per_minute)
    max_seconds = requested if paid_max is None else min(requested, (minutes + paid_max) * 60)
    if max_seconds == 0:
        return _denied(pool, INSUFFICIENT_FUNDS)
    return _allowed(now, max_seconds, pool, minutes, rate)


def _pool_only(now: datetime, requested: int, pool: PoolKey | None, minutes: int, code: str) -> Decision:
    """Rules 3 and 5: only included minutes can pay."""
    if minutes == 0:
        return _denied(pool, code)
    return _allowed(now, min(requested, minutes * 60), pool, minutes)


def _allowed(now: datetime, max_seconds: int, pool: PoolKey | None, minutes: int, rate: RateRow | None = None,
             money_cap: Decimal | None = None) -> Decision:
    """What an allowed decision holds: the pool's minutes first, then money for the rest when
    credits pay (`rate`), capped at F under auto-recharge (`money_cap`)."""
    billed = -(-max_seconds // 60)
    held_minutes = min(minutes, billed) if pool is not None else 0
    paid = billed - held_minutes
    held_amount = ZERO
    if rate is not None and paid > 0:
        held_amount = paid * rate.rate_per_minute + rate.connection_fee
        if money_cap is not None:
            held_amount = min(money_cap, held_amount)
    return Decision(True, None, max_seconds, pool, held_minutes, held_amount,
                    now + timedelta(seconds=max_seconds) + CDR_GRACE)


def _denied(pool: PoolKey | None, code: str) -> Decision:
    return Decision(False, code, 0, pool, 0, ZERO, None)
