"""SPEC §6-§9 on the credit account aggregate: given events -> when command -> then events or error.

Each test builds the "given" by calling command methods (the way the application does, paying
through the SimulatedGateway first), clears the pending events, runs one "when" and checks the new
events. Every expected amount is worked out by hand from the SPEC in the comments.
"""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from domain.auto_recharge import DISABLED, AutoRechargeSettings, parse_auto_recharge
from domain.calls import Cdr
from domain.catalog import Catalog
from domain.credit_account import CreditAccount
from domain.errors import AlreadyConfigured, CreditsNotActive, NceNotEligible, UnknownAgreement
from domain.licences import COMMUNICATIONS_CREDITS, E5
from domain.money import format_money, parse_money
from domain.payments import AgreementPayment, CardPayment, SimulatedGateway
from domain.rates import RateCard, RateRow
from domain.rating import Billing, Caller, plan_call

UTC = timezone.utc


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


T_OPEN = utc(2026, 1, 1)
T_ORDER = utc(2026, 1, 2, 9)
CARD = CardPayment("visa-1", "2199-12")
EA = AgreementPayment("EA-100", "PO-7")
ALICE = "alice@contoso.com"
CREDITS_USER = Caller("US", frozenset({E5, COMMUNICATIONS_CREDITS}))  # no calling plan: no pool is tried

# +1: 1.0000 a minute, so a call's charge is its billed minutes; +91: 0.0900 a minute; +44: 0.0230 + 0.0100 fee
RATES = RateCard([
    RateRow("1", "outbound", Decimal("1.0000"), Decimal("0"), "USD", utc(2020, 1, 1)),
    RateRow("91", "outbound", Decimal("0.0900"), Decimal("0"), "USD", utc(2020, 1, 1)),
    RateRow("44", "outbound", Decimal("0.0230"), Decimal("0.0100"), "USD", utc(2020, 1, 1)),
])
US, INDIA, UK = "+12065550123", "+919812345678", "+442071234567"


class RecordingGateway(SimulatedGateway):
    """The simulated gateway, remembering every charge it was asked for."""

    def __init__(self) -> None:
        self.charges: list[tuple[str, str, datetime]] = []

    def charge(self, method, amount, currency, at, reference):
        self.charges.append((format_money(amount), currency, at))
        return super().charge(method, amount, currency, at, reference)


# ----- given helpers (what the application does around the aggregate) ---------------------------


def opened(commerce: str = "legacy", agreements=("EA-100",), currency: str = "USD") -> CreditAccount:
    return CreditAccount.open("contoso", "Contoso", "US", currency, commerce, list(agreements), T_OPEN)


def settings(recharge: str | None = "25", trigger: str | None = "5", enabled: bool = True) -> AutoRechargeSettings:
    return parse_auto_recharge(enabled, recharge, trigger)


def place_order(account, gateway, order_id="o-1", funds="20", auto=None, payment=CARD, at=T_ORDER) -> bool:
    """SPEC §9 order: True if it was a repeat. Pays the funds (if > 0) before activating."""
    if account.is_repeated_order(order_id):
        return True
    account.require_known_agreement(payment)
    amount = parse_money(funds, field="funds", allow_zero=True)
    receipt = None
    if amount > 0:
        receipt = gateway.charge(payment, amount, account.currency, at, f"contoso/order/{order_id}")
        assert receipt.approved
    account.activate(order_id, auto or settings(), payment, amount, receipt, at)
    return False


def add_funds(account, gateway, amount: str, at: datetime, request_id: str | None = None) -> bool:
    if account.is_repeated_funds_request(request_id):
        return True
    amount = parse_money(amount)
    receipt = gateway.charge(account.payment_method(), amount, account.currency, at, "contoso/funds/x")
    assert receipt.approved
    account.add_funds(amount, request_id, receipt, at)
    return False


def call(account, gateway, usage_id: str, seconds: int, end: datetime, destination: str = US,
         caller: Caller = CREDITS_USER) -> None:
    """Rate a user_out call that ended at `end` (the application's time for it)."""
    cdr = Cdr(usage_id, "contoso", ALICE, "user_out", None, "+14255550100", destination,
              end - timedelta(seconds=seconds), end, seconds)
    billing = Billing(account.currency, account.commerce, account.credits_active)
    plan = plan_call(cdr, caller, billing, lambda month, pool: 0, RATES, Catalog())
    account.rate_call(cdr, caller.usage_location, plan, end, gateway)


def active_account(funds="20", auto=None, payment=CARD, gateway=None) -> tuple[CreditAccount, RecordingGateway]:
    """Given: a legacy organization whose order (funds, auto-recharge, payment) was placed at T_ORDER."""
    gateway = gateway or RecordingGateway()
    account = opened()
    place_order(account, gateway, funds=funds, auto=auto or settings(), payment=payment)
    account.collect_events()
    gateway.charges.clear()
    return account, gateway


def names(events) -> list[str]:
    return [type(event).__name__ for event in events]


def then(account) -> list:
    """The new events; and the ledger law must hold after every command."""
    events = account.collect_events()
    account.check_invariants()
    return events


