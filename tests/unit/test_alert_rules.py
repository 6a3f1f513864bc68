"""The alert rules (consumers/alerts/rules.py): given events -> then alerts and state.

Each test builds an organization's state from `CreditAccount.Opened`, feeds it event documents
(type and data as docs/events.md lists them, positions counting from 1) and checks the alerts.
Coming expiries are the domain's (`CreditAccount.ExpiryApproached`, tests/unit/test_expiry_notice.py):
here they are only passed on. The last section runs the SPEC's worked examples through the real
application and checks the rules against what the engine stored.
"""

import json
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from application.billing_application import BillingApplication
from application.event_documents import event_document
from application.reference_data import load_catalog
from application.settings import StoreSettings, memory_store, sqlite_store
from commcredits.simulate import Simulation
from consumers.alerts.kinds import (
    AUTO_RECHARGE_SUSPENDED,
    BALANCE_BELOW_TRIGGER,
    BALANCE_DEPLETED,
    CALLS_UNCOLLECTED,
    FACTS,
    FUNDS_EXPIRED,
    FUNDS_EXPIRING,
    ORDER_PLACED,
    RECHARGE_FAILED,
    RECHARGE_SUCCEEDED,
    Alert,
)
from consumers.alerts.rules import OrgAlertState, alerts_for_event
from domain.credit_account import CreditAccount
from tests.support import SPEC_EXAMPLES, SPEC_RATES

Event = tuple[str, dict[str, Any]]
T0 = "2026-01-02T09:00:00Z"
OPENED = {"org": "contoso", "name": "Contoso", "country": "US", "currency": "USD", "commerce": "legacy",
          "agreements": ["EA-100"], "at": "2026-01-01T00:00:00Z"}
CARD = {"method": "card", "card": "visa-1", "expires": "2026-03"}
FAR = "2027-01-02T09:00:00Z"  # a lot's expiry far from every event time used with it


# ----- event documents --------------------------------------------------------------------------

def settings(enabled: bool = True, recharge: str | None = "25.0000", trigger: str | None = "5.0000") -> dict:
    return {"enabled": enabled, "recharge_amount": recharge, "trigger_amount": trigger}


def activated(at: str = T0, **auto_recharge: Any) -> Event:
    return "CreditAccount.CreditsActivated", {"order_id": "o-1", "auto_recharge": settings(**auto_recharge),
                                              "payment": CARD, "at": at}


def configured(at: str = T0, **auto_recharge: Any) -> Event:
    return "CreditAccount.AutoRechargeConfigured", {"auto_recharge": settings(**auto_recharge), "at": at}


def payment_updated(at: str = T0) -> Event:
    return "CreditAccount.PaymentMethodUpdated", {"payment": CARD, "at": at}


def added(lot: int, amount: str, expires_at: str = FAR, source: str = "order", added_at: str = T0) -> Event:
    return "CreditAccount.FundsAdded", {"lot_number": lot, "source": source, "amount": amount, "added_at": added_at,
                                        "expires_at": expires_at, "request_id": None, "payment_reference": "p-1"}


def call(usage_id: str, at: str, debits: tuple[tuple[int, str], ...] = (), uncollected: str = "0.0000") -> Event:
    debited = sum((Decimal(amount) for _, amount in debits), Decimal("0.0000"))
    return "CreditAccount.CallRated", {
        "usage_id": usage_id, "debits": [{"lot": lot, "amount": amount} for lot, amount in debits],
        "debited": f"{debited:.4f}", "uncollected": uncollected, "charge": f"{debited + Decimal(uncollected):.4f}",
        "overage": "0.0000", "reason": "insufficient_funds" if Decimal(uncollected) else None, "at": at,
    }


def expired(lot: int, amount: str, at: str) -> Event:
    return "CreditAccount.FundsExpired", {"lot_number": lot, "amount": amount, "at": at}


def approached(lot: int, remaining: str, expires_at: str, at: str) -> Event:
    return "CreditAccount.ExpiryApproached", {"lot_number": lot, "remaining": remaining, "expires_at": expires_at,
                                              "at": at}


def recharge_succeeded(at: str = T0) -> Event:
    return "CreditAccount.RechargeSucceeded", {"attempt": 1, "amount": "25.0000", "payment_reference": "gw-1",
                                               "at": at}


