"""SPEC §7 (lots, debit, expiry), §8 (auto-recharge) and §9 (orders and payments) as tables.

Most rows use a one-row rate card, USD outbound prefix 1 at 1.0000 per minute and no fee, so a
call of N minutes to +1… costs exactly N.0000 and the arithmetic stays visible. Expected values
are worked out by hand from the SPEC.
"""

import orjson
import pytest

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from application.settings import memory_store
from commcredits.simulate import Simulation, report_document
from domain.money import format_money
from domain.payments import PaymentOutcome, SimulatedGateway
from tests.e2e.test_spec_rules import (
    ACME,
    ALICE,
    CARD,
    EA,
    OFF,
    ORG,
    PAYG,
    T0,
    assert_accepted,
    assert_changes_nothing,
    assert_fields,
    assert_rejected_last,
    assigned,
    auto,
    cdr,
    check_invariants,
    clock,
    configured,
    funds,
    inactive,
    nce,
    order,
    org_created,
    payment_updated,
    rate_card,
    removed,
    run,
    user_added,
    without,
)

UNIT = "1,outbound,1,0,USD,2000-01-01T00:00:00Z"          # 1.0000 per minute everywhere in +1
DECLINE = {"method": "card", "card": "decline-1", "expires": "2030-12"}
JAN_CARD = {"method": "card", "card": "visa-jan", "expires": "2026-01"}   # valid through 2026-01-31T23:59:59
UNKNOWN_EA = {"method": "enterprise_agreement", "agreement": "EA-404", "po": None}
NO_RECHARGES = {"triggered": 0, "succeeded": 0, "failed": 0}


def account(funds="10", *, auto_recharge=OFF, payment=CARD, at=T0):
    """Legacy organization, alice (US, PAYG + COMMUNICATIONS_CREDITS), order placed at `at`."""
    return [org_created(at=at), user_added(at=at), assigned(ALICE, list(PAYG), at=at),
            order(funds, auto_recharge=auto_recharge, payment=payment, at=at),
            assigned(ALICE, "COMMUNICATIONS_CREDITS", at=at)]


def minutes(usage_id, count, start="2026-01-10T10:00:00Z"):
    """A call costing `count`.0000 on the UNIT card."""
    return cdr(usage_id, seconds=60 * count, start=start)


def lots(report, source=None):
    return [lot for lot in report["organizations"][ORG]["lots"] if source in (None, lot["source"])]


def unit(lines, expected=None):
    report = run(lines, rates=UNIT)
    assert report["rejected"] == []
    if expected:
        assert_fields(report, expected)
    return report


# === §7 lots, debit, expiry =====================================================================

@pytest.mark.parametrize("at, added_at, expires_at", [
    ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
    ("2024-02-29T12:00:00Z", "2024-02-29T12:00:00Z", "2025-02-28T12:00:00Z"),   # no 29 Feb 2025
    ("2028-02-29T23:59:59Z", "2028-02-29T23:59:59Z", "2029-02-28T23:59:59Z"),
    ("2024-02-28T08:00:00Z", "2024-02-28T08:00:00Z", "2025-02-28T08:00:00Z"),
    ("2026-01-31T10:00:00Z", "2026-01-31T10:00:00Z", "2027-01-31T10:00:00Z"),
    ("2026-03-31T23:59:59Z", "2026-03-31T23:59:59Z", "2027-03-31T23:59:59Z"),
    ("2027-02-28T00:00:00Z", "2027-02-28T00:00:00Z", "2028-02-28T00:00:00Z"),   # 2028 is leap: stays 28
    ("2026-09-01T00:30:00+02:00", "2026-08-31T22:30:00Z", "2027-08-31T22:30:00Z"),  # month of the UTC time
])
def test_s7_lot_expires_12_calendar_months_later(at, added_at, expires_at):
    report = unit(account(at=at))
    assert lots(report) == [{"source": "order", "added_at": added_at, "expires_at": expires_at,
                             "amount": "10.0000", "remaining": "10.0000", "expired": "0.0000"}]


def test_s7_lot_sources():
    report = unit([*account(auto_recharge=auto("5", "9.5")), funds("2"), minutes("u1", 3)])
    # 10 + 2 = 12; call 3 → 9 < 9.5 → one below_trigger recharge of 5 → 14
    assert [lot["source"] for lot in lots(report)] == ["order", "manual", "auto_recharge"]
    assert_fields(report, {ACME + "balance": "14.0000", ACME + "totals.funds_added": "17.0000",
                           ACME + "totals.charged": "3.0000"})


@pytest.mark.parametrize("ops, remaining", [
    # order 10 and funds 10 (later expiry): 15 taken first from the order's lot
    ([funds("10", at="2026-02-01T00:00:00Z"), minutes("u1", 15, start="2026-02-10T10:00:00Z")],
     ["0.0000", "5.0000"]),
    # same time (same added_at and expires_at): creation order
    ([funds("10", at=T0), minutes("u1", 13)], ["0.0000", "7.0000"]),
    # debit of less than the first lot
    ([funds("10", at=T0), minutes("u1", 4)], ["6.0000", "10.0000"]),
])
def test_s7_debit_oldest_expiry_first(ops, remaining):
    report = unit([*account(), *ops])
    assert [lot["remaining"] for lot in lots(report)] == remaining