def replay(events) -> CreditAccount:
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


# ----- eligibility and orders (SPEC §7, §9) -----------------------------------------------------


def test_nce_organization_cannot_activate_credits():
    account = opened(commerce="nce")
    with pytest.raises(NceNotEligible) as caught:
        place_order(account, RecordingGateway())
    assert caught.value.code == "nce_not_eligible"
    assert names(account.collect_events()) == ["Opened"]
    assert not account.credits_active


@pytest.mark.parametrize(
    "command",
    [
        lambda account: account.configure_auto_recharge(settings(), T_ORDER),
        lambda account: account.update_payment_method(CARD, T_ORDER),
        lambda account: account.is_repeated_funds_request("r-1"),
        lambda account: account.require_credits_active(),
    ],
)
def test_credits_commands_on_nce_are_not_eligible(command):
    account = opened(commerce="nce")
    account.collect_events()
    with pytest.raises(NceNotEligible):
        command(account)
    assert account.collect_events() == []


@pytest.mark.parametrize(
    "command",
    [
        lambda account: account.configure_auto_recharge(settings(), T_ORDER),
        lambda account: account.update_payment_method(CARD, T_ORDER),
        lambda account: account.is_repeated_funds_request(None),
        lambda account: account.require_credits_active(),
    ],
)
def test_credits_commands_before_an_order_are_not_active(command):
    account = opened()
    account.collect_events()
    with pytest.raises(CreditsNotActive) as caught:
        command(account)
    assert caught.value.code == "credits_not_active"
    assert account.collect_events() == []


def test_order_activates_credits_and_adds_the_first_lot():
    gateway = RecordingGateway()
    account = opened()
    account.collect_events()
    place_order(account, gateway, funds="20", auto=settings("25", "5"))
    activated, funds = then(account)
    assert names([activated, funds]) == ["CreditsActivated", "FundsAdded"]
    assert activated.order_id == "o-1"
    assert activated.auto_recharge == {"enabled": True, "recharge_amount": "25.0000", "trigger_amount": "5.0000"}
    assert activated.payment == {"method": "card", "card": "visa-1", "expires": "2199-12"}
    assert (funds.lot_number, funds.source, funds.amount) == (1, "order", "20.0000")
    # added 2026-01-02T09:00Z, expires 12 calendar months later, same time of day
    assert (funds.added_at, funds.expires_at) == ("2026-01-02T09:00:00Z", "2027-01-02T09:00:00Z")
    assert gateway.charges == [("20.0000", "USD", T_ORDER)]
    assert account.credits_active
    assert account.balance == Decimal("20")


def test_order_with_zero_funds_charges_nothing_and_adds_no_lot():
    gateway = RecordingGateway()
    account = opened()
    account.collect_events()
    # the trigger is 5 and the balance 0, but an order never checks the trigger (SPEC §8)
    place_order(account, gateway, funds="0", auto=settings("25", "5"), payment=CardPayment("decline-9", "2199-12"))
    assert names(then(account)) == ["CreditsActivated"]
    assert gateway.charges == []
    assert account.credits_active
    assert account.balance == Decimal("0")


def test_second_order_with_a_different_id_is_already_configured():
    account, gateway = active_account()
    with pytest.raises(AlreadyConfigured) as caught:
        place_order(account, gateway, order_id="o-2")
    assert caught.value.code == "already_configured"
    assert then(account) == []
    assert gateway.charges == []


def test_repeated_order_with_the_same_id_is_a_no_op():
    account, gateway = active_account()
    # a repeat is recognised by its id alone: amount, settings and payment are not compared
    assert place_order(account, gateway, order_id="o-1", funds="999", payment=AgreementPayment("nope", None)) is True
    assert then(account) == []
    assert gateway.charges == []  # nothing charged twice
    assert account.balance == Decimal("20")


def test_repeated_order_on_nce_is_still_not_eligible():
    with pytest.raises(NceNotEligible):
        opened(commerce="nce").is_repeated_order("o-1")


def test_unknown_agreement():
    account = opened(agreements=["EA-100"])
    with pytest.raises(UnknownAgreement) as caught:
        account.require_known_agreement(AgreementPayment("EA-999", None))
    assert caught.value.code == "unknown_agreement"
    account.require_known_agreement(AgreementPayment("EA-100", None))
    account.require_known_agreement(CARD)  # cards need no agreement
    with pytest.raises(UnknownAgreement):
        opened(agreements=[]).require_known_agreement(AgreementPayment("EA-100", None))


def test_update_payment_method_to_unknown_agreement_rejected():
    account, _ = active_account()
    with pytest.raises(UnknownAgreement):
        account.update_payment_method(AgreementPayment("EA-999", "PO"), T_ORDER)
    assert then(account) == []
    account.update_payment_method(EA, T_ORDER)
    (event,) = then(account)
    assert names([event]) == ["PaymentMethodUpdated"]
    assert event.payment == {"method": "enterprise_agreement", "agreement": "EA-100", "po": "PO-7"}


# ----- manual funds ------------------------------------------------------------------------------