def recharge_failed(at: str = T0, reason: str | None = "card_expired") -> Event:
    return "CreditAccount.RechargeFailed", {"attempt": 2, "amount": "25.0000", "decline_reason": reason,
                                            "payment": CARD, "at": at}


def depleted(cause: str = "u9", at: str = T0) -> Event:
    return "CreditAccount.BalanceDepleted", {"cause": cause, "at": at}


def order_placed(**auto_recharge: Any) -> Event:
    return "Order.OrderPlaced", {"org": "contoso", "order_id": "o-1", "funds": "20.0000",
                                 "auto_recharge": settings(**auto_recharge), "payment": CARD,
                                 "payment_reference": "gw-0", "at": T0}


# ----- helpers ------------------------------------------------------------------------------------

def new_state() -> OrgAlertState:
    return OrgAlertState.opened(OPENED)


def run(state: OrgAlertState, events: list[Event], first_position: int = 1) -> list[Alert]:
    alerts = []
    for position, (event_type, data) in enumerate(events, start=first_position):
        alerts += alerts_for_event(state, event_type, data, position)
    return alerts


def given(events: list[Event]) -> OrgAlertState:
    state = new_state()
    run(state, events, first_position=1)
    return state


def when(state: OrgAlertState, event: Event, position: int = 100) -> list[Alert]:
    return alerts_for_event(state, event[0], event[1], position)


def kinds(alerts: list[Alert]) -> list[str]:
    return [alert.kind for alert in alerts]


def only(alerts: list[Alert], kind: str) -> Alert:
    (alert,) = [alert for alert in alerts if alert.kind == kind]
    return alert


# ----- state from events --------------------------------------------------------------------------

def test_opened_state_carries_the_organization_and_nothing_else():
    state = new_state()
    assert (state.org, state.name, state.country, state.currency) == ("contoso", "Contoso", "US", "USD")
    assert state.balance == Decimal("0.0000") and not state.auto_recharge_enabled


def test_credits_activated_keeps_the_settings_without_an_alert():
    state = new_state()
    assert when(state, activated(trigger="5")) == []
    assert state.auto_recharge_enabled and state.trigger_amount == Decimal("5.0000")


def test_credits_activated_with_a_null_trigger():
    state = given([activated(enabled=False, recharge=None, trigger=None)])
    assert not state.auto_recharge_enabled and state.trigger_amount is None


@pytest.mark.parametrize("lifting", [configured(), payment_updated(), added(2, "5.0000", source="manual")],
                         ids=["configured", "payment-method", "manual-funds"])
def test_what_lifts_a_suspension(lifting):
    state = given([activated(), added(1, "20.0000"), recharge_failed()])
    assert state.suspended
    assert when(state, lifting) == []
    assert not state.suspended


@pytest.mark.parametrize("source", ["order", "auto_recharge"])
def test_funds_not_added_by_hand_keep_the_suspension(source):
    state = given([activated(), recharge_failed()])
    assert when(state, added(1, "25.0000", source=source)) == []
    assert state.suspended


def test_auto_recharge_configured_replaces_the_settings():
    state = given([activated()])
    when(state, configured(enabled=False, recharge=None, trigger="2.5"))
    assert not state.auto_recharge_enabled and state.trigger_amount == Decimal("2.5000")


def test_funds_added_raises_the_balance():
    state = given([activated()])
    assert when(state, added(1, "20.0000", expires_at="2027-01-02T09:00:00Z")) == []
    assert state.balance == Decimal("20.0000")


def test_calls_lower_the_balance_by_what_they_debited():
    state = given([activated(), added(1, "3.0000"), added(2, "10.0000")])
    assert when(state, call("u1", "2026-01-05T10:00:00Z", ((1, "3.0000"), (2, "1.5000")))) == []
    assert state.balance == Decimal("8.5000")


def test_the_uncollected_part_of_a_call_leaves_the_balance_alone():
    state = given([activated(), added(1, "3.0000")])
    when(state, call("u1", "2026-01-05T10:00:00Z", ((1, "3.0000"),), uncollected="2.0000"))
    assert state.balance == Decimal("0.0000")


# ----- one alert per event ------------------------------------------------------------------------

