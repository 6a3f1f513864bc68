"""The organization's credit account: balance, lots, pools, auto-recharge and totals.

Command methods decide (and raise `DomainError`s) before triggering any event; event `apply`
methods only assign state, because they run again on every replay. Amounts in events are
4-decimal strings and times ISO strings, so the stored history is plain JSON.
"""

import bisect
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.authorization import ALLOWED, CallRequest
from domain.auto_recharge import DISABLED, MAX_RECHARGES_PER_CALL, AutoRechargeSettings
from domain.calls import Cdr
from domain.commerce import NCE
from domain.errors import AlreadyConfigured, CreditsNotActive, NceNotEligible, UnknownAgreement
from domain.lots import AUTO_RECHARGE, MANUAL, ORDER, Lot, due_lots, expiry_of, lots_to_notice, plan_debit
from domain.money import ZERO, format_money, to_money
from domain.payments import AgreementPayment, PaymentGateway, PaymentMethod, PaymentOutcome, payment_from_data
from domain.rating import PAYER_CREDITS, PAYER_OVERAGE, PAYER_UNCOLLECTED, CallPlan
from domain.reservations import ENDINGS, EXPIRED, Reservation, due, held_amount, held_minutes, still_open_at
from domain.timestamps import decode_timestamp, encode_timestamp

INSUFFICIENT_FUNDS, BELOW_TRIGGER = "insufficient_funds", "below_trigger"