def test_add_funds_creates_a_manual_lot():
    account, gateway = active_account(funds="20")
    at = utc(2026, 1, 31, 10)
    add_funds(account, gateway, "10.5", at, request_id="r-1")
    (event,) = then(account)
    assert names([event]) == ["FundsAdded"]
    assert (event.lot_number, event.source, event.amount, event.request_id) == (2, "manual", "10.5000", "r-1")
    assert (event.added_at, event.expires_at) == ("2026-01-31T10:00:00Z", "2027-01-31T10:00:00Z")
    # 20 + 10.5 = 30.5
    assert account.balance == Decimal("30.5")
    assert gateway.charges == [("10.5000", "USD", at)]


def test_repeated_funds_request_is_a_no_op_and_unknown_ids_are_not_repeats():
    account, gateway = active_account(funds="20")
    add_funds(account, gateway, "10", utc(2026, 2, 1), request_id="r-1")
    then(account)
    gateway.charges.clear()
    assert add_funds(account, gateway, "50", utc(2026, 2, 2), request_id="r-1") is True
    assert then(account) == []
    assert gateway.charges == []
    assert account.is_repeated_funds_request("r-2") is False
    assert account.is_repeated_funds_request(None) is False  # no id: never a repeat


def test_funds_added_on_leap_day_expire_on_28_february():
    account, gateway = active_account(funds="0")
    add_funds(account, gateway, "10", utc(2028, 2, 29, 14, 30))
    (event,) = then(account)
    assert event.expires_at == "2029-02-28T14:30:00Z"


def test_add_funds_does_not_check_the_trigger():
    account, gateway = active_account(funds="0", auto=settings("25", "100"))
    add_funds(account, gateway, "10", utc(2026, 2, 1))  # balance 10 < trigger 100, but no recharge
    assert names(then(account)) == ["FundsAdded"]


def test_configure_auto_recharge_does_not_check_the_trigger():
    account, _ = active_account(funds="20", auto=settings(enabled=False, recharge=None, trigger=None))
    account.configure_auto_recharge(settings("25", "100"), utc(2026, 2, 1))
    (event,) = then(account)
    assert names([event]) == ["AutoRechargeConfigured"]
    assert event.auto_recharge == {"enabled": True, "recharge_amount": "25.0000", "trigger_amount": "100.0000"}


# ----- debits (SPEC §7) -------------------------------------------------------------------------


def test_debit_within_balance():
    account, gateway = active_account(funds="20", auto=DISABLED)
    # 600 s to +44: 10 min x 0.0230 + 0.0100 = 0.2400
    call(account, gateway, "u1", 600, utc(2026, 1, 5, 11, 10), destination=UK)
    (rated,) = then(account)
    assert names([rated]) == ["CallRated"]
    assert (rated.charge, rated.debited, rated.uncollected, rated.overage, rated.reason) == \
        ("0.2400", "0.2400", "0.0000", "0.0000", None)
    assert rated.debits == [{"lot": 1, "amount": "0.2400"}]
    assert rated.rate["prefix"] == "44"
    # 20 - 0.24 = 19.76
    assert account.balance == Decimal("19.76")


def test_debit_takes_lots_by_expiry_then_addition():
    gateway = RecordingGateway()
    account = opened()
    place_order(account, gateway, funds="0", auto=DISABLED, at=utc(2024, 2, 1))
    # lot 1 added 2024-02-28T12:00 expires 2025-02-28T12:00;
    # lot 2 added later, 2024-02-29T00:00, expires EARLIER, 2025-02-28T00:00 (no 29 Feb in 2025);
    # lot 3 added 2024-03-01 expires 2025-03-01
    add_funds(account, gateway, "5", utc(2024, 2, 28, 12))
    add_funds(account, gateway, "3", utc(2024, 2, 29, 0))
    add_funds(account, gateway, "4", utc(2024, 3, 1))
    assert [lot.expires_at for lot in account.lots] == [utc(2025, 2, 28, 12), utc(2025, 2, 28), utc(2025, 3, 1)]
    account.collect_events()
    # 10 min at 1.0000 = 10: lot 2 (3) first, then lot 1 (5), then 2 of lot 3's 4
    call(account, gateway, "u1", 600, utc(2024, 3, 2))
    (rated,) = then(account)
    assert rated.debits == [{"lot": 2, "amount": "3.0000"}, {"lot": 1, "amount": "5.0000"},
                            {"lot": 3, "amount": "2.0000"}]
    assert [lot.remaining for lot in account.lots] == [Decimal("0"), Decimal("0"), Decimal("2")]


def test_debit_same_expiry_and_addition_goes_by_creation_order():
    gateway = RecordingGateway()
    account = opened()
    at = utc(2026, 3, 1)
    place_order(account, gateway, funds="2", auto=DISABLED, at=at)
    add_funds(account, gateway, "2", at)
    account.collect_events()
    call(account, gateway, "u1", 180, utc(2026, 3, 2))  # 3 min = 3.0000: 2 from lot 1, 1 from lot 2
    (rated,) = then(account)
    assert rated.debits == [{"lot": 1, "amount": "2.0000"}, {"lot": 2, "amount": "1.0000"}]