def test_recharge_succeeded():
    alert = only(when(given([activated()]), recharge_succeeded(at="2026-01-05T10:00:00Z"), position=7),
                 RECHARGE_SUCCEEDED)
    assert alert == Alert("7:recharge_succeeded", RECHARGE_SUCCEEDED, "contoso", 7, "2026-01-05T10:00:00Z",
                          {"attempt": 1, "amount": "25.0000", "payment_reference": "gw-1"})


def test_recharge_failed_then_suspended_in_that_order():
    state = given([activated(), added(1, "20.0000")])
    alerts = when(state, recharge_failed(reason=None), position=9)
    assert [alert.id for alert in alerts] == ["9:recharge_failed", "9:auto_recharge_suspended"]
    assert alerts[0].facts == {"attempt": 2, "amount": "25.0000", "decline_reason": None, "payment": CARD}
    assert alerts[1].facts == {"decline_reason": None}
    assert state.suspended


def test_balance_depleted():
    alerts = when(given([activated()]), depleted(cause="expiry"), position=3)
    assert [(alert.id, alert.facts) for alert in alerts] == [("3:balance_depleted", {"cause": "expiry"})]


def test_funds_expired_lowers_the_balance_and_says_so():
    state = given([activated(enabled=False), added(1, "4.0000", expires_at="2027-01-02T09:00:00Z"),
                   added(2, "6.0000", expires_at="2027-02-02T09:00:00Z")])
    alerts = when(state, expired(1, "4.0000", "2027-01-02T09:00:00Z"), position=5)
    assert only(alerts, FUNDS_EXPIRED).facts == {"lot_number": 1, "amount": "4.0000"}
    assert state.balance == Decimal("6.0000")


def test_funds_expired_of_nothing_gives_no_alert():
    state = given([activated(enabled=False)])
    assert when(state, expired(1, "0.0000", "2027-01-02T09:00:00Z")) == []


def test_order_placed():
    alert = only(when(new_state(), order_placed(recharge="25", trigger="0"), position=4), ORDER_PLACED)
    assert alert.id == "4:order_placed" and alert.at == T0
    assert alert.facts == {"order_id": "o-1", "funds": "20.0000", "auto_recharge_enabled": True,
                           "recharge_amount": "25.0000", "trigger_amount": "0.0000"}


def test_order_placed_with_auto_recharge_off_has_null_amounts():
    alert = only(when(new_state(), order_placed(enabled=False, recharge="25", trigger="5")), ORDER_PLACED)
    assert alert.facts["auto_recharge_enabled"] is False
    assert alert.facts["recharge_amount"] is None and alert.facts["trigger_amount"] is None


def test_every_alert_has_exactly_its_kinds_facts():
    state = given([activated(enabled=False, trigger="50"), added(1, "20.0000", expires_at="2026-02-01T00:00:00Z")])
    alerts = run(state, [order_placed(), call("u1", "2026-01-05T10:00:00Z", ((1, "20.0000"),), "1.0000"),
                         depleted(), recharge_succeeded(), recharge_failed(), added(2, "5.0000", source="manual"),
                         call("u2", "2026-01-06T10:00:00Z", ((2, "1.0000"),)),
                         approached(2, "4.0000", FAR, "2026-12-03T09:00:00Z"),
                         expired(2, "4.0000", "2027-01-02T09:00:00Z")], first_position=10)
    assert set(kinds(alerts)) == set(FACTS)
    for alert in alerts:
        assert tuple(alert.facts) == FACTS[alert.kind]
        json.dumps(alert.document())


# ----- calls charged as uncollected: once per UTC day ---------------------------------------------

def test_first_uncollected_call_of_a_day_is_alerted():
    state = given([activated()])
    alert = only(when(state, call("u1", "2026-01-05T10:00:00Z", uncollected="2.5000"), position=6), CALLS_UNCOLLECTED)
    assert alert.id == "6:calls_uncollected"
    assert alert.facts == {"day": "2026-01-05", "usage_id": "u1", "amount": "2.5000"}


