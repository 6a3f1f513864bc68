"""The balance page: lots past expiry that the engine has not yet expired are flagged, by UTC time."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

from commcredits.balance_page import balance_document, render_balance
from domain.auto_recharge import DISABLED
from domain.credit_account import CreditAccount
from domain.payments import AgreementPayment, SimulatedGateway

ADDED = datetime(2024, 2, 29, 12, 0, tzinfo=timezone.utc)  # leap day: expires 2025-02-28T12:00:00Z


def funded_account() -> CreditAccount:
    account = CreditAccount.open("acme", "Acme", "US", "USD", "legacy", ["EA-1"], ADDED)
    payment = AgreementPayment("EA-1", None)
    receipt = SimulatedGateway().charge(payment, Decimal("10.5"), "USD", ADDED, "acme/order/o-1")
    account.activate("o-1", DISABLED, payment, Decimal("10.5"), receipt, ADDED)
    return account


def test_a_lot_is_flagged_from_the_instant_it_is_due_whatever_the_readers_time_zone():
    document = balance_document(funded_account())
    assert document["lots"][0]["expires_at"] == "2025-02-28T12:00:00Z"
    due = datetime(2025, 2, 28, 13, 0, tzinfo=timezone(timedelta(hours=1)))  # = 12:00Z
    just_before = datetime(2025, 2, 28, 12, 59, 59, tzinfo=timezone(timedelta(hours=1)))
    assert "past expiry" in render_balance(document, due)
    assert "past expiry" not in render_balance(document, just_before)


def test_amounts_are_shown_with_four_decimals():
    text = render_balance(balance_document(funded_account()), ADDED)
    assert "Balance: 10.5000 USD" in text
    assert "Enterprise Agreement EA-1" in text and ", PO" not in text