def test_debit_to_exactly_zero_depletes_once():
    account, gateway = active_account(funds="20", auto=DISABLED)
    call(account, gateway, "u1", 1200, utc(2026, 1, 5))  # 20 min = 20.0000 = the whole balance
    rated, depleted = then(account)
    assert names([rated, depleted]) == ["CallRated", "BalanceDepleted"]
    assert (rated.debited, rated.uncollected, rated.reason) == ("20.0000", "0.0000", None)
    assert (depleted.cause, depleted.at) == ("u1", "2026-01-05T00:00:00Z")
    # at 0 already: a further call is uncollected, and depletion is not counted again
    call(account, gateway, "u2", 60, utc(2026, 1, 6))
    (rated,) = then(account)
    assert (rated.debited, rated.uncollected, rated.reason) == ("0.0000", "1.0000", "insufficient_funds")
    assert rated.debits == []
    assert account.depletions == 1


def test_debit_larger_than_balance_takes_everything_and_depletes():
    account, gateway = active_account(funds="20", auto=DISABLED)
    call(account, gateway, "u1", 1500, utc(2026, 1, 5))  # 25 min = 25.0000 > 20
    rated, depleted = then(account)
    assert names([rated, depleted]) == ["CallRated", "BalanceDepleted"]
    # 20 debited, 25 - 20 = 5 uncollected
    assert (rated.charge, rated.debited, rated.uncollected, rated.reason) == \
        ("25.0000", "20.0000", "5.0000", "insufficient_funds")
    assert account.balance == Decimal("0")
    assert account.uncollected == Decimal("5")


def test_debit_leaving_a_remainder_does_not_deplete():
    account, gateway = active_account(funds="20", auto=DISABLED)
    call(account, gateway, "u1", 1140, utc(2026, 1, 5))  # 19 min: 20 - 19 = 1 left
    assert names(then(account)) == ["CallRated"]


# ----- auto-recharge (SPEC §8) ------------------------------------------------------------------


def test_below_trigger_after_a_debit_recharges_once():
    account, gateway = active_account(funds="20", auto=settings("25", "5"))
    # 180 min to India x 0.0900 = 16.2000; 20 - 16.2 = 3.8 < 5
    call(account, gateway, "u1", 10800, utc(2026, 1, 6, 13), destination=INDIA)
    rated, triggered, succeeded, funds = then(account)
    assert names([rated, triggered, succeeded, funds]) == \
        ["CallRated", "RechargeTriggered", "RechargeSucceeded", "FundsAdded"]
    assert rated.debited == "16.2000"
    assert (triggered.reason, triggered.amount, triggered.balance, triggered.attempt) == \
        ("below_trigger", "25.0000", "3.8000", 1)
    assert succeeded.amount == "25.0000"
    assert (funds.lot_number, funds.source, funds.amount) == (2, "auto_recharge", "25.0000")
    assert funds.added_at == "2026-01-06T13:00:00Z"
    assert gateway.charges == [("25.0000", "USD", utc(2026, 1, 6, 13))]
    # 3.8 + 25 = 28.8
    assert account.balance == Decimal("28.8")


def test_balance_equal_to_trigger_does_not_recharge():
    account, gateway = active_account(funds="20", auto=settings("25", "5"))
    call(account, gateway, "u1", 900, utc(2026, 1, 5))  # 15 min: 20 - 15 = 5, not < 5
    assert names(then(account)) == ["CallRated"]


def test_trigger_zero_never_fires_after_a_debit():
    account, gateway = active_account(funds="20", auto=settings("25", "0"))
    call(account, gateway, "u1", 1200, utc(2026, 1, 5))  # 20 min: balance 0, which is not < 0
    assert names(then(account)) == ["CallRated", "BalanceDepleted"]


def test_recharge_before_debit_when_balance_is_short():
    account, gateway = active_account(funds="3.8", auto=settings("25", "5"))
    # 10 min = 10.0000 > 3.8: recharge 25 first (3.8 + 25 = 28.8), then debit 3.8 from lot 1 and
    # 6.2 from lot 2; 28.8 - 10 = 18.8 >= 5, so no trigger afterwards
    call(account, gateway, "u1", 600, utc(2026, 1, 7))
    triggered, succeeded, funds, rated = then(account)
    assert names([triggered, succeeded, funds, rated]) == \
        ["RechargeTriggered", "RechargeSucceeded", "FundsAdded", "CallRated"]
    assert (triggered.reason, triggered.balance) == ("insufficient_funds", "3.8000")
    assert rated.debits == [{"lot": 1, "amount": "3.8000"}, {"lot": 2, "amount": "6.2000"}]
    assert (rated.debited, rated.uncollected, rated.reason) == ("10.0000", "0.0000", None)
    assert account.balance == Decimal("18.8")


def test_recharges_before_debit_until_the_balance_covers_the_charge():
    account, gateway = active_account(funds="0", auto=settings("4", "0"))
    # 10 min = 10: 0 -> 4 -> 8 -> 12 (three recharges), then 12 - 10 = 2
    call(account, gateway, "u1", 600, utc(2026, 1, 7))
    events = then(account)
    assert names(events) == ["RechargeTriggered", "RechargeSucceeded", "FundsAdded"] * 3 + ["CallRated"]
    assert [event.balance for event in events if type(event).__name__ == "RechargeTriggered"] == \
        ["0.0000", "4.0000", "8.0000"]
    assert account.balance == Decimal("2")