def test_uncollected_at_most_once_per_utc_day():
    state = given([activated()])
    alerts = run(state, [call("u1", "2026-01-05T00:00:00Z", uncollected="1.0000"),
                         call("u2", "2026-01-05T12:00:00Z", uncollected="2.0000"),
                         call("u3", "2026-01-05T23:59:59Z", uncollected="3.0000"),
                         call("u4", "2026-01-06T00:00:00Z", uncollected="4.0000")])
    assert [(alert.facts["day"], alert.facts["usage_id"]) for alert in alerts] == [("2026-01-05", "u1"),
                                                                                   ("2026-01-06", "u4")]


def test_a_call_paid_in_full_gives_no_uncollected_alert():
    state = given([activated(), added(1, "10.0000")])
    assert when(state, call("u1", "2026-01-05T10:00:00Z", ((1, "2.0000"),))) == []
    assert state.last_uncollected_day is None


def test_the_uncollected_day_is_the_utc_day():
    state = given([activated()])
    alert = only(when(state, call("u1", "2026-01-06T01:30:00+02:00", uncollected="1.0000")), CALLS_UNCOLLECTED)
    assert alert.facts["day"] == "2026-01-05"


def test_the_uncollected_day_survives_a_json_round_trip():
    state = given([activated(), call("u1", "2026-01-05T10:00:00Z", uncollected="1.0000")])
    state = OrgAlertState.from_data(json.loads(json.dumps(state.as_data())))
    assert when(state, call("u2", "2026-01-05T11:00:00Z", uncollected="1.0000")) == []


# ----- balance below the trigger ------------------------------------------------------------------

def test_below_trigger_with_auto_recharge_off_is_alerted_on_crossing():
    state = given([activated(enabled=False, trigger="5"), added(1, "10.0000")])
    assert when(state, call("u1", "2026-01-05T10:00:00Z", ((1, "4.0000"),))) == []  # 6 >= 5
    alerts = when(state, call("u2", "2026-01-05T11:00:00Z", ((1, "2.0000"),)), position=12)
    assert only(alerts, BALANCE_BELOW_TRIGGER) == Alert(
        "12:balance_below_trigger", BALANCE_BELOW_TRIGGER, "contoso", 12, "2026-01-05T11:00:00Z",
        {"balance": "4.0000", "trigger_amount": "5.0000", "auto_recharge": "off"})


def test_below_trigger_only_once_while_it_stays_below():
    state = given([activated(enabled=False, trigger="5"), added(1, "10.0000")])
    alerts = run(state, [call(f"u{n}", "2026-01-05T10:00:00Z", ((1, "2.0000"),)) for n in range(5)])
    assert kinds(alerts) == [BALANCE_BELOW_TRIGGER]


def test_below_trigger_is_rearmed_once_the_balance_is_back_above():
    state = given([activated(enabled=False, trigger="5"), added(1, "6.0000"),
                   call("u1", "2026-01-05T10:00:00Z", ((1, "2.0000"),))])
    assert state.below_trigger_alerted
    assert when(state, added(2, "10.0000", source="manual")) == []
    assert not state.below_trigger_alerted
    assert kinds(when(state, call("u2", "2026-01-06T10:00:00Z", ((1, "4.0000"), (2, "6.0000"))))) == [
        BALANCE_BELOW_TRIGGER]


def test_below_trigger_exactly_at_the_trigger_is_not_below():
    state = given([activated(enabled=False, trigger="5"), added(1, "6.0000")])
    assert when(state, call("u1", "2026-01-05T10:00:00Z", ((1, "1.0000"),))) == []


def test_below_trigger_not_while_auto_recharge_is_enabled_and_not_suspended():
    state = given([activated(enabled=True, trigger="5"), added(1, "6.0000")])
    assert when(state, call("u1", "2026-01-05T10:00:00Z", ((1, "4.0000"),))) == []


def test_below_trigger_not_when_there_is_no_trigger():
    state = given([activated(enabled=False, recharge=None, trigger=None), added(1, "6.0000")])
    assert when(state, call("u1", "2026-01-05T10:00:00Z", ((1, "6.0000"),))) == []


def test_below_trigger_is_not_repeated_after_a_failed_recharge():
    """The engine's order: the call crosses the trigger (auto-recharge still on), the recharge fails."""
    state = given([activated(enabled=True, trigger="5"), added(1, "6.0000")])
    alerts = run(state, [call("u1", "2026-01-05T10:00:00Z", ((1, "4.0000"),)), recharge_failed(),
                         call("u2", "2026-01-05T11:00:00Z", ((1, "1.0000"),))])
    assert kinds(alerts) == [RECHARGE_FAILED, AUTO_RECHARGE_SUSPENDED]


