"""The ledger's laws (SPEC §7, §8, §11), checked on generated scenarios on the in-memory store.

Each law is stated once, as a function over the report or the stored events, and checked on
every scenario hypothesis draws (tests/property/strategies.py).
"""

import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, Phase, given, note, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st

from application.billing_application import SNAPSHOT_INTERVAL_EVENTS, BillingApplication
from application.settings import memory_store, sqlite_store
from commcredits.simulate import FLUSH_EVERY_LINES
from domain.credit_account import CreditAccount
from domain.money import ZERO, format_money
from domain.timestamps import decode_timestamp, format_timestamp
from tests.property.strategies import (
    START,
    FrequentSnapshots,
    aggregate_state,
    as_text,
    live_aggregates,
    new_simulation,
    report,
    run_line_by_line,
    scenario_lines,
    stored_events,
    timestamp,
)
from tests.support import as_lines

LAWS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def money(text: str) -> Decimal:
    return Decimal(text)


# ----- laws over the report ---------------------------------------------------------------------

def lot_debits(app: BillingApplication, org: str) -> dict[int, Decimal]:
    """How much calls took from each lot, read from the stored `CallRated` events."""
    taken: dict[int, Decimal] = {}
    for event in stored_events(app, CreditAccount.create_id(org)):
        if isinstance(event, CreditAccount.CallRated):
            for debit in event.debits:
                taken[debit["lot"]] = taken.get(debit["lot"], ZERO) + money(debit["amount"])
    return taken


def assert_organization_laws(app: BillingApplication, org: str, document: dict[str, Any]) -> None:
    totals, lots = document["totals"], document["lots"]
    balance = money(document["balance"])
    assert balance == money(totals["funds_added"]) - money(totals["charged"]) - money(totals["expired"])
    assert balance >= 0
    assert balance == sum((money(lot["remaining"]) for lot in lots), ZERO)
    assert money(totals["funds_added"]) == sum((money(lot["amount"]) for lot in lots), ZERO)
    assert money(totals["expired"]) == sum((money(lot["expired"]) for lot in lots), ZERO)
    debits = lot_debits(app, org)
    assert money(totals["charged"]) == sum(debits.values(), ZERO)
    for number, lot in enumerate(lots, start=1):
        remaining, expired = money(lot["remaining"]), money(lot["expired"])
        assert remaining >= 0 and expired >= 0
        assert money(lot["amount"]) == remaining + debits.get(number, ZERO) + expired, f"lot {number}"
        assert expired == 0 or remaining == 0, f"lot {number} expired only in part"
    if document["currency"] and not document["credits_active"]:
        assert lots == [] and totals["charged"] == "0.0000"


def assert_call_laws(call: dict[str, Any]) -> None:
    charge = money(call["charge"])
    assert charge == money(call["debited"]) + money(call["uncollected"]) + money(call["overage"])
    assert min(charge, money(call["debited"]), money(call["uncollected"]), money(call["overage"])) >= 0
    assert 0 <= call["covered_minutes"] <= call["billed_minutes"]
    assert (call["reason"] is None) == (money(call["uncollected"]) == 0)
    if call["billed_minutes"] == 0 or call["kind"] in ("inbound", "emergency"):
        assert call["pool"] is None and charge == 0 and call["covered_minutes"] == 0


def assert_who_pays(app: BillingApplication, org: str, summary: dict[str, Any], calls: dict[str, Any]) -> None:
    """NCE pays overage only; legacy never does; inactive credits debit nothing (SPEC §6 step 6)."""
    events = stored_events(app, CreditAccount.create_id(org))
    nce = events[0].commerce == "nce"
    for event in events:
        if not isinstance(event, CreditAccount.CallRated):
            continue
        call = calls[event.usage_id]
        if nce:
            assert call["debited"] == call["uncollected"] == "0.0000" and call["overage"] == call["charge"]
        else:
            assert call["overage"] == "0.0000"
        if not summary["credits_active"]:
            assert call["debited"] == "0.0000"
            assert call["reason"] in (None, "credits_not_active")


def summary_of(account: CreditAccount) -> dict[str, Any]:
    """The aggregate's state in the report's terms: the projection folds the same events itself."""
    settings_ = account.auto_recharge.as_data()
    return {
        "currency": account.currency, "balance": format_money(account.balance),
        "credits_active": account.credits_active, "auto_recharge": {**settings_, "suspended": account.suspended},
        "lots": [{"source": lot.source, "added_at": format_timestamp(lot.added_at),
                  "expires_at": format_timestamp(lot.expires_at), "amount": format_money(lot.amount),
                  "remaining": format_money(lot.remaining), "expired": format_money(lot.expired)}
                 for lot in account.lots],
        "pools": {month: pools for month, pools in account.pool_usage.items() if any(pools.values())},
        "totals": {name: format_money(getattr(account, name))
                   for name in ("funds_added", "charged", "expired", "uncollected", "overage")},
        "recharges": {"triggered": account.recharges_triggered, "succeeded": account.recharges_succeeded,
                      "failed": account.recharges_failed},
        "depleted": account.depletions,
        "held": format_money(account.held_amount),
    }