def test_s7_debit_order_is_by_expires_at_not_creation():
    # order at 2024-02-28T23:00 expires 2025-02-28T23:00; funds at 2024-02-29T00:00 expire
    # 2025-02-28T00:00 — earlier, so the later lot is debited first
    report = unit([*account("5", at="2024-02-28T23:00:00Z"), funds("5", at="2024-02-29T00:00:00Z"),
                   minutes("u1", 3, start="2024-03-10T10:00:00Z")])
    assert [(lot["expires_at"], lot["remaining"]) for lot in lots(report)] == [
        ("2025-02-28T23:00:00Z", "5.0000"), ("2025-02-28T00:00:00Z", "2.0000")]


def test_s7_same_expiry_then_added_at():
    # both expire 2025-02-28T10:00: the one added first (2024-02-28) is debited first
    report = unit([*account("5", at="2024-02-28T10:00:00Z"), funds("5", at="2024-02-29T10:00:00Z"),
                   minutes("u1", 3, start="2024-03-10T10:00:00Z")])
    assert [(lot["expires_at"], lot["remaining"]) for lot in lots(report)] == [
        ("2025-02-28T10:00:00Z", "2.0000"), ("2025-02-28T10:00:00Z", "5.0000")]


def test_s7_expiry_step_runs_at_line_time_before_the_line():
    # lot of 10 expires 2027-01-01T00:00:00Z; the call ends exactly then: the lot expires first
    # (expires_at <= now), the 1.0000 call finds 0 → uncollected, insufficient_funds
    report = unit([*account(), cdr("u1", start="2026-12-31T23:59:00Z", seconds=60)])
    assert_fields(report, {"calls.u1.debited": "0.0000", "calls.u1.uncollected": "1.0000",
                           "calls.u1.reason": "insufficient_funds", ACME + "lots.0.expired": "10.0000",
                           ACME + "totals.expired": "10.0000", ACME + "depleted": 1, ACME + "balance": "0.0000"})


def test_s7_lot_not_yet_expired_one_second_before():
    report = unit([*account(), cdr("u1", start="2026-12-31T23:58:59Z", seconds=60),
                   clock("2027-01-01T00:00:00Z")])
    # debited 1 at 23:59:59, then the remaining 9 expire at midnight
    assert_fields(report, {"calls.u1.debited": "1.0000", ACME + "lots.0.expired": "9.0000",
                           ACME + "lots.0.remaining": "0.0000", ACME + "totals.expired": "9.0000",
                           ACME + "depleted": 1})


def test_s7_several_lots_expire_together_and_deplete_once():
    # order 10 (expires 2027-01-01), funds 5 on 2026-01-15 (expires 2027-01-15), 3 used;
    # the clock jumps past both: 7 + 5 = 12 expire in one step, one depletion
    report = unit([*account(), funds("5", at="2026-01-15T00:00:00Z"),
                   minutes("u1", 3, start="2026-02-01T00:00:00Z"), clock("2027-02-01T00:00:00Z")])
    assert [lot["expired"] for lot in lots(report)] == ["7.0000", "5.0000"]
    assert_fields(report, {ACME + "totals.expired": "12.0000", ACME + "depleted": 1, ACME + "balance": "0.0000"})


def test_s7_expired_lot_keeps_only_what_was_not_used():
    report = unit([*account(), minutes("u1", 4), clock("2027-01-01T00:00:00Z"), funds("1", at="2027-01-02T00:00:00Z")])
    assert_fields(report, {ACME + "lots.0.remaining": "0.0000", ACME + "lots.0.expired": "6.0000",
                           ACME + "balance": "1.0000", ACME + "totals.funds_added": "11.0000",
                           ACME + "totals.charged": "4.0000", ACME + "totals.expired": "6.0000"})


DEPLETION = [
    # (id, ops after account("3"), depleted, balance, expected call fields)
    ("exactly-to-zero", [minutes("u1", 3)], 1, "0.0000",
     {"calls.u1.debited": "3.0000", "calls.u1.uncollected": "0.0000", "calls.u1.reason": None}),
    ("beyond-zero", [minutes("u1", 5)], 1, "0.0000",
     {"calls.u1.debited": "3.0000", "calls.u1.uncollected": "2.0000", "calls.u1.reason": "insufficient_funds"}),
    ("not-to-zero", [minutes("u1", 2)], 0, "1.0000", {"calls.u1.debited": "2.0000"}),
    ("at-zero-again-no-count", [minutes("u1", 3), minutes("u2", 1, start="2026-01-11T10:00:00Z")], 1, "0.0000",
     {"calls.u2.uncollected": "1.0000", "calls.u2.reason": "insufficient_funds"}),
    ("twice-after-refill", [minutes("u1", 3), funds("2", at="2026-01-11T00:00:00Z"),
                            minutes("u2", 2, start="2026-01-12T10:00:00Z")], 2, "0.0000", {}),
    ("expiry-to-zero", [minutes("u1", 1), clock("2027-01-01T00:00:00Z")], 1, "0.0000",
     {ACME + "lots.0.expired": "2.0000"}),
    # one lot expires, another still holds funds: not depleted
    ("expiry-not-to-zero", [funds("5", at="2026-06-01T00:00:00Z"), clock("2027-01-02T00:00:00Z")], 0, "5.0000",
     {ACME + "lots.0.expired": "3.0000"}),
    # a used-up lot does not expire: no second depletion
    ("spent-lot-does-not-expire", [minutes("u1", 3), clock("2027-06-01T00:00:00Z")], 1, "0.0000",
     {ACME + "lots.0.expired": "0.0000"}),
]


