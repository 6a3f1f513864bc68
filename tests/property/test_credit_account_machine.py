"""A `CreditAccount` driven step by step against a small, obviously correct model (SPEC §7, §8).

The model keeps a plain list of lots and applies the rules in the most direct way: sort the open
lots by (expires_at, added_at, number) and take from the front. After every step the aggregate
must agree with it; at the end the aggregate rebuilt from its events (directly, through the
application's mapper and transcoder, and from a snapshot) must equal the live one.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from application.billing_application import BillingApplication
from application.settings import memory_store
from domain.auto_recharge import AutoRechargeSettings
from domain.calls import Cdr
from domain.credit_account import CreditAccount
from domain.lots import expiry_of
from domain.payments import AgreementPayment, CardPayment, PaymentOutcome, SimulatedGateway
from domain.rating import PAYER_CREDITS, PAYER_OVERAGE, PAYER_UNCOLLECTED, CallPlan
from domain.timestamps import month_key
from tests.property.strategies import aggregate_state

START = datetime(2026, 1, 31, 8, 0, tzinfo=timezone.utc)
MAX_RECHARGES_PER_CALL = 10
ZERO = Decimal("0.0000")

amounts = st.sampled_from(["0.0001", "0.5", "1", "2.5", "7.1234", "20"]).map(Decimal)
charges = st.one_of(st.sampled_from(["0", "0.0190", "0.5", "3", "25"]),
                    st.decimals("0", "40", places=4).map(str)).map(Decimal)
settings_values = st.one_of(
    st.just(AutoRechargeSettings(False, None, None)),
    st.builds(AutoRechargeSettings, st.just(True), st.sampled_from(["0.5", "1", "5"]).map(Decimal),
              st.sampled_from(["0", "0.5", "2", "10"]).map(Decimal)),
)
payments = st.sampled_from([
    CardPayment("visa-1", "2031-06"), CardPayment("visa-soon", "2026-04"), CardPayment("visa-old", "2025-12"),
    CardPayment("decline-9", "2031-06"), AgreementPayment("EA-1", None), AgreementPayment("EA-1", "PO-7"),
])
time_steps = st.sampled_from([timedelta(0), timedelta(hours=1), timedelta(days=1), timedelta(days=29),
                              timedelta(days=200), timedelta(days=366)])


def quantized(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal("0.0001"))


@dataclass
class ModelLot:
    number: int
    source: str
    amount: Decimal
    added_at: datetime
    expires_at: datetime
    remaining: Decimal
    expired: Decimal = ZERO

    @property
    def key(self):
        return (self.expires_at, self.added_at, self.number)


def approves(payment, at: datetime) -> bool:
    """SPEC §9's simulated gateway, restated."""
    if isinstance(payment, AgreementPayment):
        return True
    year, month = map(int, payment.expires.split("-"))
    valid_until = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=timezone.utc)
    return not payment.card.startswith("decline") and at < valid_until


class CreditAccountMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.gateway = SimulatedGateway()
        self.now = START
        self.events: list[Any] = []
        # the model
        self.lots: list[ModelLot] = []
        self.active = False
        self.settings = AutoRechargeSettings(False, None, None)
        self.payment = None
        self.suspended = False
        self.totals = dict.fromkeys(("funds_added", "charged", "expired", "uncollected", "overage"), ZERO)
        self.recharges = {"triggered": 0, "succeeded": 0, "failed": 0}
        self.depletions = 0
        self.pools: dict[str, dict[str, int]] = {}
        self.calls = 0
        self.request_ids: set[str] = set()

    @initialize()
    def open_account(self) -> None:
        self.account = CreditAccount.open("acme", "Acme", "US", "USD", "legacy", ["EA-1"], START)

    # ----- model helpers -----------------------------------------------------------------------

    @property
    def balance(self) -> Decimal:
        return sum((lot.remaining for lot in self.lots), ZERO)

    def open_lots(self) -> list[ModelLot]:
        return sorted((lot for lot in self.lots if lot.remaining > 0), key=lambda lot: lot.key)

    def add_lot(self, source: str, amount: Decimal) -> None:
        amount = quantized(amount)
        self.lots.append(ModelLot(len(self.lots) + 1, source, amount, self.now, expiry_of(self.now), amount))
        self.totals["funds_added"] += amount

    def may_recharge(self) -> bool:
        return self.settings.enabled and not self.suspended

    def recharge(self) -> None:
        self.recharges["triggered"] += 1
        if approves(self.payment, self.now):
            self.recharges["succeeded"] += 1
            self.add_lot("auto_recharge", self.settings.recharge_amount)
        else:
            self.recharges["failed"] += 1
            self.suspended = True

    def recharge_if_below_trigger(self) -> None:
        if self.may_recharge() and self.balance < self.settings.trigger_amount:
            self.recharge()

    def debit(self, charge: Decimal) -> None:
        for _ in range(MAX_RECHARGES_PER_CALL):
            if self.balance >= charge or not self.may_recharge():
                break
            self.recharge()
        had_funds = self.balance > 0
        left = charge
        for lot in self.open_lots():
            taken = min(lot.remaining, left)
            lot.remaining -= taken
            left -= taken
        self.totals["charged"] += charge - left
        self.totals["uncollected"] += left
        if had_funds and self.balance == 0:
            self.depletions += 1
        self.recharge_if_below_trigger()

    def collect(self) -> None:
        self.events += self.account.collect_events()

    # ----- rules -------------------------------------------------------------------------------

    @rule(step=time_steps)
    def time_passes(self, step: timedelta) -> None:
        self.now += step

    @rule()
    def expiry_step(self) -> None:
        due = [lot for lot in self.open_lots() if lot.expires_at <= self.now]
        for lot in due:
            lot.expired += lot.remaining
            self.totals["expired"] += lot.remaining
            lot.remaining = ZERO
        if due:
            if self.balance == 0:
                self.depletions += 1
            self.recharge_if_below_trigger()
        self.account.expire_due(self.now, self.gateway)
        self.collect()

    @precondition(lambda self: not self.active)
    @rule(funds=st.one_of(st.just(Decimal("0")), amounts), auto=settings_values, payment=payments)
    def place_order(self, funds: Decimal, auto: AutoRechargeSettings, payment) -> None:
        if funds > 0 and not approves(payment, self.now):
            return  # declined: the service rejects the order, the account never sees it
        receipt = PaymentOutcome(True, "acme/order/o-1") if funds > 0 else None
        self.account.activate("o-1", auto, payment, funds, receipt, self.now)
        self.active, self.settings, self.payment = True, auto, payment
        if funds > 0:
            self.add_lot("order", funds)
        self.collect()

    @precondition(lambda self: self.active)
    @rule(amount=amounts, request_id=st.sampled_from([None, "r-1", "r-2"]))
    def add_funds(self, amount: Decimal, request_id: str | None) -> None:
        if not approves(self.payment, self.now):
            return
        self.account.add_funds(amount, request_id, PaymentOutcome(True, "acme/funds"), self.now)
        self.add_lot("manual", amount)
        self.suspended = False
        if request_id is not None:
            self.request_ids.add(request_id)
        self.collect()

    @precondition(lambda self: self.active)
    @rule(auto=settings_values)
    def configure_auto_recharge(self, auto: AutoRechargeSettings) -> None:
        self.account.configure_auto_recharge(auto, self.now)
        self.settings, self.suspended = auto, False
        self.collect()

    @precondition(lambda self: self.active)
    @rule(payment=payments)
    def update_payment_method(self, payment) -> None:
        self.account.update_payment_method(payment, self.now)
        self.payment, self.suspended = payment, False
        self.collect()

    @rule(charge=charges, payer=st.sampled_from([PAYER_CREDITS, PAYER_CREDITS, PAYER_OVERAGE, PAYER_UNCOLLECTED]),
          covered=st.integers(0, 3))
    def rate_call(self, charge: Decimal, payer: str, covered: int) -> None:
        if payer == PAYER_CREDITS and not self.active:
            payer = PAYER_UNCOLLECTED  # the planner never asks inactive credits to pay
        if charge == 0:
            payer = "none"
        self.calls += 1
        month = month_key(self.now)
        plan = CallPlan("outbound", covered + 5, "DOMESTIC/US" if covered else None, month, covered, 5, None,
                        charge, payer, "credits_not_active" if payer == PAYER_UNCOLLECTED else None)
        cdr = Cdr(f"u{self.calls}", "acme", "ann@acme.example", "user_out", None, "+14255550100",
                  "+442071234567", self.now - timedelta(minutes=5), self.now, 300)
        self.account.rate_call(cdr, "US", plan, self.now, self.gateway)
        if covered:
            usage = self.pools.setdefault(month, {})
            usage["DOMESTIC/US"] = usage.get("DOMESTIC/US", 0) + covered
        if payer == PAYER_CREDITS:
            self.debit(charge)
        elif payer == PAYER_OVERAGE:
            self.totals["overage"] += charge
        elif payer == PAYER_UNCOLLECTED:
            self.totals["uncollected"] += charge
        self.collect()

    # ----- invariants --------------------------------------------------------------------------

    @invariant()
    def agrees_with_the_model(self) -> None:
        account = self.account
        assert account.balance == self.balance
        assert [(lot.number, lot.source, lot.amount, lot.added_at, lot.expires_at, lot.remaining, lot.expired)
                for lot in account.lots] == [
            (lot.number, lot.source, lot.amount, lot.added_at, lot.expires_at, lot.remaining, lot.expired)
            for lot in self.lots]
        assert account.open_lot_numbers == [lot.number for lot in self.open_lots()]
        assert account.next_expiry == (self.open_lots()[0].expires_at if self.open_lots() else None)
        assert {name: getattr(account, name) for name in self.totals} == self.totals
        assert (account.recharges_triggered, account.recharges_succeeded, account.recharges_failed) == (
            self.recharges["triggered"], self.recharges["succeeded"], self.recharges["failed"])
        assert account.depletions == self.depletions
        assert account.suspended == self.suspended
        assert account.credits_active == self.active
        assert account.auto_recharge == self.settings
        assert account.pool_usage == self.pools
        assert account.request_ids == self.request_ids
        assert account.payment == (None if self.payment is None else self.payment.as_data())

    @invariant()
    def keeps_the_balance_law(self) -> None:
        self.account.check_invariants()
        totals = self.totals
        assert self.balance == totals["funds_added"] - totals["charged"] - totals["expired"] >= 0

    def teardown(self) -> None:
        if not hasattr(self, "account"):
            return
        self.collect()
        live = aggregate_state(self.account)
        replayed = None
        for event in self.events:
            replayed = event.mutate(replayed)
        assert aggregate_state(replayed) == live, "replaying the events"
        app = BillingApplication(env=memory_store().env)
        mapper = app.mapper
        replayed = None
        for event in self.events:
            replayed = mapper.to_domain_event(mapper.to_stored_event(event)).mutate(replayed)
        assert aggregate_state(replayed) == live, "replaying the events through the transcoder"
        snapshot = mapper.to_domain_event(mapper.to_stored_event(CreditAccount.Snapshot.take(self.account)))
        assert aggregate_state(snapshot.mutate(None)) == live, "restoring a snapshot"


CreditAccountMachine.TestCase.settings = settings(max_examples=120, stateful_step_count=40, deadline=None)
test_credit_account_machine = CreditAccountMachine.TestCase