def test_at_most_ten_recharges_before_one_debit_then_trigger_once():
    account, gateway = active_account(funds="0", auto=settings("1", "5"))
    # 15 min = 15: ten recharges of 1 give 10 < 15; debit 10, uncollected 5, balance 0 -> depleted;
    # then 0 < trigger 5: one more recharge (below_trigger), so 11 recharges in all
    call(account, gateway, "u1", 900, utc(2026, 1, 7))
    events = then(account)
    assert names(events) == (["RechargeTriggered", "RechargeSucceeded", "FundsAdded"] * 10
                             + ["CallRated", "BalanceDepleted"]
                             + ["RechargeTriggered", "RechargeSucceeded", "FundsAdded"])
    triggers = [event for event in events if type(event).__name__ == "RechargeTriggered"]
    assert [event.reason for event in triggers] == ["insufficient_funds"] * 10 + ["below_trigger"]
    assert [event.attempt for event in triggers] == list(range(1, 12))
    rated = events[30]
    assert (rated.debited, rated.uncollected, rated.reason) == ("10.0000", "5.0000", "insufficient_funds")
    assert len(rated.debits) == 10
    assert account.balance == Decimal("1")
    assert len(gateway.charges) == 11


def test_depletion_after_recharges_for_the_debit_and_before_the_trigger_recharge():
    account, gateway = active_account(funds="0", auto=settings("25", "5"))
    # 25 min = 25: one recharge of 25 (0 -> 25), debit 25 -> 0: depleted, then 0 < 5: recharge
    call(account, gateway, "u1", 1500, utc(2026, 1, 7))
    events = then(account)
    assert names(events) == ["RechargeTriggered", "RechargeSucceeded", "FundsAdded", "CallRated",
                             "BalanceDepleted", "RechargeTriggered", "RechargeSucceeded", "FundsAdded"]
    assert [events[0].reason, events[5].reason] == ["insufficient_funds", "below_trigger"]
    assert account.balance == Decimal("25")
    assert account.depletions == 1


def test_disabled_auto_recharge_never_recharges():
    account, gateway = active_account(funds="1", auto=settings(enabled=False, recharge="25", trigger="5"))
    call(account, gateway, "u1", 600, utc(2026, 1, 7))
    assert names(then(account)) == ["CallRated", "BalanceDepleted"]
    assert gateway.charges == []


# ----- failed recharges and suspension ----------------------------------------------------------


@pytest.mark.parametrize(
    ("end", "approved"),
    [
        (utc(2026, 1, 31, 23, 59, 59), True),  # the card is valid through the last instant of January
        (utc(2026, 2, 1), False),
    ],
)
def test_recharge_on_a_card_at_its_expiry_boundary(end, approved):
    account, gateway = active_account(funds="20", auto=settings("25", "5"), payment=CardPayment("visa-1", "2026-01"))
    call(account, gateway, "u1", 1080, end)  # 18 min: 20 - 18 = 2 < 5
    events = then(account)
    if approved:
        assert names(events) == ["CallRated", "RechargeTriggered", "RechargeSucceeded", "FundsAdded"]
        assert not account.suspended
    else:
        assert names(events) == ["CallRated", "RechargeTriggered", "RechargeFailed"]
        failed = events[2]
        assert (failed.amount, failed.decline_reason) == ("25.0000", "card_expired")
        assert failed.payment == {"method": "card", "card": "visa-1", "expires": "2026-01"}
        assert account.suspended
        assert account.balance == Decimal("2")


def with_declining_card(funds: str, auto: AutoRechargeSettings) -> tuple[CreditAccount, RecordingGateway]:
    """Given: an order paid on the agreement, then the payment method changed to a card that the
    simulated gateway declines (its id starts with "decline")."""
    account, gateway = active_account(funds=funds, auto=auto, payment=EA)
    account.update_payment_method(CardPayment("decline-1", "2199-12"), T_ORDER)
    account.collect_events()
    return account, gateway


def failed_once() -> tuple[CreditAccount, RecordingGateway]:
    """Given: funds 20, auto-recharge 25 below 5, a card that declines; a call of 18 left 2 and the
    recharge failed, so auto-recharge is suspended."""
    account, gateway = with_declining_card("20", settings("25", "5"))
    call(account, gateway, "u0", 1080, utc(2026, 1, 5))
    assert names(account.collect_events()) == ["CallRated", "RechargeTriggered", "RechargeFailed"]
    assert account.suspended
    gateway.charges.clear()
    return account, gateway


def test_failed_recharge_suspends_further_attempts():
    account, gateway = failed_once()
    # 5 min = 5 > balance 2: suspended, so no recharge; 2 debited, 3 uncollected, depleted, no trigger
    call(account, gateway, "u1", 300, utc(2026, 1, 6))
    rated, depleted = then(account)
    assert names([rated, depleted]) == ["CallRated", "BalanceDepleted"]
    assert (rated.debited, rated.uncollected, rated.reason) == ("2.0000", "3.0000", "insufficient_funds")
    assert gateway.charges == []