@pytest.mark.parametrize("ops, depleted, balance, expected", [pytest.param(*row[1:], id=row[0]) for row in DEPLETION])
def test_s7_depletion(ops, depleted, balance, expected):
    unit([*account("3"), *ops], {ACME + "depleted": depleted, ACME + "balance": balance, **expected})


def test_s7_never_funded_is_not_depleted():
    # balance 0 → 0 is not a depletion (only > 0 → 0)
    unit([*account("0"), minutes("u1", 2)],
         {ACME + "depleted": 0, "calls.u1.uncollected": "2.0000", "calls.u1.reason": "insufficient_funds"})


# === §8 auto-recharge ============================================================================

RECHARGE = [
    # (id, order funds, settings, ops, balance, recharges (triggered, succeeded, failed), depleted, call fields)
    # before the debit: 0 < 3 → recharge 5 → 5 >= 3 → debit → 2 (trigger 0: 2 < 0 false)
    ("before-debit-once", "0", auto("5", "0"), [minutes("u1", 3)], "2.0000", (1, 1, 0), 0,
     {"calls.u1.debited": "3.0000"}),
    # 0 → 5 → 10 → 15 >= 12 → debit → 3
    ("before-debit-until-enough", "0", auto("5", "0"), [minutes("u1", 12)], "3.0000", (3, 3, 0), 0, {}),
    # 1 per recharge, 15 needed, at most 10 recharges: 10 debited, 5 uncollected, 10 → 0 depleted
    ("at-most-10-per-call", "0", auto("1", "0"), [minutes("u1", 15)], "0.0000", (10, 10, 0), 1,
     {"calls.u1.debited": "10.0000", "calls.u1.uncollected": "5.0000", "calls.u1.reason": "insufficient_funds"}),
    # the limit is per call: a second call gets its own 10
    ("limit-per-call", "0", auto("1", "0"), [minutes("u1", 15), minutes("u2", 3, start="2026-01-11T10:00:00Z")],
     "0.0000", (13, 13, 0), 2, {"calls.u2.debited": "3.0000"}),
    # 1 < 3 → recharge 2 → 3 → debit → 0 (depleted, after the recharge), trigger 0: nothing more
    ("deplete-after-recharge", "1", auto("2", "0"), [minutes("u1", 3)], "0.0000", (1, 1, 0), 1, {}),
    # …with trigger 0.5: depleted, then below_trigger recharge → 2
    ("deplete-then-below-trigger", "1", auto("2", "0.5"), [minutes("u1", 3)], "2.0000", (2, 2, 0), 1, {}),
    # 10 − 1 = 9 < 100 → one recharge only → 14
    ("below-trigger-once", "10", auto("5", "100"), [minutes("u1", 1)], "14.0000", (1, 1, 0), 0, {}),
    # 10 − 1 = 9, not < 9
    ("at-trigger-no-recharge", "10", auto("5", "9"), [minutes("u1", 1)], "9.0000", (0, 0, 0), 0, {}),
    # trigger 0: 3 − 3 = 0, not < 0
    ("trigger-zero", "3", auto("5", "0"), [minutes("u1", 3)], "0.0000", (0, 0, 0), 1, {}),
    # disabled: nothing
    ("disabled", "1", OFF, [minutes("u1", 3)], "0.0000", (0, 0, 0), 1, {"calls.u1.uncollected": "2.0000"}),
    # enabled but configured off later
    ("configured-off", "1", auto("5", "2"), [configured(False), minutes("u1", 3)], "0.0000", (0, 0, 0), 1, {}),
    # order, funds, configure, payment method, licence changes never check the trigger (10 < 50)
    ("commands-never-check", "10", auto("5", "50"),
     [funds("1"), configured(True, "5", "60"), payment_updated(EA), assigned(ALICE, "AUDIO_CONFERENCING"),
      clock("2026-06-01T00:00:00Z")],                       # an expiry step where nothing expires neither
     "11.0000", (0, 0, 0), 0, {}),
    # …the next debit does: 11 − 1 = 10 < 60 → one recharge → 15
    ("next-debit-checks", "10", auto("5", "50"),
     [funds("1"), configured(True, "5", "60"), minutes("u1", 1, start="2026-01-10T10:00:00Z")],
     "15.0000", (1, 1, 0), 0, {}),
    # the limit is on the recharges before the debit: 10 of 1 → debit 10 → 0 (depleted), then
    # one below_trigger recharge (0 < 5) → 1
    ("below-trigger-after-the-10", "0", auto("1", "5"), [minutes("u1", 15)], "1.0000", (11, 11, 0), 1,
     {"calls.u1.debited": "10.0000", "calls.u1.uncollected": "5.0000"}),
    # 0 → recharge 5 → debit 5 → exactly 0: depleted (5 > 0 before the debit)
    ("recharged-then-debited-to-zero", "0", auto("5", "0"), [minutes("u1", 5)], "0.0000", (1, 1, 0), 1,
     {"calls.u1.reason": None}),
    # a call left uncollected for want of the user's licence debits nothing: no trigger (1 < 50)
    ("no-debit-no-trigger", "1", auto("5", "50"), [removed(ALICE, "COMMUNICATIONS_CREDITS"), minutes("u1", 2)],
     "1.0000", (0, 0, 0), 0, {"calls.u1.reason": "no_credits_licence", "calls.u1.uncollected": "2.0000"}),
    # two lots expire in one step: depletion and the trigger are checked once → one recharge
    ("one-step-one-recharge", "10", auto("3", "1"), [funds("4", at="2026-01-20T00:00:00Z"),
                                                     clock("2027-02-01T00:00:00Z")], "3.0000", (1, 1, 0), 1,
     {ACME + "totals.expired": "14.0000"}),
    # free, zero-second and overage-free calls debit nothing: no trigger (10 < 50)
    ("free-call-no-trigger", "10", auto("5", "50"),
     [cdr("u1", call_type="user_in", caller="+12065550123", dest="+14255550100", seconds=600),
      cdr("u2", seconds=0), cdr("u3", call_type="emergency_out", dest="911", seconds=600)],
     "10.0000", (0, 0, 0), 0, {}),
    # enterprise agreement payments are always accepted
    ("enterprise-agreement", "0", auto("5", "0"), [payment_updated(EA), minutes("u1", 3)], "2.0000", (1, 1, 0), 0, {}),
]


