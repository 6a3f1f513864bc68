"""Coming expiries (SPEC §7, `CreditAccount.notice_expiring`): given events -> when command -> then events.

A lot with funds left is announced once, `ExpiryApproached`, when the engine's time reaches
`expires_at - EXPIRY_NOTICE` (30 days) and before the lot expires. The service runs the notice
step for every organization, in creation order, on every accepted command, right after the expiry
step, so a lot that expires now is expired, not announced. The first part drives the aggregate
directly (helpers of tests/unit/test_credit_account.py); the second runs `simulate` lines through
the real service and reads what it stored. Every time is worked out by hand in the comments.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from application.settings import memory_store, sqlite_store
from commcredits.simulate import Simulation
from domain.auto_recharge import DISABLED
from domain.credit_account import CreditAccount
from domain.lots import EXPIRY_NOTICE
from tests.support import SPEC_RATES, as_lines
from tests.unit.test_credit_account import (
    RecordingGateway,
    active_account,
    add_funds,
    call,
    names,
    opened,
    place_order,
    replay,
    then,
    utc,
)

# The order at T_ORDER (2026-01-02T09:00Z) adds lot 1, which expires 12 months later,
# 2027-01-02T09:00Z; 30 days before that is 2026-12-03T09:00Z (December has 31 days).
LOT_1_EXPIRES = utc(2027, 1, 2, 9)
LOT_1_NOTICE = utc(2026, 12, 3, 9)
SECOND = timedelta(seconds=1)


def ordered(funds: str = "20") -> tuple[CreditAccount, Any]:
    """Given: a legacy organization whose order added lot 1 of `funds`, auto-recharge off."""
    return active_account(funds=funds, auto=DISABLED)


def announced(events) -> list[tuple[int, str, str, str]]:
    return [(event.lot_number, event.remaining, event.expires_at, event.at) for event in events]


# ----- the rule on the aggregate ----------------------------------------------------------------


def test_the_notice_is_thirty_days():
    assert EXPIRY_NOTICE == timedelta(days=30)
    assert LOT_1_EXPIRES - LOT_1_NOTICE == EXPIRY_NOTICE


def test_a_lot_is_announced_exactly_thirty_days_before_it_expires():
    account, _ = ordered()
    assert account.next_notice == LOT_1_NOTICE
    account.notice_expiring(LOT_1_NOTICE)
    events = then(account)
    assert names(events) == ["ExpiryApproached"]
    assert announced(events) == [(1, "20.0000", "2027-01-02T09:00:00Z", "2026-12-03T09:00:00Z")]
    assert account.lots[0].noticed and account.next_notice is None


def test_thirty_days_less_one_second_before_is_too_early():
    account, _ = ordered()
    account.notice_expiring(LOT_1_NOTICE - SECOND)  # 2026-12-03T08:59:59Z: 30 days and 1 second before
    assert then(account) == []
    assert not account.lots[0].noticed


def test_the_notice_tells_what_the_lot_still_holds():
    account, gateway = ordered()
    call(account, gateway, "u1", 300, utc(2026, 6, 1))  # 5 minutes at 1.0000: lot 1 20 -> 15
    account.collect_events()
    account.notice_expiring(utc(2026, 12, 10))
    assert announced(then(account)) == [(1, "15.0000", "2027-01-02T09:00:00Z", "2026-12-10T00:00:00Z")]


def test_a_lot_expiring_exactly_now_is_expired_not_announced():
    """The service's order at one time: the expiry step, then the notices."""
    account, gateway = ordered()
    account.expire_due(LOT_1_EXPIRES, gateway)  # expires_at == now: due
    account.notice_expiring(LOT_1_EXPIRES)
    events = then(account)
    assert names(events) == ["FundsExpired", "BalanceDepleted"]  # 20 expired: 20 -> 0
    assert not account.lots[0].noticed


def test_a_lot_at_its_expiry_is_not_in_the_window_even_before_it_is_expired():
    account, _ = ordered()
    account.notice_expiring(LOT_1_EXPIRES)  # notice_at <= now, but not now < expires_at
    assert then(account) == []