def test_failed_recharge_before_debit_stops_the_loop():
    account, gateway = with_declining_card("2", settings("25", "5"))
    # 10 min = 10 > 2: one attempt fails (no 10 attempts), then 2 debited, 8 uncollected, depleted,
    # and no below-trigger attempt since auto-recharge is now suspended
    call(account, gateway, "u1", 600, utc(2026, 1, 6))
    events = then(account)
    assert names(events) == ["RechargeTriggered", "RechargeFailed", "CallRated", "BalanceDepleted"]
    assert events[0].reason == "insufficient_funds"
    assert events[1].decline_reason == "card_declined"
    assert (events[2].debited, events[2].uncollected) == ("2.0000", "8.0000")
    assert len(gateway.charges) == 1


def test_adding_funds_by_hand_lifts_the_suspension():
    account, gateway = failed_once()
    # the declining card would refuse the manual payment too (payment_declined, nothing changes), and
    # changing the method would itself lift the suspension: so the approved receipt comes from elsewhere
    receipt = SimulatedGateway().charge(EA, Decimal("1"), "USD", utc(2026, 1, 6), "r")
    account.add_funds(Decimal("1"), None, receipt, utc(2026, 1, 6))
    assert names(then(account)) == ["FundsAdded"]
    assert not account.suspended


def test_updating_the_payment_method_lifts_the_suspension_and_the_next_debit_recharges():
    account, gateway = failed_once()
    account.update_payment_method(CARD, utc(2026, 1, 6))
    assert names(then(account)) == ["PaymentMethodUpdated"]  # no recharge on the update itself
    assert not account.suspended
    # 1 min = 1: 2 - 1 = 1 < 5 -> recharge 25 on the new card
    call(account, gateway, "u1", 60, utc(2026, 1, 7))
    assert names(then(account)) == ["CallRated", "RechargeTriggered", "RechargeSucceeded", "FundsAdded"]
    assert account.balance == Decimal("26")


def test_configuring_auto_recharge_lifts_the_suspension():
    account, gateway = failed_once()
    account.configure_auto_recharge(settings("30", "5"), utc(2026, 1, 6))
    assert names(then(account)) == ["AutoRechargeConfigured"]
    assert not account.suspended


def test_recharge_attempts_are_numbered_across_calls():
    account, gateway = active_account(funds="20", auto=settings("25", "5"))
    call(account, gateway, "u1", 960, utc(2026, 1, 5))  # 16: 20 - 16 = 4 < 5 -> attempt 1 (-> 29)
    call(account, gateway, "u2", 1500, utc(2026, 1, 6))  # 25: 29 - 25 = 4 < 5 -> attempt 2 (-> 29)
    triggers = [event for event in then(account) if type(event).__name__ == "RechargeTriggered"]
    assert [event.attempt for event in triggers] == [1, 2]
    assert account.balance == Decimal("29")


# ----- who pays: overage and uncollected calls --------------------------------------------------


def test_nce_call_accrues_overage():
    account = opened(commerce="nce")
    account.collect_events()
    gateway = RecordingGateway()
    call(account, gateway, "u1", 600, utc(2026, 1, 31, 23, 59), destination=UK)  # 10 x 0.0230 + 0.0100 = 0.2400
    rated, overage = then(account)
    assert names([rated, overage]) == ["CallRated", "OverageAccrued"]
    assert (rated.charge, rated.debited, rated.uncollected, rated.overage, rated.reason) == \
        ("0.2400", "0.0000", "0.0000", "0.2400", None)
    # the call started at 23:49 on 31 January: overage for January
    assert (overage.usage_id, overage.amount, overage.month) == ("u1", "0.2400", "2026-01")
    assert account.overage == Decimal("0.24")
    assert gateway.charges == []


def test_call_before_an_order_is_uncollected_credits_not_active():
    account = opened()
    account.collect_events()
    call(account, RecordingGateway(), "u1", 120, utc(2026, 1, 5))
    (rated,) = then(account)
    assert (rated.charge, rated.debited, rated.uncollected, rated.reason) == \
        ("2.0000", "0.0000", "2.0000", "credits_not_active")


def test_user_without_credits_licence_is_uncollected_and_nothing_debited():
    account, gateway = active_account(funds="20")
    call(account, gateway, "u1", 120, utc(2026, 1, 5), caller=Caller("US", frozenset({E5})))
    (rated,) = then(account)
    assert (rated.debited, rated.uncollected, rated.reason) == ("0.0000", "2.0000", "no_credits_licence")
    assert account.balance == Decimal("20")


def test_zero_second_call_records_nothing_else():
    account, gateway = active_account(funds="0", auto=settings("25", "5"))
    call(account, gateway, "u1", 0, utc(2026, 1, 5))  # balance 0 < trigger 5, but a 0 charge triggers nothing
    (rated,) = then(account)
    assert (rated.billed_minutes, rated.charge, rated.pool, rated.debits) == (0, "0.0000", None, [])
    assert gateway.charges == []