@pytest.mark.parametrize("funds_, settings, ops, balance, recharges, depleted, expected",
                         [pytest.param(*row[1:], id=row[0]) for row in RECHARGE])
def test_s8_auto_recharge(funds_, settings, ops, balance, recharges, depleted, expected):
    report = unit([*account(funds_, auto_recharge=settings), *ops],
                  {ACME + "balance": balance, ACME + "depleted": depleted, **expected})
    triggered, succeeded, failed = recharges
    assert report["organizations"][ORG]["recharges"] == {"triggered": triggered, "succeeded": succeeded,
                                                          "failed": failed}
    assert len(lots(report, "auto_recharge")) == succeeded


def test_s8_recharge_is_dated_at_the_line_and_adds_a_lot():
    report = unit([*account("0", auto_recharge=auto("5", "0")), minutes("u1", 3, start="2026-02-03T04:05:00Z")])
    # the call ends 2026-02-03T04:08:00Z
    assert lots(report, "auto_recharge") == [{"source": "auto_recharge", "added_at": "2026-02-03T04:08:00Z",
                                              "expires_at": "2027-02-03T04:08:00Z", "amount": "5.0000",
                                              "remaining": "2.0000", "expired": "0.0000"}]


def test_s8_expiry_triggers_a_recharge_at_the_expiry_time():
    # order 10 at T0 (expires 2027-01-01), funds 1 later; at 2027-01-01 the 10 expire: 1 < 5 → +20
    report = unit([*account(auto_recharge=auto("20", "5")), funds("1", at="2026-06-01T00:00:00Z"),
                   clock("2027-01-01T00:00:00Z")])
    assert_fields(report, {ACME + "balance": "21.0000", ACME + "depleted": 0, ACME + "recharges.succeeded": 1,
                           ACME + "lots.2.source": "auto_recharge", ACME + "lots.2.added_at": "2027-01-01T00:00:00Z"})


def test_s8_expiry_step_runs_before_manual_funds_are_added():
    # at 2027-01-02 the order's 10 expire first (depleted; 0 < 3 → auto-recharge 5), then the
    # manual 2 are added: lots in creation order order, auto_recharge, manual; balance 7
    report = unit([*account(auto_recharge=auto("5", "3")), funds("2", at="2027-01-02T00:00:00Z")])
    assert [lot["source"] for lot in lots(report)] == ["order", "auto_recharge", "manual"]
    assert_fields(report, {ACME + "balance": "7.0000", ACME + "depleted": 1, ACME + "totals.expired": "10.0000"})


def test_s8_expiry_step_before_a_cdr_recharges_then_the_call_debits():
    # call ends 2027-01-05T10:03:00Z: lot of 10 expires (depleted), 0 < 2 → +5; then the call
    # costs 3: 5 >= 3 → 2, not < 2
    report = unit([*account(auto_recharge=auto("5", "2")), minutes("u1", 3, start="2027-01-05T10:00:00Z")])
    assert_fields(report, {ACME + "balance": "2.0000", ACME + "depleted": 1, ACME + "recharges.triggered": 1,
                           ACME + "totals.expired": "10.0000", "calls.u1.debited": "3.0000",
                           ACME + "lots.1.added_at": "2027-01-05T10:03:00Z"})


@pytest.mark.parametrize("payment, switch, first_call_start", [
    (CARD, [payment_updated(DECLINE)], "2026-01-10T10:00:00Z"),
    (JAN_CARD, [], "2026-02-01T00:00:00Z"),      # the card was good for the order, expired by the call
], ids=["decline-card", "expired-card"])
def test_s8_failed_recharge_suspends(payment, switch, first_call_start):
    # 2 < 3 → attempt fails → suspended: debit 2, 1 uncollected; no after-debit attempt;
    # the next call makes no attempt at all
    report = unit([*account("2", auto_recharge=auto("5", "1"), payment=payment), *switch,
                   minutes("u1", 3, start=first_call_start), minutes("u2", 2, start="2026-02-10T10:00:00Z")],
                  {"calls.u1.debited": "2.0000", "calls.u1.uncollected": "1.0000",
                   "calls.u1.reason": "insufficient_funds", "calls.u2.uncollected": "2.0000",
                   ACME + "recharges": {"triggered": 1, "succeeded": 0, "failed": 1},
                   ACME + "auto_recharge.suspended": True, ACME + "auto_recharge.enabled": True, ACME + "depleted": 1})
    assert lots(report, "auto_recharge") == []