class CreditAccount(Aggregate):
    reservations = MappingProxyType({})  # open reservations by call_id (SPEC §13), replaced on change

    class Opened(Aggregate.Created):
        org: str
        name: str
        country: str
        currency: str
        commerce: str
        agreements: list[str]
        at: str

    def __init__(self, org: str, name: str, country: str, currency: str, commerce: str,
                 agreements: list[str], at: str) -> None:
        self.org, self.name, self.country = org, name, country
        self.currency, self.commerce, self.agreements = currency, commerce, list(agreements)
        self.opened_at = at
        self.order_id: str | None = None
        self.auto_recharge = DISABLED
        self.suspended = False
        self.payment: dict[str, Any] | None = None
        self.lots: list[Lot] = []
        self.open_lot_numbers: list[int] = []  # lots with remaining > 0, in debit order
        self.balance = ZERO
        self.pool_usage: dict[str, dict[str, int]] = {}
        self.funds_added = self.charged = self.expired = self.uncollected = self.overage = ZERO
        self.recharges_triggered = self.recharges_succeeded = self.recharges_failed = 0
        self.depletions = 0
        self.request_ids: set[str] = set()

    @staticmethod
    def create_id(org: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"commcredits:credit-account:{org}")

    @classmethod
    def open(cls, org: str, name: str, country: str, currency: str, commerce: str,
             agreements: list[str], at: datetime) -> "CreditAccount":
        return cls._create(cls.Opened, id=cls.create_id(org), org=org, name=name, country=country,
                           currency=currency, commerce=commerce, agreements=list(agreements),
                           at=encode_timestamp(at))

    # ----- queries -----------------------------------------------------------------------------

    @property
    def credits_active(self) -> bool:
        return self.order_id is not None

    @property
    def open_lots(self) -> list[Lot]:
        return [self.lots[number - 1] for number in self.open_lot_numbers]

    @property
    def next_expiry(self) -> datetime | None:
        return self.lots[self.open_lot_numbers[0] - 1].expires_at if self.open_lot_numbers else None

    def pool_used(self, month: str, pool: str) -> int:
        return self.pool_usage.get(month, {}).get(pool, 0)

    @property
    def held_amount(self) -> Decimal:
        held = self.__dict__.get("held_total")
        return held_amount(self.reservations.values()) if held is None else held

    def held_minutes(self, month: str, pool: str, *, at: datetime | None = None, settling: str | None = None) -> int:
        """Minutes open reservations hold on `pool` in `month`; with `at`, as they will be once that
        moment's expiry step has run and the reservation of `settling` is settled (SPEC §13.2)."""
        if at is None:
            by_pool = self.__dict__.get("held_pool_minutes")
            if by_pool is not None:
                return by_pool.get(_pool_month(pool, month), 0)
        open_ones = self.reservations.values() if at is None else still_open_at(self.reservations, at, settling)
        return held_minutes(open_ones, pool, month)

    def _hold(self, reservation: Reservation, sign: int) -> None:
        """Keep the totals of the open reservations as one opens (+1) or ends (-1): every decision
        reads them, and summing the calls in progress for each made a decision's cost grow with
        them. An account that has no totals yet (new, or restored from a snapshot older than
        them) counts its open reservations once."""
        total, by_pool = self.__dict__.get("held_total"), self.__dict__.get("held_pool_minutes")
        if total is None or by_pool is None:
            total, by_pool = held_amount(self.reservations.values()), {}
            for held in self.reservations.values():
                _add_minutes(by_pool, held, 1)
        self.held_total = total + sign * reservation.held_amount
        _add_minutes(by_pool, reservation, sign)
        self.held_pool_minutes = by_pool

    def payment_method(self) -> PaymentMethod | None:
        return None if self.payment is None else payment_from_data(self.payment)

    def check_invariants(self) -> None:
        """The ledger law, checked after every command: nothing is created or lost."""
        assert self.balance == self.funds_added - self.charged - self.expired, "balance drifted from its totals"
        assert self.balance >= 0, "balance went negative"
        assert self.balance == sum((lot.remaining for lot in self.open_lots), ZERO), "lots disagree with balance"

    # ----- decisions (raise, trigger nothing) ---------------------------------------------------

    def require_credits_eligible(self) -> None:
        if self.commerce == NCE:
            raise NceNotEligible(f"organization {self.org!r} is on NCE and pays overage; it cannot buy credits")

    def require_credits_active(self) -> None:
        self.require_credits_eligible()
        if not self.credits_active:
            raise CreditsNotActive(f"organization {self.org!r} has no Communications Credits order yet")

    def is_repeated_order(self, order_id: str) -> bool:
        """True for a retry of the placed order; raises for a second, different order."""
        self.require_credits_eligible()
        if self.order_id is None:
            return False
        if self.order_id == order_id:
            return True
        raise AlreadyConfigured(f"organization {self.org!r} already placed order {self.order_id!r}; add funds instead")

    def is_repeated_funds_request(self, request_id: str | None) -> bool:
        self.require_credits_active()
        return request_id is not None and request_id in self.request_ids

    def require_known_agreement(self, payment: PaymentMethod) -> None:
        if isinstance(payment, AgreementPayment) and payment.agreement not in self.agreements:
            raise UnknownAgreement(f"agreement {payment.agreement!r} is not one of organization {self.org!r}'s "
                                   f"({', '.join(self.agreements) or 'none'})")

    # ----- commands ----------------------------------------------------------------------------

    def activate(self, order_id: str, settings: AutoRechargeSettings, payment: PaymentMethod,
                 funds: Decimal, receipt: PaymentOutcome | None, at: datetime) -> None:
        """Apply an order whose checks passed and whose funds (if any) were paid by `receipt`."""
        assert self.order_id is None and (funds == 0 or (receipt and receipt.approved))
        self.trigger_event(self.CreditsActivated, order_id=order_id, auto_recharge=settings.as_data(),
                           payment=payment.as_data(), at=encode_timestamp(at))
        if funds > 0:
            self._add_lot(ORDER, funds, at, payment_reference=receipt.reference, request_id=None)

    def add_funds(self, amount: Decimal, request_id: str | None, receipt: PaymentOutcome, at: datetime) -> None:
        assert receipt.approved and self.credits_active
        self._add_lot(MANUAL, amount, at, payment_reference=receipt.reference, request_id=request_id)

    def configure_auto_recharge(self, settings: AutoRechargeSettings, at: datetime) -> None:
        self.require_credits_active()
        self.trigger_event(self.AutoRechargeConfigured, auto_recharge=settings.as_data(), at=encode_timestamp(at))

    def update_payment_method(self, payment: PaymentMethod, at: datetime) -> None:
        self.require_credits_active()
        self.require_known_agreement(payment)
        self.trigger_event(self.PaymentMethodUpdated, payment=payment.as_data(), at=encode_timestamp(at))

    @property
    def next_notice(self) -> datetime | None:
        """When the next open lot comes within EXPIRY_NOTICE of its expiry (None: no such lot)."""
        pending = [lot.notice_at for lot in self.open_lots if not lot.noticed]
        return min(pending) if pending else None

    def notice_expiring(self, now: datetime) -> None:
        """Announce each open lot that now expires within EXPIRY_NOTICE, once per lot (runs after
        the expiry step, so a lot that expires now is not announced)."""
        for lot in lots_to_notice(self.open_lots, now):
            self.trigger_event(self.ExpiryApproached, lot_number=lot.number, remaining=format_money(lot.remaining),
                               expires_at=encode_timestamp(lot.expires_at), at=encode_timestamp(now))

    def expire_due(self, now: datetime, gateway: PaymentGateway) -> None:
        """SPEC §7's expiry step: all due lots at once, then depletion and the trigger, once."""
        due = due_lots(self.open_lots, now)
        if not due:
            return
        for lot in due:
            self.trigger_event(self.FundsExpired, lot_number=lot.number, amount=format_money(lot.remaining),
                               at=encode_timestamp(now))
        self._check_depleted(had_funds=True, at=now, cause="expiry")
        self._recharge_if_below_trigger(now, gateway)

    def rate_call(self, cdr: Cdr, user_location: str | None, plan: CallPlan, at: datetime,
                  gateway: PaymentGateway) -> None:
        """Apply a planned call: recharge before the debit if needed (at most ten times), debit
        oldest lots first, record the call, then depletion and the trigger (SPEC §6-§8)."""
        if plan.payer != PAYER_CREDITS:
            self._record_call(cdr, user_location, plan, at, debits=[])
            if plan.payer == PAYER_OVERAGE:
                self.trigger_event(self.OverageAccrued, usage_id=cdr.usage_id, amount=format_money(plan.charge),
                                   month=plan.pool_month, at=encode_timestamp(at))
            return
        for _ in range(MAX_RECHARGES_PER_CALL):
            if self.balance >= plan.charge or not self._may_recharge():
                break
            self._recharge(INSUFFICIENT_FUNDS, at, gateway)
        had_funds = self.balance > 0
        self._record_call(cdr, user_location, plan, at, debits=plan_debit(self.open_lots, plan.charge))
        self._check_depleted(had_funds, at, cause=cdr.usage_id)
        self._recharge_if_below_trigger(at, gateway)

    def record_authorization(self, request: CallRequest, decision: dict[str, Any], pool_month: str) -> None:
        """A decision of SPEC §13.1 (allowed or denied; `decision_fields`); an allowed one opens a reservation."""
        self.trigger_event(self.CallAuthorized, user=request.user, kind=request.kind,
                           requested_seconds=request.requested_seconds, pool_month=pool_month, **decision)

    def end_reservation(self, call_id: str, status: str, at: datetime, usage_id: str | None = None) -> None:
        assert call_id in self.reservations and status in ENDINGS, (call_id, status)
        self.trigger_event(self.ReservationEnded, call_id=call_id, status=status, usage_id=usage_id,
                           at=encode_timestamp(at))

    def expire_reservations(self, now: datetime) -> list[str]:
        """SPEC §13.2: in the expiry step, after the lots, every open reservation that is due expires."""
        ended = [reservation.call_id for reservation in due(self.reservations, now)]
        for call_id in ended:
            self.end_reservation(call_id, EXPIRED, now)
        return ended

    # ----- steps shared by the commands --------------------------------------------------------

    def _add_lot(self, source: str, amount: Decimal, at: datetime, *, payment_reference: str | None,
                 request_id: str | None) -> None:
        self.trigger_event(self.FundsAdded, lot_number=len(self.lots) + 1, source=source,
                           amount=format_money(amount), added_at=encode_timestamp(at),
                           expires_at=encode_timestamp(expiry_of(at)), request_id=request_id,
                           payment_reference=payment_reference)

    def _record_call(self, cdr: Cdr, user_location: str | None, plan: CallPlan, at: datetime,
                     debits: list[tuple[int, Decimal]]) -> None:
        debited = sum((amount for _, amount in debits), ZERO)
        overage = plan.charge if plan.payer == PAYER_OVERAGE else ZERO
        uncollected = plan.charge - debited if plan.payer in (PAYER_CREDITS, PAYER_UNCOLLECTED) else ZERO
        reason = plan.uncollected_reason if plan.payer == PAYER_UNCOLLECTED else (
            INSUFFICIENT_FUNDS if uncollected > 0 else None)
        self.trigger_event(
            self.CallRated,
            usage_id=cdr.usage_id, user=cdr.user, user_location=user_location, call_type=cdr.call_type,
            number_type=cdr.number_type, kind=plan.kind, caller_number=cdr.caller_number,
            destination_number=cdr.destination_number, start_time=encode_timestamp(cdr.start_time),
            end_time=encode_timestamp(cdr.end_time), duration_seconds=cdr.duration_seconds,
            call_id=cdr.call_id, conference_id=cdr.conference_id, billed_minutes=plan.billed_minutes,
            pool=plan.pool, pool_month=plan.pool_month, covered_minutes=plan.covered_minutes,
            chargeable_minutes=plan.chargeable_minutes,
            rate=None if plan.rate is None else plan.rate.as_event_data(),
            charge=format_money(plan.charge),
            debits=[{"lot": number, "amount": format_money(amount)} for number, amount in debits],
            debited=format_money(debited), uncollected=format_money(uncollected), overage=format_money(overage),
            reason=reason, at=encode_timestamp(at),
        )

    def _may_recharge(self) -> bool:
        return self.auto_recharge.enabled and not self.suspended

    def _recharge_if_below_trigger(self, at: datetime, gateway: PaymentGateway) -> None:
        if self._may_recharge() and self.balance < self.auto_recharge.trigger_amount:
            self._recharge(BELOW_TRIGGER, at, gateway)

    def _recharge(self, reason: str, at: datetime, gateway: PaymentGateway) -> None:
        amount = self.auto_recharge.recharge_amount
        attempt = self.recharges_triggered + 1
        self.trigger_event(self.RechargeTriggered, attempt=attempt, reason=reason, amount=format_money(amount),
                           balance=format_money(self.balance), at=encode_timestamp(at))
        outcome = gateway.charge(self.payment_method(), amount, self.currency, at,
                                 reference=f"{self.org}/recharge/{attempt}")
        if not outcome.approved:
            self.trigger_event(self.RechargeFailed, attempt=attempt, amount=format_money(amount),
                               decline_reason=outcome.decline_reason, payment=self.payment,
                               at=encode_timestamp(at))
            return
        self.trigger_event(self.RechargeSucceeded, attempt=attempt, amount=format_money(amount),
                           payment_reference=outcome.reference, at=encode_timestamp(at))
        self._add_lot(AUTO_RECHARGE, amount, at, payment_reference=outcome.reference, request_id=None)

    def _check_depleted(self, had_funds: bool, at: datetime, cause: str) -> None:
        if had_funds and self.balance == 0:
            self.trigger_event(self.BalanceDepleted, cause=cause, at=encode_timestamp(at))

    # ----- events: past-tense facts; `apply` only assigns -------------------------------------

    class CreditsActivated(Aggregate.Event):
        order_id: str
        auto_recharge: dict[str, Any]
        payment: dict[str, Any]
        at: str

        def apply(self, account: "CreditAccount") -> None:
            account.order_id = self.order_id
            account.auto_recharge = AutoRechargeSettings.from_data(self.auto_recharge)
            account.payment = self.payment

    class FundsAdded(Aggregate.Event):
        lot_number: int
        source: str
        amount: str
        added_at: str
        expires_at: str
        request_id: str | None
        payment_reference: str | None

        def apply(self, account: "CreditAccount") -> None:
            amount = to_money(self.amount)
            lot = Lot(self.lot_number, self.source, amount, decode_timestamp(self.added_at),
                      decode_timestamp(self.expires_at), amount, ZERO)
            account.lots.append(lot)
            bisect.insort(account.open_lot_numbers, lot.number,
                          key=lambda number: account.lots[number - 1].debit_key)
            account.balance += amount
            account.funds_added += amount
            if self.request_id is not None:
                account.request_ids.add(self.request_id)
            if self.source == MANUAL:
                account.suspended = False  # funds added by hand lift a suspension (SPEC §8)

    class AutoRechargeConfigured(Aggregate.Event):
        auto_recharge: dict[str, Any]
        at: str

        def apply(self, account: "CreditAccount") -> None:
            account.auto_recharge = AutoRechargeSettings.from_data(self.auto_recharge)
            account.suspended = False

    class PaymentMethodUpdated(Aggregate.Event):
        payment: dict[str, Any]
        at: str

        def apply(self, account: "CreditAccount") -> None:
            account.payment = self.payment
            account.suspended = False

    class CallRated(Aggregate.Event):
        usage_id: str
        user: str | None
        user_location: str | None
        call_type: str
        number_type: str | None
        kind: str
        caller_number: str
        destination_number: str
        start_time: str
        end_time: str
        duration_seconds: int
        call_id: str | None
        conference_id: str | None
        billed_minutes: int
        pool: str | None
        pool_month: str
        covered_minutes: int
        chargeable_minutes: int
        rate: dict[str, str] | None
        charge: str
        debits: list[dict[str, Any]]
        debited: str
        uncollected: str
        overage: str
        reason: str | None
        at: str

        def apply(self, account: "CreditAccount") -> None:
            if self.covered_minutes:
                month = account.pool_usage.setdefault(self.pool_month, {})
                month[self.pool] = month.get(self.pool, 0) + self.covered_minutes
            for debit in self.debits:
                account._take_from_lot(debit["lot"], to_money(debit["amount"]), expiring=False)
            account.uncollected += to_money(self.uncollected)
            account.overage += to_money(self.overage)

    class OverageAccrued(Aggregate.Event):
        usage_id: str
        amount: str
        month: str
        at: str

        def apply(self, account: "CreditAccount") -> None:
            pass  # the amount is already in the CallRated event; this one is for invoicing

    class FundsExpired(Aggregate.Event):
        lot_number: int
        amount: str
        at: str

        def apply(self, account: "CreditAccount") -> None:
            account._take_from_lot(self.lot_number, to_money(self.amount), expiring=True)

    class ExpiryApproached(Aggregate.Event):
        """A lot with funds left expires within 30 days: its organization can still use them."""
        lot_number: int
        remaining: str
        expires_at: str
        at: str

        def apply(self, account: "CreditAccount") -> None:
            account.lots[self.lot_number - 1].noticed = True

    class RechargeTriggered(Aggregate.Event):
        attempt: int
        reason: str
        amount: str
        balance: str
        at: str

        def apply(self, account: "CreditAccount") -> None:
            account.recharges_triggered += 1

    class RechargeSucceeded(Aggregate.Event):
        attempt: int
        amount: str
        payment_reference: str
        at: str

        def apply(self, account: "CreditAccount") -> None:
            account.recharges_succeeded += 1

    class RechargeFailed(Aggregate.Event):
        attempt: int
        amount: str
        decline_reason: str | None
        payment: dict[str, Any] | None
        at: str

        def apply(self, account: "CreditAccount") -> None:
            account.recharges_failed += 1
            account.suspended = True

    class BalanceDepleted(Aggregate.Event):
        cause: str  # "expiry" or the usage_id of the call that took the last funds
        at: str

        def apply(self, account: "CreditAccount") -> None:
            account.depletions += 1

    class CallAuthorized(Aggregate.Event):
        call_id: str
        user: str | None
        kind: str
        requested_seconds: int
        decision: str
        code: str | None
        max_seconds: int
        pool: str | None
        pool_month: str
        held_minutes: int
        held_amount: str
        expires_at: str | None
        at: str

        def apply(self, account: "CreditAccount") -> None:
            if self.decision == ALLOWED:
                reservation = Reservation(self.call_id, self.pool, self.pool_month, self.held_minutes,
                                          to_money(self.held_amount), decode_timestamp(self.expires_at))
                account._hold(reservation, 1)
                account.reservations = {**account.reservations, self.call_id: reservation}

    class ReservationEnded(Aggregate.Event):
        call_id: str
        status: str  # settled, released or expired
        usage_id: str | None  # the CDR that settled it
        at: str

        def apply(self, account: "CreditAccount") -> None:
            account._hold(account.reservations[self.call_id], -1)
            account.reservations = {call_id: reservation for call_id, reservation in account.reservations.items()
                                    if call_id != self.call_id}

    def _take_from_lot(self, lot_number: int, amount: Decimal, *, expiring: bool) -> None:
        lot = self.lots[lot_number - 1]
        lot.remaining -= amount
        self.balance -= amount
        if expiring:
            lot.expired += amount
            self.expired += amount
        else:
            self.charged += amount
        if lot.remaining == 0:
            self.open_lot_numbers.remove(lot_number)


def _pool_month(pool: str, month: str) -> str:
    return f"{month} {pool}"


def _add_minutes(by_pool: dict[str, int], reservation: Reservation, sign: int) -> None:
    """Held minutes by pool and month; a pool and month nothing holds any more is dropped."""
    if reservation.pool is None or not reservation.held_minutes:
        return
    key = _pool_month(reservation.pool, reservation.pool_month)
    minutes = by_pool.get(key, 0) + sign * reservation.held_minutes
    if minutes:
        by_pool[key] = minutes
    else:
        by_pool.pop(key, None)