# ----- expiry (SPEC §7) -------------------------------------------------------------------------


def two_lots(auto=None) -> tuple[CreditAccount, RecordingGateway]:
    """Given: lot 1 of 20 from the order at 2026-01-02T09:00Z (expires 2027-01-02T09:00Z) and a
    manual lot 2 of 10 at 2026-01-10T00:00Z (expires 2027-01-10T00:00Z)."""
    account, gateway = active_account(funds="20", auto=auto or settings("25", "5"))
    add_funds(account, gateway, "10", utc(2026, 1, 10))
    account.collect_events()
    gateway.charges.clear()
    return account, gateway


def test_expiry_step_with_nothing_due_triggers_nothing():
    account, gateway = active_account(funds="3", auto=settings("25", "5"))
    # balance 3 < trigger 5, but no lot is due yet: neither depletion nor the trigger is checked
    account.expire_due(utc(2027, 1, 2, 8, 59, 59), gateway)
    assert then(account) == []
    assert gateway.charges == []


def test_lot_due_exactly_at_its_expiry():
    account, gateway = two_lots(auto=DISABLED)
    account.expire_due(utc(2027, 1, 2, 9), gateway)  # expires_at == now: due
    (expired,) = then(account)
    assert names([expired]) == ["FundsExpired"]
    assert (expired.lot_number, expired.amount, expired.at) == (1, "20.0000", "2027-01-02T09:00:00Z")
    # 30 - 20 = 10 left: not depleted
    assert account.balance == Decimal("10")


def test_expiry_of_one_lot_leaving_funds_below_trigger_recharges():
    account, gateway = two_lots(auto=settings("25", "15"))
    account.expire_due(utc(2027, 1, 5), gateway)  # lot 1 due; 10 left < 15
    events = then(account)
    assert names(events) == ["FundsExpired", "RechargeTriggered", "RechargeSucceeded", "FundsAdded"]
    assert (events[1].reason, events[1].balance) == ("below_trigger", "10.0000")
    # the recharge is paid and dated at the expiry step's time
    assert events[3].added_at == "2027-01-05T00:00:00Z"
    assert gateway.charges == [("25.0000", "USD", utc(2027, 1, 5))]


def test_expiry_step_expiring_several_lots_checks_depletion_and_trigger_once():
    account, gateway = two_lots(auto=settings("25", "5"))
    call(account, gateway, "u1", 300, utc(2026, 6, 1))  # 5: lot 1 20 -> 15; balance 25 >= 5
    account.collect_events()
    # both lots fell due before 2027-02-01; they expire together, in debit order
    account.expire_due(utc(2027, 2, 1), gateway)
    events = then(account)
    assert names(events) == ["FundsExpired", "FundsExpired", "BalanceDepleted",
                             "RechargeTriggered", "RechargeSucceeded", "FundsAdded"]
    assert [(event.lot_number, event.amount) for event in events[:2]] == [(1, "15.0000"), (2, "10.0000")]
    assert events[2].cause == "expiry"
    assert (events[3].reason, events[3].balance) == ("below_trigger", "0.0000")
    assert (events[5].added_at, events[5].expires_at) == ("2027-02-01T00:00:00Z", "2028-02-01T00:00:00Z")
    # 15 + 10 expired; 25 added: balance 25
    assert account.expired == Decimal("25")
    assert account.balance == Decimal("25")
    assert account.depletions == 1


def test_expiry_without_auto_recharge_only_depletes():
    account, gateway = two_lots(auto=DISABLED)
    account.expire_due(utc(2027, 2, 1), gateway)
    assert names(then(account)) == ["FundsExpired", "FundsExpired", "BalanceDepleted"]
    assert gateway.charges == []


def test_fully_spent_lot_does_not_expire():
    account, gateway = two_lots(auto=DISABLED)
    call(account, gateway, "u1", 1200, utc(2026, 6, 1))  # 20: empties lot 1
    account.collect_events()
    account.expire_due(utc(2027, 1, 5), gateway)  # lot 1 is due but holds nothing
    assert then(account) == []
    assert account.next_expiry == utc(2027, 1, 10)


def test_suspended_auto_recharge_does_not_recharge_on_expiry():
    account, gateway = failed_once()  # balance 2 in lot 1, suspended
    account.expire_due(utc(2027, 1, 2, 9), gateway)
    assert names(then(account)) == ["FundsExpired", "BalanceDepleted"]
    assert gateway.charges == []


# ----- the ledger laws --------------------------------------------------------------------------