# the order is paid by card, then the card is replaced by one that declines: the 3-minute call
# finds 2, its recharge fails → suspended (7 lines)
SUSPENDED = [*account("2", auto_recharge=auto("5", "1")), payment_updated(DECLINE), minutes("u1", 3)]


@pytest.mark.parametrize("lift, recharges, balance, suspended", [
    # new card: suspension lifted, no recharge at the update; the next call (2 min, balance 0):
    # recharge 5 → debit 2 → 3, not < 1
    (payment_updated(CARD, at="2026-02-01T00:00:00Z"), {"triggered": 2, "succeeded": 1, "failed": 1}, "3.0000",
     False),
    # configured again (same declining card): lifted, the next call tries again and fails again
    (configured(True, "5", "1", at="2026-02-01T00:00:00Z"), {"triggered": 2, "succeeded": 0, "failed": 2},
     "0.0000", True),
    # configured with a new amount, and a card in between
    (payment_updated(EA, at="2026-02-01T00:00:00Z"), {"triggered": 2, "succeeded": 1, "failed": 1}, "3.0000", False),
], ids=["payment-method-updated", "auto-recharge-configured", "enterprise-agreement"])
def test_s8_suspension_is_lifted(lift, recharges, balance, suspended):
    lifted = unit([*SUSPENDED, lift], {ACME + "auto_recharge.suspended": False,
                                       ACME + "recharges": {"triggered": 1, "succeeded": 0, "failed": 1}})
    assert lifted["organizations"][ORG]["balance"] == "0.0000"       # lifting recharges nothing
    unit([*SUSPENDED, lift, minutes("u2", 2, start="2026-02-10T10:00:00Z")],
         {ACME + "recharges": recharges, ACME + "balance": balance, ACME + "auto_recharge.suspended": suspended})


def test_s8_configured_off_clears_suspension():
    unit([*SUSPENDED, configured(False, at="2026-02-01T00:00:00Z")],
         {ACME + "auto_recharge": {"enabled": False, "recharge_amount": None, "trigger_amount": None,
                                "suspended": False}})


def test_s8_declined_manual_funds_do_not_lift_suspension():
    report = run([*SUSPENDED, funds("5", at="2026-02-01T00:00:00Z")], rates=UNIT)
    assert report["rejected"] == [{"line": 8, "code": "payment_declined"}]
    assert_fields(report, {ACME + "auto_recharge.suspended": True, ACME + "balance": "0.0000"})


# === §9 orders and payments ======================================================================

def test_s9_order_activates_credits_and_charges_initial_funds():
    report = unit(account("25.5", auto_recharge=auto("10", "2"), payment=EA))
    assert report["organizations"][ORG]["auto_recharge"] == {
        "enabled": True, "recharge_amount": "10.0000", "trigger_amount": "2.0000", "suspended": False}
    assert_fields(report, {ACME + "credits_active": True, ACME + "balance": "25.5000", ACME + "lots.0.source": "order",
                           ACME + "totals.funds_added": "25.5000"})


@pytest.mark.parametrize("repeat", [
    order(at="2026-01-05T00:00:00Z"),
    order("999", auto_recharge=auto("1", "1"), payment=DECLINE, at="2026-01-05T00:00:00Z"),   # not compared
    order("999", payment=UNKNOWN_EA, at="2026-01-05T00:00:00Z"),
], ids=["identical", "different-content", "unknown-agreement"])
def test_s9_order_repeated_with_same_id_is_a_no_op(repeat):
    report = unit([*account(auto_recharge=auto("5", "1")), repeat])
    assert_fields(report, {ACME + "balance": "10.0000", ACME + "auto_recharge.recharge_amount": "5.0000"})
    assert len(lots(report)) == 1


def test_s9_second_order_with_another_id_is_already_configured():
    assert_changes_nothing(account(), order("5", order_id="o-2", at="2026-01-05T00:00:00Z"), "already_configured")


@pytest.mark.parametrize("payment", [
    DECLINE,
    {"method": "card", "card": "decline", "expires": "2030-12"},
    {"method": "card", "card": "visa-1", "expires": "2025-12"},              # expired before the order
], ids=["decline-prefix", "decline-exactly", "expired-card"])
def test_s9_declined_order_changes_nothing(payment):
    lines = [org_created(), user_added(), order("10", payment=payment)]
    report = assert_rejected_last(lines, "payment_declined")
    assert_fields(report, {ACME + "credits_active": False, ACME + "balance": "0.0000", ACME + "lots": []})
    # not placed: the same id, or another, may be placed afterwards
    for order_id in ("o-1", "o-2"):
        retried = run([*lines, order("10", order_id=order_id, at="2026-01-02T00:00:00Z")])
        assert retried["rejected"] == [{"line": 3, "code": "payment_declined"}]
        assert_fields(retried, {ACME + "credits_active": True, ACME + "balance": "10.0000"})