def test_below_trigger_while_suspended_says_suspended():
    state = given([activated(enabled=True, trigger="5"), recharge_failed(),
                   added(1, "10.0000", source="auto_recharge")])
    alert = only(when(state, call("u1", "2026-01-05T10:00:00Z", ((1, "6.0000"),))), BALANCE_BELOW_TRIGGER)
    assert alert.facts["auto_recharge"] == "suspended"


def test_below_trigger_by_expiry():
    state = given([activated(enabled=False, trigger="5"), added(1, "3.0000", expires_at="2027-01-02T09:00:00Z"),
                   added(2, "4.0000", expires_at="2027-03-02T09:00:00Z")])
    alerts = when(state, expired(1, "3.0000", "2027-01-02T09:00:00Z"), position=20)
    assert kinds(alerts) == [FUNDS_EXPIRED, BALANCE_BELOW_TRIGGER]
    assert only(alerts, BALANCE_BELOW_TRIGGER).facts["balance"] == "4.0000"


def test_below_trigger_is_not_alerted_by_an_event_that_does_not_lower_the_balance():
    """Configuring a trigger above the balance says nothing; the next debit will."""
    state = given([activated(enabled=False, trigger="1"), added(1, "4.0000")])
    assert when(state, configured(enabled=False, trigger="10")) == []
    assert kinds(when(state, call("u1", "2026-01-05T10:00:00Z", ((1, "1.0000"),)))) == [BALANCE_BELOW_TRIGGER]


def test_alerts_of_one_event_go_out_in_a_fixed_order():
    """The event's own, then below trigger."""
    state = given([activated(enabled=False, trigger="50"), added(1, "10.0000")])
    alerts = when(state, call("u1", "2026-01-05T10:00:00Z", ((1, "1.0000"),), uncollected="1.0000"), position=30)
    assert [alert.id for alert in alerts] == ["30:calls_uncollected", "30:balance_below_trigger"]


# ----- coming expiries: announced by the domain (ExpiryApproached), passed on -------------------

EXPIRES = "2026-06-30T12:00:00Z"
NOTICE = "2026-05-31T12:00:00Z"  # 30 days before EXPIRES: when the engine announces it


def lot_expiring(expires_at: str = EXPIRES, amount: str = "10.0000") -> OrgAlertState:
    return given([activated(enabled=False), added(1, amount, expires_at=expires_at)])


def test_expiry_approached_is_a_funds_expiring_alert_with_the_events_facts():
    alerts = when(lot_expiring(), approached(1, "10.0000", EXPIRES, NOTICE), position=40)
    assert alerts == [Alert("40:funds_expiring", FUNDS_EXPIRING, "contoso", 40, NOTICE,
                            {"lot_number": 1, "remaining": "10.0000", "expires_at": EXPIRES})]


def test_the_alert_tells_what_the_event_says_remains():
    state = lot_expiring()
    when(state, call("u1", "2026-05-01T00:00:00Z", ((1, "2.5000"),)))
    alert = only(when(state, approached(1, "7.5000", EXPIRES, NOTICE)), FUNDS_EXPIRING)
    assert alert.facts == {"lot_number": 1, "remaining": "7.5000", "expires_at": EXPIRES}


def test_expiry_approached_changes_neither_the_balance_nor_anything_else():
    state = given([activated(enabled=False, trigger="50"), added(1, "10.0000", expires_at=EXPIRES),
                   call("u1", "2026-05-01T00:00:00Z", ((1, "1.0000"),))])
    before = state.as_data()
    assert kinds(when(state, approached(1, "9.0000", EXPIRES, NOTICE))) == [FUNDS_EXPIRING]  # no second below-trigger
    assert state.as_data() == before


