"""SPEC §8-§9 auto-recharge settings; the Order, UsageClaim and EngineClock aggregates (§9-§11)."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from domain.auto_recharge import DISABLED, MAX_RECHARGES_PER_CALL, AutoRechargeSettings, parse_auto_recharge
from domain.engine_clock import ENGINE_CLOCK_ID, EngineClock
from domain.errors import InvalidInput
from domain.order import Order
from domain.payments import AgreementPayment, CardPayment
from domain.usage_claim import UsageClaim

UTC = timezone.utc


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def names(events) -> list[str]:
    return [type(event).__name__ for event in events]


# ----- auto-recharge settings -------------------------------------------------------------------


def test_enabled_settings():
    settings = parse_auto_recharge(True, "50", "10")
    assert settings == AutoRechargeSettings(True, Decimal("50"), Decimal("10"))
    assert settings.as_data() == {"enabled": True, "recharge_amount": "50.0000", "trigger_amount": "10.0000"}


def test_trigger_may_be_zero_recharge_may_not():
    assert parse_auto_recharge(True, "50", "0").trigger_amount == Decimal("0")
    with pytest.raises(InvalidInput, match="recharge_amount"):
        parse_auto_recharge(True, "0", "10")


@pytest.mark.parametrize(
    ("recharge", "trigger"),
    [(None, "10"), ("50", None), (None, None)],
)
def test_enabled_needs_both_amounts(recharge, trigger):
    with pytest.raises(InvalidInput):
        parse_auto_recharge(True, recharge, trigger)


def test_disabled_amounts_may_be_omitted_then_null():
    settings = parse_auto_recharge(False, None, None)
    assert settings == DISABLED
    assert settings.as_data() == {"enabled": False, "recharge_amount": None, "trigger_amount": None}


def test_disabled_amounts_given_are_validated_and_kept():
    settings = parse_auto_recharge(False, "12.5", "0")
    assert settings.as_data() == {"enabled": False, "recharge_amount": "12.5000", "trigger_amount": "0.0000"}
    with pytest.raises(InvalidInput):
        parse_auto_recharge(False, "12.34567", None)
    with pytest.raises(InvalidInput):
        parse_auto_recharge(False, None, "-1")


@pytest.mark.parametrize("enabled", ["true", 1, 0, None, "yes"])
def test_enabled_must_be_a_boolean(enabled):
    with pytest.raises(InvalidInput, match="enabled"):
        parse_auto_recharge(enabled, "50", "10")


@pytest.mark.parametrize(
    ("recharge", "trigger"),
    [(50, "10"), ("50", 10), ("1000000.0001", "10"), ("50", "1000000.0001"), ("1e2", "10"), ("50", "NaN")],
)
def test_amounts_are_money_strings(recharge, trigger):
    with pytest.raises(InvalidInput):
        parse_auto_recharge(True, recharge, trigger)


def test_settings_round_trip_through_event_data():
    for settings in (parse_auto_recharge(True, "50", "0"), DISABLED, parse_auto_recharge(False, "1", None)):
        assert AutoRechargeSettings.from_data(settings.as_data()) == settings


def test_at_most_ten_recharges_per_call():
    assert MAX_RECHARGES_PER_CALL == 10


# ----- Order ------------------------------------------------------------------------------------


def test_order_placed_carries_the_order_quantity_one():
    order = Order.place("contoso", "o-1", Decimal("20"), parse_auto_recharge(True, "25", "5"),
                        CardPayment("visa-1", "2026-03"), "contoso/order/o-1", utc(2026, 1, 2, 9))
    (event,) = order.collect_events()
    assert names([event]) == ["OrderPlaced"]
    assert (event.org, event.order_id, event.funds, event.at) == ("contoso", "o-1", "20.0000", "2026-01-02T09:00:00Z")
    assert event.auto_recharge == {"enabled": True, "recharge_amount": "25.0000", "trigger_amount": "5.0000"}
    assert event.payment == {"method": "card", "card": "visa-1", "expires": "2026-03"}
    assert order.quantity == 1


def test_order_with_zero_funds_has_no_payment_reference():
    order = Order.place("contoso", "o-1", Decimal("0"), DISABLED, AgreementPayment("EA-1", None), None,
                        utc(2026, 1, 2))
    (event,) = order.collect_events()
    assert (event.funds, event.payment_reference) == ("0.0000", None)


def test_order_id_is_derived_from_org_and_order():
    assert Order.create_id("contoso", "o-1") == Order.create_id("contoso", "o-1")
    assert Order.create_id("contoso", "o-1") != Order.create_id("fabrikam", "o-1")
    assert Order.create_id("contoso", "o-1") != Order.create_id("contoso", "o-2")


# ----- UsageClaim -------------------------------------------------------------------------------


def test_usage_claim_id_depends_on_usage_id_only():
    # usage_ids are unique across all organizations (SPEC §11): the claim's id ignores the org
    first = UsageClaim.claim("u1", "contoso")
    again = UsageClaim.claim("u1", "fabrikam")
    assert first.id == again.id == UsageClaim.create_id("u1")
    assert UsageClaim.create_id("u1") != UsageClaim.create_id("u2")
    (event,) = first.collect_events()
    assert (names([event]), event.usage_id, event.org) == (["UsageClaimed"], "u1", "contoso")


# ----- EngineClock ------------------------------------------------------------------------------


def test_engine_clock_moves_forward_only():
    clock = EngineClock.start(utc(2026, 1, 1))
    assert clock.id == ENGINE_CLOCK_ID
    clock.collect_events()
    clock.advance(utc(2026, 1, 1))  # same time: nothing to record
    assert clock.collect_events() == []
    clock.advance(utc(2026, 1, 31, 23, 59, 59))
    (event,) = clock.collect_events()
    assert (names([event]), event.at) == (["Advanced"], "2026-01-31T23:59:59Z")
    assert clock.now == utc(2026, 1, 31, 23, 59, 59)
    with pytest.raises(AssertionError):
        clock.advance(utc(2026, 1, 1))  # never backwards (a programmer error)


def test_engine_clock_replay():
    clock = EngineClock.start(utc(2026, 1, 1))
    clock.advance(utc(2026, 2, 1, 0, 0, 0, 500000))
    rebuilt = None
    for event in clock.collect_events():
        rebuilt = event.mutate(rebuilt)
    assert rebuilt.now == utc(2026, 2, 1, 0, 0, 0, 500000)