def test_totals_and_replay_equal_the_incremental_state():
    gateway = RecordingGateway()
    account = opened()
    place_order(account, gateway, funds="20", auto=settings("25", "5"))
    call(account, gateway, "u1", 10800, utc(2026, 1, 6, 13), destination=INDIA)  # 16.2, then +25
    add_funds(account, gateway, "10", utc(2026, 2, 1), request_id="r-1")
    call(account, gateway, "u2", 1500, utc(2026, 3, 1))  # 25
    account.expire_due(utc(2027, 1, 7), gateway)
    account.check_invariants()
    # lot 1: order 20 (expires 2027-01-02T09); u1 takes 16.2 -> 3.8 < 5 -> lot 2: recharge 25
    # (expires 2027-01-06T13); lot 3: manual 10; u2 takes 25 = 3.8 (lot 1) + 21.2 (lot 2) -> 13.8 >= 5.
    # At 2027-01-07 lots 1 (empty) and 2 (3.8 left) are due: 3.8 expires, 10 is left >= 5: no recharge.
    assert account.funds_added == Decimal("55")  # 20 + 25 + 10
    assert account.charged == Decimal("41.2")  # 16.2 + 25
    assert account.expired == Decimal("3.8")
    assert account.balance == Decimal("10")  # 55 - 41.2 - 3.8
    assert (account.recharges_triggered, account.recharges_succeeded, account.depletions) == (1, 1, 0)
    assert account.balance == account.funds_added - account.charged - account.expired
    rebuilt = replay(account.collect_events())
    for attribute in ("balance", "funds_added", "charged", "expired", "uncollected", "overage",
                      "recharges_triggered", "recharges_succeeded", "recharges_failed", "depletions",
                      "suspended", "order_id", "request_ids", "open_lot_numbers"):
        assert getattr(rebuilt, attribute) == getattr(account, attribute), attribute
    assert [(lot.remaining, lot.expired) for lot in rebuilt.lots] == \
        [(lot.remaining, lot.expired) for lot in account.lots]
    rebuilt.check_invariants()


# ----- one table of billing scenarios (STYLE.md: one operation and its outcome per row) ---------

RECHARGE = ["RechargeTriggered", "RechargeSucceeded", "FundsAdded"]


@pytest.mark.parametrize(
    ("funds", "auto", "minutes", "events", "debited", "uncollected", "balance"),
    [
        # funds, (recharge, trigger) or None, charge at 1.0000/min, then:
        ("20", None, 5, ["CallRated"], "5.0000", "0.0000", "15"),  # 20 - 5
        ("20", ("25", "5"), 15, ["CallRated"], "15.0000", "0.0000", "5"),  # 5 is not < 5
        ("20", ("25", "5"), 16, ["CallRated"] + RECHARGE, "16.0000", "0.0000", "29"),  # 4 < 5: 4 + 25
        ("20", ("25", "5"), 20, ["CallRated", "BalanceDepleted"] + RECHARGE, "20.0000", "0.0000", "25"),
        ("20", ("25", "5"), 21, RECHARGE + ["CallRated"], "21.0000", "0.0000", "24"),  # 20 + 25 - 21
        ("20", ("25", "30"), 21, RECHARGE + ["CallRated"] + RECHARGE, "21.0000", "0.0000", "49"),  # 24 < 30: +25
        ("0", ("10", "0"), 35, RECHARGE * 4 + ["CallRated"], "35.0000", "0.0000", "5"),  # 0->40, 40 - 35
        ("0", None, 3, ["CallRated"], "0.0000", "3.0000", "0"),  # balance already 0: not a depletion
        ("2", None, 3, ["CallRated", "BalanceDepleted"], "2.0000", "1.0000", "0"),
        ("0.5", None, 1, ["CallRated", "BalanceDepleted"], "0.5000", "0.5000", "0"),
    ],
)
def test_billing_scenarios(funds, auto, minutes, events, debited, uncollected, balance):
    auto_settings = DISABLED if auto is None else settings(*auto)
    account, gateway = active_account(funds=funds, auto=auto_settings)
    call(account, gateway, "u1", minutes * 60, utc(2026, 1, 5))
    new = then(account)
    assert names(new) == events
    (rated,) = [event for event in new if type(event).__name__ == "CallRated"]
    assert (rated.charge, rated.debited, rated.uncollected) == (f"{minutes}.0000", debited, uncollected)
    assert rated.reason == ("insufficient_funds" if uncollected != "0.0000" else None)
    assert account.balance == Decimal(balance)


def test_lots_expire_in_debit_order_across_a_leap_day():
    gateway = RecordingGateway()
    account = opened()
    place_order(account, gateway, funds="0", auto=DISABLED, at=utc(2024, 2, 1))
    add_funds(account, gateway, "5", utc(2024, 2, 28, 12))  # lot 1 expires 2025-02-28T12:00Z
    add_funds(account, gateway, "3", utc(2024, 2, 29, 0))  # lot 2 expires 2025-02-28T00:00Z (earlier)
    account.collect_events()
    account.expire_due(utc(2025, 2, 28, 0), gateway)
    (expired,) = then(account)
    assert (expired.lot_number, expired.amount) == (2, "3.0000")
    account.expire_due(utc(2025, 2, 28, 12), gateway)
    expired, depleted = then(account)
    assert (expired.lot_number, expired.amount, depleted.cause) == (1, "5.0000", "expiry")


def test_expiry_step_on_an_account_without_lots_does_nothing():
    for account in (opened(commerce="nce"), opened()):
        account.collect_events()
        account.expire_due(utc(2030, 1, 1), RecordingGateway())
        assert then(account) == []