@pytest.mark.parametrize("at, code", [
    ("2026-01-31T23:59:59Z", None),                 # valid through the last instant of January
    ("2026-01-31T23:59:59.999Z", None),
    ("2026-02-01T00:00:00Z", "payment_declined"),
    ("2026-02-01T00:30:00+01:00", None),            # = 2026-01-31T23:30:00Z
])
def test_s9_card_valid_through_its_expiry_month(at, code):
    lines = [org_created(), user_added(), order("10", payment=JAN_CARD, at=at)]
    report = run(lines)
    assert report["rejected"] == ([] if code is None else [{"line": 3, "code": code}])


@pytest.mark.parametrize("payment", [
    {"method": "card", "card": "visa-decline", "expires": "2030-12"},     # "decline" not at the start
    {"method": "enterprise_agreement", "agreement": "EA-1", "po": "PO-7"},
    {"method": "enterprise_agreement", "agreement": "EA-1", "po": None},
])
def test_s9_accepted_payment_methods(payment):
    unit([org_created(), user_added(), order("10", payment=payment)], {ACME + "balance": "10.0000"})


@pytest.mark.parametrize("payment", [DECLINE, {"method": "card", "card": "visa-1", "expires": "2020-01"}],
                         ids=["decline", "expired"])
def test_s9_order_with_zero_funds_attempts_no_payment(payment):
    unit([org_created(), user_added(), order("0", payment=payment)],
         {ACME + "credits_active": True, ACME + "balance": "0.0000", ACME + "totals.funds_added": "0.0000"})


@pytest.mark.parametrize("lines", [
    [org_created(), order(payment=UNKNOWN_EA)],
    [org_created(agreements=None), order(payment=EA)],                         # no agreements at all
    [org_created(agreements=[]), order(payment=EA)],
    [*account(), payment_updated(UNKNOWN_EA)],
], ids=["order-unknown", "order-org-without-agreements", "order-empty-agreements", "payment-method-unknown"])
def test_s9_unknown_agreement(lines):
    assert_rejected_last(lines, "unknown_agreement")


def test_s9_manual_funds_declined_change_nothing():
    assert_changes_nothing(account("10", payment=DECLINE)[:3] + [order("0", payment=DECLINE)] + account()[4:],
                           funds("5"), "payment_declined")


def test_s9_manual_funds_use_the_current_payment_method():
    report = run([*account(), payment_updated(DECLINE), funds("5", at="2026-01-03T00:00:00Z"),
                  payment_updated(CARD, at="2026-01-04T00:00:00Z"), funds("5", at="2026-01-05T00:00:00Z")])
    assert report["rejected"] == [{"line": 7, "code": "payment_declined"}]
    assert_fields(report, {ACME + "balance": "15.0000", ACME + "lots.1.source": "manual",
                           ACME + "lots.1.added_at": "2026-01-05T00:00:00Z"})


FUNDS_IDEMPOTENCY = [
    # (id, lines after account(), rejected, balance, number of manual lots)
    ("repeat-is-no-op", [funds("5", request_id="r-1"), funds("5", request_id="r-1", at="2026-01-03T00:00:00Z")],
     [], "15.0000", 1),
    ("repeat-other-amount-not-compared", [funds("5", request_id="r-1"), funds("7", request_id="r-1")],
     [], "15.0000", 1),
    ("repeat-not-paid-again", [funds("5", request_id="r-1"), payment_updated(DECLINE),
                               funds("5", request_id="r-1")], [], "15.0000", 1),
    ("repeat-still-validated", [funds("5", request_id="r-1"), funds("5.00001", request_id="r-1")],
     [{"line": 7, "code": "invalid_input"}], "15.0000", 1),
    ("repeat-on-unknown-org", [funds("5", request_id="r-1"), funds("5", request_id="r-1", org="nowhere")],
     [{"line": 7, "code": "unknown_organization"}], "15.0000", 1),
    ("rejected-does-not-reserve", [payment_updated(DECLINE), funds("5", request_id="r-1"),
                                   payment_updated(CARD), funds("5", request_id="r-1")],
     [{"line": 7, "code": "payment_declined"}], "15.0000", 1),
    ("invalid-does-not-reserve", [funds("-5", request_id="r-1"), funds("5", request_id="r-1")],
     [{"line": 6, "code": "invalid_input"}], "15.0000", 1),
    ("other-ids-are-separate", [funds("5", request_id="r-1"), funds("5", request_id="r-2")], [], "20.0000", 2),
    ("no-id-never-a-repeat", [funds("5"), funds("5")], [], "20.0000", 2),
    ("order-id-is-not-a-request-id", [funds("5", request_id="o-1")], [], "15.0000", 1),
]


@pytest.mark.parametrize("ops, rejected, balance, manual_lots",
                         [pytest.param(*row[1:], id=row[0]) for row in FUNDS_IDEMPOTENCY])
def test_s9_funds_request_id_idempotency(ops, rejected, balance, manual_lots):
    report = run([*account(), *ops])
    assert report["rejected"] == rejected
    assert report["organizations"][ORG]["balance"] == balance
    assert len(lots(report, "manual")) == manual_lots


def test_s9_request_ids_are_per_organization():
    beta = [org_created("beta"), order("10", org="beta", order_id="o-b")]
    report = assert_accepted([*account(), *beta, funds("5", request_id="r-1"),
                              funds("6", request_id="r-1", org="beta")])
    assert_fields(report, {ACME + "balance": "15.0000", "organizations.beta.balance": "16.0000"})


@pytest.mark.parametrize("line", [
    funds("5"), configured(True, "5", "1"), configured(False), payment_updated(CARD),
])
def test_s9_credits_commands_need_an_order(line):
    assert_changes_nothing(inactive(), line, "credits_not_active")