def assert_live_state_agrees(simulation, document: dict[str, Any]) -> None:
    assert list(document["organizations"]) == simulation.service.organizations()
    for org, summary in document["organizations"].items():
        account = simulation.service.account(org)
        account.check_invariants()
        assert summary_of(account) == summary


@LAWS
@given(scenario_lines())
def test_every_scenario_keeps_the_ledger_laws(lines):
    note(as_text(lines))
    simulation = new_simulation()
    simulation.run(lines)
    document = report(simulation)
    for org, summary in document["organizations"].items():
        assert_organization_laws(simulation.app, org, summary)
        assert_who_pays(simulation.app, org, summary, document["calls"])
    for call in document["calls"].values():
        assert_call_laws(call)
    assert_live_state_agrees(simulation, document)
    assert document["counts"]["rated"] == len(document["calls"])


# ----- debits and expiries follow the debit order ----------------------------------------------

class LotBook:
    """An independent replay of one account's lots from its stored events."""

    def __init__(self) -> None:
        self.lots: dict[int, dict[str, Any]] = {}

    def open_in_debit_order(self) -> list[int]:
        open_lots = [number for number, lot in self.lots.items() if lot["remaining"] > 0]
        return sorted(open_lots, key=lambda n: (self.lots[n]["expires_at"], self.lots[n]["added_at"], n))

    def add(self, event: CreditAccount.FundsAdded) -> None:
        assert event.lot_number == len(self.lots) + 1, "lots are numbered in creation order"
        self.lots[event.lot_number] = {"remaining": money(event.amount),
                                       "added_at": decode_timestamp(event.added_at),
                                       "expires_at": decode_timestamp(event.expires_at)}

    def debit(self, event: CreditAccount.CallRated) -> None:
        order = self.open_in_debit_order()
        taken = [(debit["lot"], money(debit["amount"])) for debit in event.debits]
        assert [number for number, _ in taken] == order[:len(taken)], "debits skipped an older lot"
        for index, (number, amount) in enumerate(taken):
            lot = self.lots[number]
            assert 0 < amount <= lot["remaining"]
            if index < len(taken) - 1:
                assert amount == lot["remaining"], "an older lot was left unemptied"
            lot["remaining"] -= amount
        debited = sum((amount for _, amount in taken), ZERO)
        assert debited == money(event.debited)
        if money(event.uncollected) > 0 and event.reason == "insufficient_funds":
            assert not self.open_in_debit_order(), "a charge went uncollected while funds remained"

    def expire(self, event: CreditAccount.FundsExpired) -> None:
        lot = self.lots[event.lot_number]
        assert lot["expires_at"] <= decode_timestamp(event.at), "a lot expired early"
        assert self.open_in_debit_order()[0] == event.lot_number, "expiry skipped an older lot"
        assert money(event.amount) == lot["remaining"], "expiry takes the whole remaining amount"
        lot["remaining"] = ZERO

    def assert_nothing_overdue(self, now) -> None:
        assert all(self.lots[n]["expires_at"] > now for n in self.open_in_debit_order()), "a due lot did not expire"


@LAWS
@given(scenario_lines())
def test_debits_and_expiries_take_lots_in_expiry_order(lines):
    note(as_text(lines))
    simulation = new_simulation()
    simulation.run(lines)
    for org in simulation.service.organizations():
        book = LotBook()
        for event in stored_events(simulation.app, CreditAccount.create_id(org)):
            if isinstance(event, CreditAccount.FundsAdded):
                book.add(event)
            elif isinstance(event, CreditAccount.CallRated):
                book.assert_nothing_overdue(decode_timestamp(event.at))
                book.debit(event)
                if len(event.debits) > 1:
                    hypothesis_event("a call debited several lots")
            elif isinstance(event, CreditAccount.FundsExpired):
                book.expire(event)
                hypothesis_event("a lot expired")
        book.assert_nothing_overdue(simulation.service.clock)


# ----- idempotency: a repeated CDR, order or funds request changes nothing --------------------

def accepted_documents(simulation, lines: list[bytes]) -> list[tuple[bytes, dict[str, Any]]]:
    rejected = {number for number, _ in simulation.log.rejected}
    accepted = []
    for number, line in enumerate(lines, start=1):
        if number in rejected or not line.strip():
            continue
        accepted.append((line, orjson.loads(line)))
    return accepted