def test_a_lot_is_announced_once():
    account, _ = ordered()
    account.notice_expiring(utc(2026, 12, 5))
    assert names(then(account)) == ["ExpiryApproached"]
    account.notice_expiring(utc(2026, 12, 6))  # a second move of the clock inside the window
    account.notice_expiring(LOT_1_EXPIRES - SECOND)
    assert then(account) == []


def test_an_emptied_lot_is_never_announced():
    account, gateway = ordered()
    call(account, gateway, "u1", 1200, utc(2026, 6, 1))  # 20 minutes at 1.0000: lot 1 20 -> 0
    account.collect_events()
    assert account.next_notice is None
    account.notice_expiring(utc(2026, 12, 10))
    assert then(account) == []


def test_two_lots_in_the_window_are_announced_in_debit_order():
    """Lot 1 (order, 2026-01-02T09:00 -> expires 2027-01-02T09:00) and lot 2 (by hand, 2026-01-10
    -> expires 2027-01-10T00:00, 10.0000): at 2026-12-15 both expire within 30 days."""
    account, gateway = ordered()
    add_funds(account, gateway, "10", utc(2026, 1, 10))
    account.collect_events()
    account.notice_expiring(utc(2026, 12, 15))
    assert announced(then(account)) == [(1, "20.0000", "2027-01-02T09:00:00Z", "2026-12-15T00:00:00Z"),
                                        (2, "10.0000", "2027-01-10T00:00:00Z", "2026-12-15T00:00:00Z")]


def test_only_the_lots_inside_the_window_are_announced():
    """At 2026-12-05 lot 1 (notice 2026-12-03T09:00) is inside; lot 2 (notice 2026-12-11T00:00,
    30 days before 2027-01-10) not yet; it is announced on its own later."""
    account, gateway = ordered()
    add_funds(account, gateway, "10", utc(2026, 1, 10))
    account.collect_events()
    account.notice_expiring(utc(2026, 12, 5))
    assert [event.lot_number for event in then(account)] == [1]
    assert account.next_notice == utc(2026, 12, 11)
    account.notice_expiring(utc(2026, 12, 11))
    assert [event.lot_number for event in then(account)] == [2]


@pytest.mark.parametrize("added_at, expires_at, notice_at", [
    # 2027-02-28 + 12 months = 2028-02-28 (a leap year, but the 28th exists); 30 days before:
    # 2028-01-29 (3 days to 2028-02-01, 27 more to the 28th)
    (utc(2027, 2, 28, 10), utc(2028, 2, 28, 10), utc(2028, 1, 29, 10)),
    # the leap day: 2028-02-29 + 12 months has no 29th, so 2029-02-28 (add_calendar_months);
    # 30 days before: 2029-01-29
    (utc(2028, 2, 29, 14, 30), utc(2029, 2, 28, 14, 30), utc(2029, 1, 29, 14, 30)),
    # across a leap February: 2027-03-01 -> 2028-03-01; 30 days before: 2028-01-31 (29 + 1)
    (utc(2027, 3, 1), utc(2028, 3, 1), utc(2028, 1, 31)),
    # the same in a common year: 2026-03-01 -> 2027-03-01; 30 days before: 2027-01-30 (28 + 2)
    (utc(2026, 3, 1), utc(2027, 3, 1), utc(2027, 1, 30)),
    # a month end: 2026-03-31 -> 2027-03-31; 30 days before: 2027-03-01
    (utc(2026, 3, 31), utc(2027, 3, 31), utc(2027, 3, 1)),
    # a month end that the next month lacks: 2026-05-31 -> 2027-05-31; 30 days before: 2027-05-01
    (utc(2026, 5, 31, 23, 59, 59), utc(2027, 5, 31, 23, 59, 59), utc(2027, 5, 1, 23, 59, 59)),
], ids=["2027-02-28", "leap-day", "leap-february", "common-february", "march-31", "may-31"])
def test_notice_time_over_leap_days_and_month_ends(added_at: datetime, expires_at: datetime, notice_at: datetime):
    account, gateway = active_account(funds="0", auto=DISABLED)
    add_funds(account, gateway, "5", added_at)
    account.collect_events()
    assert account.lots[0].expires_at == expires_at and account.next_notice == notice_at
    account.notice_expiring(notice_at - SECOND)
    assert then(account) == []
    account.notice_expiring(notice_at)
    assert announced(then(account)) == [(1, "5.0000", expires_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                         notice_at.strftime("%Y-%m-%dT%H:%M:%SZ"))]