@pytest.mark.parametrize("line", [
    order(), funds("5"), configured(True, "5", "1"), payment_updated(CARD), assigned(ALICE, "COMMUNICATIONS_CREDITS"),
])
def test_s9_credits_commands_on_nce(line):
    assert_changes_nothing(nce(), line, "nce_not_eligible")


BAD_SETTINGS = [
    {"enabled": True},
    {"enabled": True, "recharge_amount": "10"},
    {"enabled": True, "trigger_amount": "1"},
    {"enabled": True, "recharge_amount": "0", "trigger_amount": "1"},
    {"enabled": True, "recharge_amount": "-10", "trigger_amount": "1"},
    {"enabled": True, "recharge_amount": "10", "trigger_amount": "-1"},
    {"enabled": True, "recharge_amount": "10", "trigger_amount": "1.00001"},
    {"enabled": True, "recharge_amount": "1000000.0001", "trigger_amount": "1"},
    {"enabled": True, "recharge_amount": "10", "trigger_amount": "1000001"},
    {"enabled": True, "recharge_amount": 10, "trigger_amount": "1"},
    {"enabled": True, "recharge_amount": "10", "trigger_amount": None},
    {"enabled": "true", "recharge_amount": "10", "trigger_amount": "1"},
    {"enabled": 1, "recharge_amount": "10", "trigger_amount": "1"},
    {"recharge_amount": "10", "trigger_amount": "1"},
    {"enabled": False, "recharge_amount": "0"},                 # given: validated
    {"enabled": False, "recharge_amount": "10", "trigger_amount": "x"},
]


@pytest.mark.parametrize("settings", [*BAD_SETTINGS, "off", None, [], True], ids=repr)
def test_s9_bad_auto_recharge_settings_in_an_order(settings):
    assert_changes_nothing([org_created(), user_added()], order(auto_recharge=settings), "invalid_input")


@pytest.mark.parametrize("settings", BAD_SETTINGS, ids=repr)
def test_s9_bad_auto_recharge_settings_configured(settings):
    line = {"type": "auto_recharge.configured", "at": "2026-01-02T00:00:00Z", "org": ORG} | settings
    assert_changes_nothing(account(auto_recharge=auto("5", "1")), line, "invalid_input")


@pytest.mark.parametrize("settings, shown", [
    ({"enabled": False}, {"enabled": False, "recharge_amount": None, "trigger_amount": None}),
    ({"enabled": False, "recharge_amount": "10", "trigger_amount": "2"},
     {"enabled": False, "recharge_amount": "10.0000", "trigger_amount": "2.0000"}),
    ({"enabled": True, "recharge_amount": "10", "trigger_amount": "0"},
     {"enabled": True, "recharge_amount": "10.0000", "trigger_amount": "0.0000"}),
    ({"enabled": True, "recharge_amount": "1000000", "trigger_amount": "1000000"},
     {"enabled": True, "recharge_amount": "1000000.0000", "trigger_amount": "1000000.0000"}),
    ({"enabled": True, "recharge_amount": "0.0001", "trigger_amount": "0.0000"},
     {"enabled": True, "recharge_amount": "0.0001", "trigger_amount": "0.0000"}),
])
def test_s9_auto_recharge_settings_shown(settings, shown):
    ordered = unit([org_created(), order(auto_recharge=settings)])
    assert ordered["organizations"][ORG]["auto_recharge"] == shown | {"suspended": False}
    line = {"type": "auto_recharge.configured", "at": "2026-01-02T00:00:00Z", "org": ORG} | settings
    reconfigured = unit([org_created(), order(auto_recharge=auto("5", "1")), line])
    assert reconfigured["organizations"][ORG]["auto_recharge"] == shown | {"suspended": False}


@pytest.mark.parametrize("payment", [
    {"method": "cash"},
    {"method": "card", "card": "visa-1"},
    {"method": "card", "card": "visa-1", "expires": "2026-13"},
    {"method": "card", "card": "visa-1", "expires": "26-01"},
    {"method": "card", "card": "visa-1", "expires": "2026-1"},
    {"method": "card", "card": 5, "expires": "2030-12"},
    {"method": "card", "card": "", "expires": "2030-12"},
    {"method": "enterprise_agreement", "po": "PO-1"},
    {"method": "enterprise_agreement", "agreement": "EA-1", "po": 5},
    "visa-1",
    None,
], ids=repr)
def test_s9_bad_payment_methods(payment):
    assert_changes_nothing([org_created(), user_added()], order(payment=payment), "invalid_input")
    assert_changes_nothing(account(), payment_updated(payment), "invalid_input")


@pytest.mark.parametrize("amount", ["-1", "1000001", "1.00001", "abc", 10, None])
def test_s9_bad_order_funds(amount):
    assert_changes_nothing([org_created(), user_added()], order(amount), "invalid_input")


def test_s9_payment_method_update_takes_no_payment():
    # an already expired card is accepted as the payment method (nothing is charged); the next
    # recharge is then declined: 2 < 3 → attempt fails → suspended
    report = unit([*account("2", auto_recharge=auto("5", "0")),
                   payment_updated({"method": "card", "card": "visa-2", "expires": "2025-01"}), minutes("u1", 3)],
                  {ACME + "recharges": {"triggered": 1, "succeeded": 0, "failed": 1},
                   ACME + "auto_recharge.suspended": True, "calls.u1.uncollected": "1.0000"})
    assert lots(report, "auto_recharge") == []