def is_retry_of_an_applied_request(document: dict[str, Any], rated: dict[str, Any]) -> bool:
    kind = document["type"]
    return ((kind == "cdr" and document["usage_id"] in rated) or kind == "order.placed"
            or (kind == "funds.added" and "request_id" in document))


@LAWS
@given(scenario_lines(), st.data())
def test_appending_a_retry_of_an_applied_request_changes_nothing(lines, data):
    """A rated CDR counts one more duplicate; an order or a funds request repeats as a no-op."""
    note(as_text(lines))
    simulation = new_simulation()
    simulation.run(lines)
    before = report(simulation)
    retries = [(line, document) for line, document in accepted_documents(simulation, lines)
               if is_retry_of_an_applied_request(document, before["calls"])]
    if not retries:
        return
    line, document = data.draw(st.sampled_from(retries), label="repeated line")
    simulation.run([line], first_line_number=len(lines) + 1)
    before["counts"]["duplicates"] += document["type"] == "cdr"
    assert report(simulation) == before


# ----- a rejected line changes nothing, not even the clock ---------------------------------------

@LAWS
@given(scenario_lines())
def test_blanking_the_rejected_lines_changes_nothing_else(lines):
    note(as_text(lines))
    simulation = new_simulation()
    simulation.run(lines)
    before = report(simulation)
    rejected = {number for number, _ in simulation.log.rejected}
    without = [b"" if number in rejected else line for number, line in enumerate(lines, start=1)]
    after = report(new_simulation_run(without))
    before["rejected"], before["counts"]["rejected"] = [], 0
    assert after == before


def new_simulation_run(lines: list[bytes]):
    simulation = new_simulation()
    simulation.run(lines)
    return simulation


# ----- flushing often or once makes no difference ---------------------------------------------

@FEW
@given(scenario_lines())
def test_flushing_after_every_line_gives_the_same_report(lines):
    note(as_text(lines))
    once = new_simulation()
    once.run(lines)
    often = new_simulation(FrequentSnapshots(env=memory_store().env))
    run_line_by_line(often, lines)
    assert report(often) == report(once)


# ----- replay: the stored history rebuilds the live objects exactly ------------------------------

def assert_store_rebuilds(app: BillingApplication, live: list[Any]) -> None:
    for aggregate in live:
        assert aggregate_state(app.repository.get(aggregate.id)) == aggregate_state(aggregate), type(aggregate)


@LAWS
@given(scenario_lines())
def test_rereading_every_aggregate_gives_the_live_state(lines):
    note(as_text(lines))
    simulation = new_simulation()
    simulation.run(lines)
    assert_store_rebuilds(simulation.app, live_aggregates(simulation))


@FEW
@given(scenario_lines())
def test_rereading_through_frequent_snapshots_gives_the_live_state(lines):
    note(as_text(lines))
    simulation = new_simulation(FrequentSnapshots(env=memory_store().env))
    history: dict[Any, dict[int, dict[str, Any]]] = {}  # aggregate id -> version -> state after a line
    for number, line in enumerate(lines, start=1):
        simulation.run([line], first_line_number=number)
        for aggregate in live_aggregates(simulation):
            history.setdefault(aggregate.id, {})[aggregate.version] = aggregate_state(aggregate)
    live = live_aggregates(simulation)
    assert_store_rebuilds(simulation.app, live)
    for aggregate in live:
        snapshots = list(simulation.app.snapshots.get(aggregate.id))
        assert snapshots or aggregate.version < FrequentSnapshots.snapshotting_intervals[type(aggregate)]
        for version, state in history[aggregate.id].items():  # from the nearest snapshot, then events
            assert aggregate_state(simulation.app.repository.get(aggregate.id, version=version)) == state, version


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario_lines(max_body=25))
def test_a_fresh_application_on_the_same_file_rebuilds_the_live_state(lines):
    note(as_text(lines))
    with tempfile.TemporaryDirectory() as directory:
        store = sqlite_store(Path(directory) / "events.sqlite")
        simulation = new_simulation(FrequentSnapshots(env=store.env), store_is_new=True)
        run_line_by_line(simulation, lines)
        live = live_aggregates(simulation)
        fresh = FrequentSnapshots(env=store.env)
        try:
            assert_store_rebuilds(fresh, live)
            assert report(new_simulation(fresh)) | {"counts": None, "rejected": None} == report(simulation) | {
                "counts": None, "rejected": None}
        finally:
            fresh.close()
            simulation.app.close()