def history_with_a_notice() -> list:
    """Every event of an account whose lot 1 was announced at 2026-12-05."""
    account = opened()
    place_order(account, RecordingGateway(), funds="20", auto=DISABLED)
    account.notice_expiring(utc(2026, 12, 5))
    return account.collect_events()


def test_replay_keeps_what_was_announced():
    events = history_with_a_notice()
    assert names(events)[-1] == "ExpiryApproached"
    account = replay(events)
    assert account.lots[0].noticed and account.next_notice is None
    account.notice_expiring(utc(2026, 12, 20))
    assert then(account) == []


def test_a_snapshot_keeps_what_was_announced():
    """Busy accounts load from snapshots (application/billing_application.py): the lots' `noticed` flag
    survives the transcoder."""
    app = BillingApplication(env=memory_store().env)
    snapshot = CreditAccount.Snapshot.take(replay(history_with_a_notice()))
    restored = app.mapper.to_domain_event(app.mapper.to_stored_event(snapshot)).mutate(None)
    assert restored.lots[0].noticed
    restored.notice_expiring(utc(2026, 12, 20))
    assert restored.collect_events() == []


# ----- through the service: `simulate` lines, then what the store holds -------------------------

def created(org: str, at: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    return {"type": "organization.created", "at": at, "org": org, "name": org.title(), "country": "US",
            "currency": "USD", "commerce": "legacy", "agreements": ["EA-1"]}


def order(org: str, at: str, funds: str = "20") -> dict[str, Any]:
    return {"type": "order.placed", "at": at, "org": org, "order": f"{org}-o", "funds": funds,
            "auto_recharge": {"enabled": False},
            "payment": {"method": "enterprise_agreement", "agreement": "EA-1", "po": None}}


def clock(at: str) -> dict[str, Any]:
    return {"type": "clock", "at": at}


def simulation(app: BillingApplication | None = None) -> Simulation:
    return Simulation(app or BillingApplication(env=memory_store().env), SPEC_RATES, load_catalog(None))


def run(sim: Simulation, *commands: dict[str, Any]) -> None:
    sim.run(as_lines(commands))
    assert sim.log.rejected == []  # every line accepted: the set-up is what the test says


def stored(app: BillingApplication, event_type: type) -> list[tuple[str, Any]]:
    """(organization, event) of every stored event of `event_type`, in store order."""
    found = []
    for notification in app.recorder.select_notifications(1, 10_000):
        event = app.mapper.to_domain_event(notification)
        if isinstance(event, event_type):
            found.append((app.repository.get(event.originator_id).org, event))
    return found


def notices(app: BillingApplication) -> list[tuple[str, int, str, str, str]]:
    return [(org, event.lot_number, event.remaining, event.expires_at, event.at)
            for org, event in stored(app, CreditAccount.ExpiryApproached)]


def test_a_clock_line_thirty_days_before_announces_and_one_second_earlier_does_not():
    sim = simulation()
    run(sim, created("contoso"), order("contoso", "2026-01-02T09:00:00Z"), clock("2026-12-03T08:59:59Z"))
    assert notices(sim.app) == []
    run(sim, clock("2026-12-03T09:00:00Z"))
    assert notices(sim.app) == [("contoso", 1, "20.0000", "2027-01-02T09:00:00Z", "2026-12-03T09:00:00Z")]


def test_any_accepted_command_in_the_window_announces_at_its_time():
    """Not only clock lines: the order of another organization at 2026-12-10 moves the time."""
    sim = simulation()
    run(sim, created("contoso"), created("fabrikam"), order("contoso", "2026-01-02T09:00:00Z"),
        order("fabrikam", "2026-12-10T00:00:00Z"))
    assert notices(sim.app) == [("contoso", 1, "20.0000", "2027-01-02T09:00:00Z", "2026-12-10T00:00:00Z")]


def test_a_lot_expiring_at_the_clock_is_expired_and_not_announced():
    """The clock jumps from before the window straight to the expiry: FundsExpired only."""
    sim = simulation()
    run(sim, created("contoso"), order("contoso", "2026-01-02T09:00:00Z"), clock("2027-01-02T09:00:00Z"))
    assert notices(sim.app) == []
    assert [(org, event.lot_number, event.amount) for org, event in stored(sim.app, CreditAccount.FundsExpired)] == [
        ("contoso", 1, "20.0000")]


def test_once_per_lot_through_the_service():
    sim = simulation()
    run(sim, created("contoso"), order("contoso", "2026-01-02T09:00:00Z"), clock("2026-12-05T00:00:00Z"),
        clock("2026-12-20T00:00:00Z"), clock("2027-01-02T08:59:59Z"))
    assert [event[1] for event in notices(sim.app)] == [1]


def test_a_clock_line_announces_every_organization_in_creation_order():
    """zeta is created before alpha; alpha's lot is older (its notice falls due first), yet one
    clock line past both notice times announces zeta's first: creation order, not name or time.
    The set-up is flushed first, so the clock line's events are stored in the order they happened."""
    sim = simulation()
    run(sim, created("zeta"), created("alpha"), order("alpha", "2026-01-02T09:00:00Z", funds="7"),
        order("zeta", "2026-01-03T09:00:00Z", funds="9"))
    run(sim, clock("2026-12-10T00:00:00Z"))
    assert notices(sim.app) == [("zeta", 1, "9.0000", "2027-01-03T09:00:00Z", "2026-12-10T00:00:00Z"),
                                ("alpha", 1, "7.0000", "2027-01-02T09:00:00Z", "2026-12-10T00:00:00Z")]


def test_next_expiry_at_is_the_notice_time_while_it_comes_first():
    sim = simulation()
    run(sim, created("contoso"), order("contoso", "2026-01-02T09:00:00Z"))
    assert sim.service.next_expiry_at() == LOT_1_NOTICE  # 2026-12-03T09:00, before 2027-01-02T09:00
    run(sim, clock("2026-12-03T09:00:00Z"))
    assert sim.service.next_expiry_at() == LOT_1_EXPIRES  # announced: the expiry is next


def test_next_expiry_at_without_open_lots_is_none():
    sim = simulation()
    run(sim, created("contoso"), order("contoso", "2026-01-02T09:00:00Z", funds="0"))
    assert sim.service.next_expiry_at() is None


def test_a_restarted_engine_does_not_announce_again(tmp_path):
    """The notice is stored; a new process loads the account from its events (lot 1 noticed) and
    a later clock line inside the window adds nothing, the expiry still happens."""
    store = sqlite_store(tmp_path / "events.sqlite")
    first = BillingApplication(env=store.env)
    run(simulation(first), created("contoso"), order("contoso", "2026-01-02T09:00:00Z"), clock("2026-12-05T00:00:00Z"))
    first.close()
    again = BillingApplication(env=store.env)
    try:
        sim = simulation(again)
        assert sim.service.next_expiry_at() == LOT_1_EXPIRES
        run(sim, clock("2026-12-20T00:00:00Z"), clock("2027-01-02T09:00:00Z"))
        assert [event[1:] for event in notices(again)] == [(1, "20.0000", "2027-01-02T09:00:00Z",
                                                             "2026-12-05T00:00:00Z")]
        assert len(stored(again, CreditAccount.FundsExpired)) == 1
    finally:
        again.close()


def test_a_restarted_engine_announces_what_fell_due_while_it_was_down(tmp_path):
    store = sqlite_store(tmp_path / "events.sqlite")
    first = BillingApplication(env=store.env)
    run(simulation(first), created("contoso"), order("contoso", "2026-01-02T09:00:00Z"))
    first.close()
    again = BillingApplication(env=store.env)
    try:
        sim = simulation(again)
        assert sim.service.next_expiry_at() == LOT_1_NOTICE
        run(sim, clock("2026-12-20T00:00:00Z"))
        assert notices(again) == [("contoso", 1, "20.0000", "2027-01-02T09:00:00Z", "2026-12-20T00:00:00Z")]
    finally:
        again.close()


def test_the_notice_changes_no_balance():
    sim = simulation()
    run(sim, created("contoso"), order("contoso", "2026-01-02T09:00:00Z"), clock("2026-12-05T00:00:00Z"))
    account = sim.service.require_account("contoso")
    assert account.balance == Decimal("20.0000") and account.lots[0].remaining == Decimal("20.0000")