def test_one_alert_per_event_so_two_lots_at_one_time_have_two_positions():
    """The engine announces each lot with its own event, in debit order."""
    state = given([activated(enabled=False), added(1, "1.0000", expires_at="2026-06-20T00:00:00Z"),
                   added(2, "2.0000", expires_at="2026-06-01T00:00:00Z")])
    alerts = run(state, [approached(2, "2.0000", "2026-06-01T00:00:00Z", "2026-05-25T00:00:00Z"),
                         approached(1, "1.0000", "2026-06-20T00:00:00Z", "2026-05-25T00:00:00Z")], first_position=8)
    assert [(alert.id, alert.facts["lot_number"]) for alert in alerts] == [("8:funds_expiring", 2),
                                                                           ("9:funds_expiring", 1)]


def test_the_rules_never_decide_an_expiry_warning_themselves():
    """Inside a lot's 30-day window, events and the engine's clock say nothing about it: only the
    organization's ExpiryApproached does (the clock's events come from another partition)."""
    for event in (activated(at="2026-06-01T00:00:00Z"), configured(at="2026-06-01T00:00:00Z"),
                  payment_updated(at="2026-06-01T00:00:00Z"), recharge_succeeded(at="2026-06-01T00:00:00Z"),
                  depleted(at="2026-06-01T00:00:00Z"), call("u1", "2026-06-01T00:00:00Z"),
                  ("EngineClock.Advanced", {"at": "2026-06-01T00:00:00Z"})):
        assert FUNDS_EXPIRING not in kinds(when(lot_expiring(), event)), event[0]


# ----- what the rules ignore ----------------------------------------------------------------------

@pytest.mark.parametrize("event", [
    ("LicenceRegistry.UserAdded", {"user": "alice@contoso.com", "usage_location": "US", "at": "2026-06-01T00:00:00Z"}),
    ("EngineClock.Advanced", {"at": "2026-06-01T00:00:00Z"}),
    ("CreditAccount.RechargeTriggered", {"attempt": 1, "reason": "below_trigger", "amount": "25.0000",
                                         "balance": "1.0000", "at": "2026-06-01T00:00:00Z"}),
    ("CreditAccount.OverageAccrued", {"usage_id": "u1", "amount": "1.0000", "month": "2026-06",
                                      "at": "2026-06-01T00:00:00Z"}),
    ("UsageClaim.UsageClaimed", {"usage_id": "u1", "org": "contoso"}),
    ("Something.Unknown", {}),
], ids=lambda event: event[0])
def test_unrelated_events_give_nothing_and_change_nothing(event):
    state = lot_expiring()  # 2026-06-01 is inside its 30-day window: only ExpiryApproached tells
    before = state.as_data()
    assert when(state, event) == []
    assert state.as_data() == before


def test_alert_ids_are_unique_over_a_history():
    state = given([activated(enabled=False, trigger="5")])
    alerts = run(state, [order_placed(), added(1, "6.0000", expires_at="2026-02-01T00:00:00Z"),
                         added(2, "6.0000", expires_at="2026-02-01T00:00:00Z"),
                         call("u1", "2026-01-05T10:00:00Z", ((1, "6.0000"), (2, "3.0000")), "1.0000"),
                         recharge_failed(), depleted(), expired(2, "3.0000", "2026-02-01T00:00:00Z")],
                 first_position=2)
    ids = [alert.id for alert in alerts]
    assert len(ids) == len(set(ids)) and len(ids) >= 6


# ----- state round trip ---------------------------------------------------------------------------

def test_state_round_trips_through_json():
    state = given([activated(enabled=False, trigger="5"), added(1, "6.0000", expires_at="2026-02-01T00:00:00Z"),
                   call("u1", "2026-01-05T10:00:00Z", ((1, "2.0000"),), "1.0000")])
    data = state.as_data()
    assert data == {"org": "contoso", "name": "Contoso", "country": "US", "currency": "USD", "balance": "4.0000",
                    "auto_recharge_enabled": False, "trigger_amount": "5.0000", "suspended": False,
                    "last_uncollected_day": "2026-01-05", "below_trigger_alerted": True}
    assert OrgAlertState.from_data(json.loads(json.dumps(data))) == state


def test_a_state_stored_with_the_former_lot_tracking_still_loads():
    """States saved before the domain announced expiries carry `lots`: they are ignored."""
    data = {**given([activated(), added(1, "6.0000")]).as_data(),
            "lots": [{"number": 1, "remaining": "6.0000", "expires_at": FAR, "warned": False}]}
    state = OrgAlertState.from_data(data)
    assert state.balance == Decimal("6.0000") and "lots" not in state.as_data()


