"""SPEC §9 payment methods and the simulated gateway."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from domain.errors import InvalidInput
from domain.payments import (
    AgreementPayment,
    CardPayment,
    SimulatedGateway,
    parse_payment_method,
    payment_from_data,
)
from domain.timestamps import parse_timestamp

UTC = timezone.utc
GATEWAY = SimulatedGateway()


def charge(method, at, amount="50"):
    return GATEWAY.charge(method, Decimal(amount), "USD", at, reference="org/ref/1")


# ----- parsing ----------------------------------------------------------------------------------


def test_parse_card():
    method = parse_payment_method({"method": "card", "card": "visa-4242", "expires": "2026-02"})
    assert method == CardPayment(card="visa-4242", expires="2026-02")
    assert method.as_data() == {"method": "card", "card": "visa-4242", "expires": "2026-02"}


def test_parse_agreement_with_and_without_po():
    assert parse_payment_method({"method": "enterprise_agreement", "agreement": "EA-1", "po": "PO-9"}) == \
        AgreementPayment("EA-1", "PO-9")
    assert parse_payment_method({"method": "enterprise_agreement", "agreement": "EA-1", "po": None}) == \
        AgreementPayment("EA-1", None)
    assert parse_payment_method({"method": "enterprise_agreement", "agreement": "EA-1"}) == \
        AgreementPayment("EA-1", None)


def test_extra_keys_ignored():
    assert parse_payment_method({"method": "card", "card": "c1", "expires": "2027-12", "holder": "x"}) == \
        CardPayment("c1", "2027-12")


@pytest.mark.parametrize(
    "data",
    [
        None,
        "card",
        ["card"],
        {},
        {"method": "cash"},
        {"method": "CARD", "card": "c1", "expires": "2026-02"},
        {"method": "card", "expires": "2026-02"},  # no card id
        {"method": "card", "card": "", "expires": "2026-02"},
        {"method": "card", "card": 4242, "expires": "2026-02"},
        {"method": "card", "card": "c1"},  # no expiry
        {"method": "card", "card": "c1", "expires": "2026-13"},
        {"method": "card", "card": "c1", "expires": "2026-00"},
        {"method": "card", "card": "c1", "expires": "2026-2"},
        {"method": "card", "card": "c1", "expires": "02/2026"},
        {"method": "card", "card": "c1", "expires": "2026-02-28"},
        {"method": "card", "card": "c1", "expires": "1999-12"},
        {"method": "card", "card": "c1", "expires": "2200-01"},
        {"method": "card", "card": "c1", "expires": 202602},
        {"method": "enterprise_agreement"},
        {"method": "enterprise_agreement", "agreement": ""},
        {"method": "enterprise_agreement", "agreement": 123},
        {"method": "enterprise_agreement", "agreement": "EA-1", "po": ""},
        {"method": "enterprise_agreement", "agreement": "EA-1", "po": 5},
        {"method": "enterprise_agreement", "agreement": "EA-1", "po": ["PO"]},
    ],
)
def test_malformed_payment_rejected(data):
    with pytest.raises(InvalidInput):
        parse_payment_method(data)


def test_payment_round_trips_through_event_data():
    for method in (CardPayment("c1", "2028-02"), AgreementPayment("EA-1", "PO-1"), AgreementPayment("EA-2", None)):
        assert payment_from_data(method.as_data()) == method


# ----- card validity: through the last instant of its month ------------------------------------


@pytest.mark.parametrize(
    ("expires", "valid_until"),
    [
        ("2026-02", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2028-02", datetime(2028, 3, 1, tzinfo=UTC)),  # leap year: through 29 Feb
        ("2026-12", datetime(2027, 1, 1, tzinfo=UTC)),  # December: into next year
        ("2026-04", datetime(2026, 5, 1, tzinfo=UTC)),
    ],
)
def test_card_valid_until(expires, valid_until):
    assert CardPayment("c1", expires).valid_until() == valid_until


@pytest.mark.parametrize(
    ("expires", "at", "approved"),
    [
        ("2026-02", "2026-02-28T23:59:59Z", True),
        ("2026-02", "2026-02-28T23:59:59.999999Z", True),
        ("2026-02", "2026-03-01T00:00:00Z", False),
        ("2026-02", "2026-01-15T12:00:00Z", True),
        # +01:00 on 1 March local is still 28 Feb in UTC: approved
        ("2026-02", "2026-03-01T00:30:00+01:00", True),
        # -01:00 on 28 Feb local is already 1 March in UTC: declined
        ("2026-02", "2026-02-28T23:30:00-01:00", False),
        ("2028-02", "2028-02-29T23:59:59Z", True),  # leap day is inside the month
        ("2028-02", "2028-03-01T00:00:00Z", False),
        ("2026-12", "2026-12-31T23:59:59Z", True),
        ("2026-12", "2027-01-01T00:00:00Z", False),
        ("2026-02", "2027-06-01T00:00:00Z", False),
    ],
)
def test_simulated_gateway_card_expiry(expires, at, approved):
    outcome = charge(CardPayment("visa-1", expires), parse_timestamp(at))
    assert outcome.approved is approved
    assert outcome.reference == "org/ref/1"
    assert outcome.decline_reason == (None if approved else "card_expired")


@pytest.mark.parametrize("card", ["decline", "decline-4000", "declined_card", "decline0"])
def test_card_id_starting_with_decline_is_declined(card):
    outcome = charge(CardPayment(card, "2199-12"), datetime(2026, 1, 1, tzinfo=UTC))
    assert not outcome.approved
    assert outcome.decline_reason == "card_declined"


@pytest.mark.parametrize("card", ["visa-decline", "Decline", "DECLINE-1", "x-decline"])
def test_card_id_not_starting_with_decline_approved(card):
    assert charge(CardPayment(card, "2199-12"), datetime(2026, 1, 1, tzinfo=UTC)).approved


@pytest.mark.parametrize("at", [datetime(2026, 1, 1, tzinfo=UTC), datetime(2199, 12, 31, 23, 59, 59, tzinfo=UTC)])
def test_enterprise_agreement_always_accepted(at):
    outcome = charge(AgreementPayment("EA-1", None), at, amount="1000000")
    assert outcome.approved
    assert outcome.decline_reason is None


def test_gateway_reference_is_echoed():
    at = datetime(2026, 1, 1, tzinfo=UTC)
    outcome = GATEWAY.charge(AgreementPayment("EA-1", "PO"), Decimal("0.0001"), "EUR", at,
                             reference="contoso/recharge/7")
    assert outcome.reference == "contoso/recharge/7"


def test_card_declined_one_microsecond_after_month_end():
    last = datetime(2026, 3, 1, tzinfo=UTC) - timedelta(microseconds=1)
    assert charge(CardPayment("c", "2026-02"), last).approved
    assert not charge(CardPayment("c", "2026-02"), last + timedelta(microseconds=1)).approved