def test_s9_payment_time_is_the_line_time():
    # the clock is at 2026-02-01; an order dated 2026-01-15 is paid at 2026-02-01, after the
    # January card's expiry → declined
    report = run([org_created(), clock("2026-02-01T00:00:00Z"),
                  order("10", payment=JAN_CARD, at="2026-01-15T00:00:00Z")])
    assert report["rejected"] == [{"line": 3, "code": "payment_declined"}]


def test_s9_recharge_for_a_late_cdr_is_dated_at_the_clock():
    report = unit([*account("0", auto_recharge=auto("5", "0")), clock("2026-03-01T00:00:00Z"),
                   minutes("u1", 3, start="2026-02-10T10:00:00Z")])
    # (an order of 0 adds no funds, so whether it leaves a lot of 0 is not asserted)
    assert [lot["added_at"] for lot in lots(report, "auto_recharge")] == ["2026-03-01T00:00:00Z"]


def test_s9_repeat_with_same_order_id_is_still_validated():
    assert_changes_nothing(account(), order("-1"), "invalid_input")


def test_s9_order_without_funds_field_is_invalid_input():
    assert_changes_nothing([org_created()], without(order(), "funds"), "invalid_input")


def test_s9_order_on_an_unknown_org():
    assert_rejected_last([org_created(), order(org="nowhere")], "unknown_organization")


# --- through the payment gateway port: what the simulated gateway cannot show ------------------

class RecordingGateway(SimulatedGateway):
    """The simulated gateway, recording every charge; declines recharges when `fail_recharges`."""

    def __init__(self, *, fail_recharges=False, decline_everything=False):
        self.charges: list[tuple[str, str]] = []
        self.fail_recharges, self.decline_everything = fail_recharges, decline_everything

    def charge(self, method, amount, currency, at, reference):
        self.charges.append((reference, format_money(amount)))
        if self.decline_everything or (self.fail_recharges and "/recharge/" in reference):
            return PaymentOutcome(False, reference, "declined by the test")
        return super().charge(method, amount, currency, at, reference)


def run_with_gateway(lines, gateway):
    app = BillingApplication(env=memory_store().env)
    simulation = Simulation(app, rate_card(UNIT), load_catalog(None), gateway)
    simulation.run(orjson.dumps(line) for line in lines)
    report = report_document(app, simulation.log)
    check_invariants(report)
    return report


def test_s8_manual_funds_lift_a_suspension():
    # recharges fail (suspended), then 5 added by hand: the suspension is lifted, so the next
    # call's recharge is attempted again (and fails again)
    gateway = RecordingGateway(fail_recharges=True)
    lines = [*account("2", auto_recharge=auto("5", "1")), minutes("u1", 3)]
    report = run_with_gateway(lines, gateway)
    assert_fields(report, {ACME + "auto_recharge.suspended": True, ACME + "recharges.failed": 1})
    report = run_with_gateway([*lines, funds("5", at="2026-01-11T00:00:00Z")], RecordingGateway(fail_recharges=True))
    assert_fields(report, {ACME + "auto_recharge.suspended": False, ACME + "balance": "5.0000"})
    # the next call costs 7 > 5: one attempt (fails, suspended again), 5 debited, 2 uncollected
    report = run_with_gateway([*lines, funds("5", at="2026-01-11T00:00:00Z"),
                               minutes("u2", 7, start="2026-01-12T10:00:00Z")], RecordingGateway(fail_recharges=True))
    assert_fields(report, {ACME + "recharges": {"triggered": 2, "succeeded": 0, "failed": 2},
                           ACME + "auto_recharge.suspended": True, "calls.u2.uncollected": "2.0000"})


def test_s9_unknown_agreement_is_checked_before_any_payment():
    gateway = RecordingGateway(decline_everything=True)
    report = run_with_gateway([org_created(), order("10", payment=UNKNOWN_EA)], gateway)
    assert report["rejected"] == [{"line": 2, "code": "unknown_agreement"}]
    assert gateway.charges == []


@pytest.mark.parametrize("ops, charges", [
    # funds 0: no payment attempted
    ([order("0")], []),
    ([order("10")], [("10.0000",)]),
    # a repeated order is not paid again
    ([order("10"), order("10", at="2026-01-02T00:00:00Z")], [("10.0000",)]),
    # a repeated funds request is not paid again; a request without id is paid each time
    ([order("10"), funds("3", request_id="r-1"), funds("3", request_id="r-1"), funds("4"), funds("4")],
     [("10.0000",), ("3.0000",), ("4.0000",), ("4.0000",)]),
    # a declined request is retried under the same id and paid once it succeeds
    ([order("10"), payment_updated(DECLINE), funds("3", request_id="r-1"), payment_updated(CARD),
      funds("3", request_id="r-1"), funds("3", request_id="r-1")],
     [("10.0000",), ("3.0000",), ("3.0000",)]),
], ids=["zero-funds", "funds", "repeated-order", "repeated-request", "declined-then-retried"])
def test_s9_payments_are_never_taken_twice(ops, charges):
    gateway = RecordingGateway()
    run_with_gateway([org_created(), *ops], gateway)
    assert [(amount,) for _, amount in gateway.charges] == charges
