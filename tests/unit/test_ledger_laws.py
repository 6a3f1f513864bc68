"""STYLE.md's ledger laws, checked with Hypothesis on random histories of one credit account:
the balance never goes negative; balance = funds added - charged - expired; every call's
charge = debited + uncollected + overage; replaying the events gives the incrementally built state."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.auto_recharge import parse_auto_recharge
from domain.calls import Cdr
from domain.catalog import Catalog
from domain.credit_account import CreditAccount
from domain.licences import COMMUNICATIONS_CREDITS, E5
from domain.money import format_money, to_money
from domain.payments import AgreementPayment, CardPayment, SimulatedGateway
from domain.rates import RateCard, RateRow
from domain.rating import Billing, Caller, plan_call

UTC = timezone.utc
START = datetime(2026, 1, 1, tzinfo=UTC)
GATEWAY = SimulatedGateway()
CALLER = Caller("US", frozenset({E5, COMMUNICATIONS_CREDITS}))
RATES = RateCard([
    RateRow("1", "outbound", Decimal("0.0190"), Decimal("0.0500"), "USD", datetime(2020, 1, 1, tzinfo=UTC)),
])
GOOD = AgreementPayment("EA-1", None)
DECLINING = CardPayment("decline-1", "2199-12")

amounts = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("60"), places=4)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("funds"), amounts),
        st.tuples(st.just("call"), st.integers(min_value=0, max_value=86400)),
        st.tuples(st.just("wait"), st.integers(min_value=1, max_value=200)),  # days
        st.tuples(st.just("settings"), st.tuples(st.booleans(), amounts, amounts)),
        st.tuples(st.just("payment"), st.booleans()),
    ),
    max_size=25,
)


def apply(account: CreditAccount, operation, now: datetime, number: int) -> datetime:
    kind, value = operation
    if kind == "wait":
        now += timedelta(days=value)
        account.expire_due(now, GATEWAY)
    elif kind == "funds":
        receipt = GATEWAY.charge(GOOD, value, "USD", now, f"f{number}")
        account.add_funds(value, f"r{number}", receipt, now)
    elif kind == "settings":
        enabled, recharge, trigger = value
        settings_ = parse_auto_recharge(enabled, format_money(recharge), format_money(trigger))
        account.configure_auto_recharge(settings_, now)
    elif kind == "payment":
        account.update_payment_method(GOOD if value else DECLINING, now)
    else:
        cdr = Cdr(f"u{number}", "contoso", "a@contoso.com", "user_out", None, "+14255550100", "+12065550123",
                  now, now, value)
        plan = plan_call(cdr, CALLER, Billing("USD", "legacy", True), lambda month, pool: 0, RATES, Catalog())
        account.rate_call(cdr, "US", plan, now, GATEWAY)
    return now


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(funds=st.one_of(st.just(Decimal("0")), amounts), recharge=amounts, trigger=amounts, history=operations)
def test_ledger_laws_hold_on_any_history(funds, recharge, trigger, history):
    account = CreditAccount.open("contoso", "Contoso", "US", "USD", "legacy", ["EA-1"], START)
    receipt = GATEWAY.charge(GOOD, funds, "USD", START, "o") if funds > 0 else None
    account.activate("o-1", parse_auto_recharge(True, format_money(recharge), format_money(trigger)), GOOD, funds,
                     receipt, START)
    now = START
    for number, operation in enumerate(history):
        now = apply(account, operation, now, number)
        account.check_invariants()
        assert account.balance >= 0
        assert account.balance == account.funds_added - account.charged - account.expired

    events = account.collect_events()
    for event in events:
        if type(event).__name__ == "CallRated":
            charge = to_money(event.charge)
            assert charge == to_money(event.debited) + to_money(event.uncollected) + to_money(event.overage)
            assert to_money(event.debited) == sum((to_money(d["amount"]) for d in event.debits), Decimal(0))
        if type(event).__name__ == "FundsAdded":
            assert to_money(event.amount) > 0

    rebuilt = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    for attribute in ("balance", "funds_added", "charged", "expired", "uncollected", "overage", "suspended",
                      "recharges_triggered", "recharges_succeeded", "recharges_failed", "depletions",
                      "open_lot_numbers", "request_ids"):
        assert getattr(rebuilt, attribute) == getattr(account, attribute), attribute
    assert [(lot.remaining, lot.expired) for lot in rebuilt.lots] == \
        [(lot.remaining, lot.expired) for lot in account.lots]
    # depletions are counted only when the balance reached exactly 0 from above
    depleted = [event for event in events if type(event).__name__ == "BalanceDepleted"]
    assert len(depleted) == account.depletions