# ----- against the real engine: the SPEC's worked examples ----------------------------------------

SCENARIOS = sorted(SPEC_EXAMPLES.glob("*.jsonl"))
PAGE_SIZE = 500
COUNTED = {  # the engine's event, which of its events count, the alert kind that must match it
    "CreditAccount.RechargeFailed": RECHARGE_FAILED, "CreditAccount.RechargeSucceeded": RECHARGE_SUCCEEDED,
    "CreditAccount.BalanceDepleted": BALANCE_DEPLETED, "CreditAccount.FundsExpired": FUNDS_EXPIRED,
    "CreditAccount.ExpiryApproached": FUNDS_EXPIRING, "Order.OrderPlaced": ORDER_PLACED,
}


def stored_documents(app: BillingApplication) -> Iterator[dict[str, Any]]:
    start = 1
    while page := app.recorder.select_notifications(start, PAGE_SIZE):
        yield from (event_document(notification, app.mapper.transcoder) for notification in page)
        start = page[-1].id + 1


def counts(document: dict[str, Any]) -> bool:
    return document["type"] != "CreditAccount.FundsExpired" or Decimal(document["data"]["amount"]) > 0


class Router:
    """Routes stored events to their organization's state, the way the alert consumer must (the
    engine clock's events belong to no organization: they are not routed)."""

    def __init__(self) -> None:
        self.states: dict[str, OrgAlertState] = {}
        self.org_of_account: dict[str, str] = {}
        self.alerts: list[Alert] = []
        self.events: Counter[str] = Counter()

    def apply(self, document: dict[str, Any]) -> None:
        event_type, data, position = document["type"], document["data"], document["position"]
        self.events[event_type] += counts(document)
        if event_type == "CreditAccount.Opened":
            self.org_of_account[document["aggregate_id"]] = data["org"]
            self.states[data["org"]] = OrgAlertState.opened(data)
        elif event_type.startswith("CreditAccount."):
            self.alerts += alerts_for_event(self.states[self.org_of_account[document["aggregate_id"]]],
                                            event_type, data, position)
        elif event_type == "Order.OrderPlaced":
            self.alerts += alerts_for_event(self.states[data["org"]], event_type, data, position)


def run_scenario(scenario, store: StoreSettings) -> tuple[BillingApplication, Router]:
    app = BillingApplication(env=store.env)
    Simulation(app, SPEC_RATES, load_catalog(None)).run(scenario.read_bytes().splitlines())
    router = Router()
    for document in stored_documents(app):
        router.apply(document)
    return app, router


@pytest.mark.parametrize("store", [memory_store(), sqlite_store(":memory:")], ids=["memory", "sqlite-memory"])
@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda path: path.stem)
def test_spec_examples_through_the_real_engine(scenario, store):
    app, router = run_scenario(scenario, store)
    assert router.states
    for org, state in router.states.items():
        assert state.balance == app.repository.get(CreditAccount.create_id(org)).balance, org
    alert_kinds = Counter(alert.kind for alert in router.alerts)
    for event_type, kind in COUNTED.items():
        assert alert_kinds[kind] == router.events[event_type], kind
    assert alert_kinds[AUTO_RECHARGE_SUSPENDED] == router.events["CreditAccount.RechargeFailed"]
    identities = [(alert.org, alert.id) for alert in router.alerts]
    assert len(identities) == len(set(identities))
    assert all(tuple(alert.facts) == FACTS[alert.kind] for alert in router.alerts)


def alert_ids(scenario: str) -> list[str]:
    return [alert.id for alert in run_scenario(SPEC_EXAMPLES / scenario, memory_store())[1].alerts]


# `simulate` saves once at the end, aggregate by aggregate: an organization's credit account
# events come first (positions 1, 2, ...), then its licence registry's, its order's, the usage
# claims and the engine clock. So a position below is the event's rank in that order.