def busy_month(durations: list[int]) -> list[bytes]:
    """One legacy organization with auto-recharge and one paid call per duration (a `CallRated` each)."""
    lines: list[dict[str, Any]] = [
        {"type": "organization.created", "at": timestamp(START), "org": "busy", "name": "Busy", "country": "US",
         "currency": "USD", "commerce": "legacy"},
        {"type": "user.added", "at": timestamp(START), "org": "busy", "user": "ann@busy.example",
         "usage_location": "US"},
        {"type": "licences.assigned", "at": timestamp(START), "org": "busy", "users": ["ann@busy.example"],
         "licences": ["PHONE_SYSTEM", "CALLING_PLAN_PAYG"]},
        {"type": "order.placed", "at": timestamp(START), "org": "busy", "order": "o-1", "funds": "1",
         "auto_recharge": {"enabled": True, "recharge_amount": "0.5", "trigger_amount": "0.2"},
         "payment": {"method": "card", "card": "visa-1", "expires": "2031-01"}},
        {"type": "licences.assigned", "at": timestamp(START), "org": "busy", "users": ["ann@busy.example"],
         "licences": ["COMMUNICATIONS_CREDITS"]},
    ]
    for number, seconds in enumerate(durations, start=1):
        end = START + timedelta(hours=number)
        lines.append({"type": "cdr", "usage_id": f"b{number}", "org": "busy", "user": "ann@busy.example",
                      "call_type": "user_out", "caller_number": "+14255550100",
                      "destination_number": "+442071234567", "start_time": timestamp(end - timedelta(seconds=seconds)),
                      "end_time": timestamp(end), "duration_seconds": seconds})
    return as_lines(lines)


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
          phases=[Phase.generate])
@given(st.data())
def test_the_real_snapshot_interval_is_crossed_and_replay_still_agrees(data):
    calls = SNAPSHOT_INTERVAL_EVENTS + 20  # one event per call at least
    lines = busy_month(data.draw(st.lists(st.integers(1, 1800), min_size=calls, max_size=calls), label="durations"))
    simulation = new_simulation()
    for start in range(0, len(lines), 100):  # several flushes: the snapshot falls between two of them
        simulation.run(lines[start:start + 100], first_line_number=start + 1)
    account = simulation.service.account("busy")
    assert account.version > SNAPSHOT_INTERVAL_EVENTS
    snapshots = list(simulation.app.snapshots.get(account.id))
    # The application snapshots the live object at the end of the save that crossed the interval.
    assert snapshots and SNAPSHOT_INTERVAL_EVENTS <= snapshots[0].originator_version < account.version
    assert_store_rebuilds(simulation.app, live_aggregates(simulation))
    document = report(simulation)
    assert_organization_laws(simulation.app, "busy", document["organizations"]["busy"])


def test_a_run_longer_than_the_flush_batch_matches_flushing_every_line():
    """`Simulation.run` saves every FLUSH_EVERY_LINES lines on its own; the report must not notice."""
    lines = busy_month([(number * 37) % 1800 for number in range(FLUSH_EVERY_LINES + 150)])
    once = new_simulation()
    once.run(lines)
    often = new_simulation()
    run_line_by_line(often, lines)
    assert report(once) == report(often)
    assert_store_rebuilds(once.app, live_aggregates(once))


# ----- identifiers that begin with "$" round-trip exactly (they once did not) ---------------

DOLLAR_SCENARIO = [
    {"type": "organization.created", "at": "2026-01-01T00:00:00Z", "org": "acme", "name": "Acme", "country": "US",
     "currency": "USD", "commerce": "legacy"},
    {"type": "user.added", "at": "2026-01-01T00:00:00Z", "org": "acme", "user": "$set", "usage_location": "US"},
]


def test_a_user_named_with_a_dollar_is_reread_exactly():
    simulation = new_simulation()
    simulation.run(as_lines(DOLLAR_SCENARIO))
    assert_store_rebuilds(simulation.app, live_aggregates(simulation))


def test_a_snapshot_of_a_registry_with_a_dollar_user_is_reread_exactly():
    """A user named "$dec" and 500 licence changes: the registry's snapshot holds a dict keyed by
    "$dec", which an unescaped tagged encoding would read back as `Decimal("US")`."""
    toggles = [{"type": f"licences.{'assigned' if n % 2 == 0 else 'removed'}", "at": "2026-01-01T00:00:00Z",
                "org": "acme", "users": ["$dec"], "licences": ["PHONE_SYSTEM"]}
               for n in range(SNAPSHOT_INTERVAL_EVENTS)]
    lines = as_lines([*DOLLAR_SCENARIO[:1], {**DOLLAR_SCENARIO[1], "user": "$dec"}, *toggles])
    simulation = new_simulation()
    simulation.run(lines)
    registry = simulation.service.registry("acme")
    assert list(simulation.app.snapshots.get(registry.id))
    assert simulation.app.repository.get(registry.id).locations == {"$dec": "US"}