def test_spec_example_01_alerts():
    """Account events: 1 Opened, 2 CreditsActivated, 3 FundsAdded lot 1 (20.00, expires
    2027-01-02T09:00), 4-6 calls u1-u3: u3 is charged uncollected (bob lacks the credits licence)
    -> 6:calls_uncollected; 7 u4 (16.20) takes the balance 19.77 -> 3.57, below the trigger 5, so
    8 RechargeTriggered, 9 RechargeSucceeded -> 9:recharge_succeeded, 10 FundsAdded lot 2 (25.00,
    expires 2027-01-06T13:00); 11-13 u5-u7 (u7 empties lot 1 and leaves 23.77 in lot 2);
    14 PaymentMethodUpdated. The clock line at 2027-01-02T09:00: lot 1 is due but empty (no
    FundsExpired), and lot 2's notice time 2026-12-07T13:00 has passed while it still holds funds
    -> 15 ExpiryApproached -> 15:funds_expiring. Lines 19-21 are rejected. Then the registry: 16
    Opened, 17-18 UserAdded, 19-20 LicencesAssigned (lines 5 and 8; lines 4 and 6 rejected); 21
    Order.OrderPlaced -> 21:order_placed. Auto-recharge stays on, so no below-trigger alert."""
    assert alert_ids("01-basics.jsonl") == ["6:calls_uncollected", "9:recharge_succeeded", "15:funds_expiring",
                                            "21:order_placed"]


def test_spec_example_02_alerts():
    """Account events: 1 Opened, 2 CreditsActivated, 3 FundsAdded lot 1 (3.50, expires
    2027-01-31T08:00), 4 f1, 5 f2 (balance 0.75 < trigger 1): 6 RechargeTriggered, 7
    RechargeSucceeded -> 7:recharge_succeeded, 8 FundsAdded lot 2 (2.00, expires 2027-02-10T09:20);
    9 f3, 10 f4 (balance 0.679 < 1): 11 RechargeTriggered, 12 RechargeFailed (card expired
    2026-02) -> 12:recharge_failed, 12:auto_recharge_suspended (which counts as the below-trigger
    alert); line 10's funds are declined; 13 PaymentMethodUpdated, 14 FundsAdded lot 3 (4.00,
    expires 2027-03-04T00:00:01), 15 f5 (lot 2 keeps 0.66). Clock 2027-01-31T08:00: lot 1 is due
    but empty; lot 2's notice time 2027-01-11T09:20 has passed -> 16 ExpiryApproached ->
    16:funds_expiring; lot 3's notice time is 2027-02-02T00:00:01, still ahead. Clock
    2027-03-04T00:00:01: the expiry step first, lots 2 and 3 in debit order -> 17:funds_expired,
    18:funds_expired, the balance is 0 -> 19 BalanceDepleted -> 19:balance_depleted, below the
    trigger: 20 RechargeTriggered, 21 RechargeSucceeded -> 21:recharge_succeeded, 22 FundsAdded
    lot 4 (expires 2028). Lot 3's notice is now due, but lot 3 has just expired: no notice (the
    clock jumped over its window). Then 23-26 the registry, 27 Order.OrderPlaced -> 27:order_placed."""
    assert alert_ids("02-expiry-and-recharge.jsonl") == [
        "7:recharge_succeeded", "12:recharge_failed", "12:auto_recharge_suspended", "16:funds_expiring",
        "17:funds_expired", "18:funds_expired", "19:balance_depleted", "21:recharge_succeeded", "27:order_placed"]


def test_spec_example_03_alerts():
    """An NCE organization: no credits, so no lots, recharges or expiries; its calls are paid
    by pools or accrue overage, never uncollected. No alert."""
    assert alert_ids("03-nce-pools-bulk.jsonl") == []


def test_spec_example_04_alerts():
    """Account events: 1 Opened, 2 CreditsActivated by line 5 (line 4 names an unknown agreement,
    line 6 repeats ord-1, line 7's ord-2 is refused), 3 FundsAdded lot 1, 4-6 FundsAdded lots 2-4
    (r-1's repeat adds nothing), 7-8
    calls a1, a2 paid in full. Auto-recharge is off with no trigger; the lots expire in 2027-06 and
    the last line is 2026-07-01, long before their notice times. Then 9-12 the registry, 13
    Order.OrderPlaced -> 13:order_placed."""
    assert alert_ids("04-idempotent-retries.jsonl") == ["13:order_placed"]
