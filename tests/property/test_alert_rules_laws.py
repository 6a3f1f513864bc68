"""The alert rules' laws (consumers/alerts/rules.py), on generated histories of one organization.

A history is built by a small model of the credit account (lots added, calls debiting the lots
that expire first, due lots expiring and lots coming within 30 days of expiry announced whenever
time moves, the engine clock's own events in between), so its events are consistent the way the
engine's are. The laws: the state survives JSON exactly; the tracked balance is the model's after
every event; each `ExpiryApproached` is one `funds_expiring` alert and nothing else is; the
clock's events, wherever they fall, change no alert; persisting the state between any two events
changes no alert; ids never repeat. The last laws run generated `simulate` scenarios through the
real engine: balances agree, and the engine announces each lot at most once, inside its 30-day
window, with funds left.
"""

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.alerts.kinds import FUNDS_EXPIRING, Alert
from consumers.alerts.rules import OrgAlertState, alerts_for_event, parse_moment
from domain.credit_account import CreditAccount
from domain.lots import EXPIRY_NOTICE
from tests.property.strategies import new_simulation, scenario_lines
from tests.unit.test_alert_rules import Router, stored_documents

LAWS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
START = datetime(2026, 1, 31, 23, 30, tzinfo=timezone.utc)
OPENED = {"org": "contoso", "name": "Contoso", "country": "US", "currency": "USD", "commerce": "legacy",
          "agreements": [], "at": "2026-01-01T00:00:00Z"}
CLOCK = "EngineClock.Advanced"
APPROACHED = "CreditAccount.ExpiryApproached"
Step = tuple[str, dict[str, Any]]

# ----- states -------------------------------------------------------------------------------------

amounts = st.integers(0, 10**10).map(lambda units: Decimal(units).scaleb(-4))
states = st.builds(
    OrgAlertState, st.text(min_size=1), st.text(), st.text(max_size=2), st.text(max_size=3), amounts, st.booleans(),
    st.none() | amounts, st.booleans(), st.none() | st.dates().map(lambda day: day.isoformat()), st.booleans(),
)


def json_round_trip(state: OrgAlertState) -> OrgAlertState:
    return OrgAlertState.from_data(json.loads(json.dumps(state.as_data())))


@LAWS
@given(states)
def test_state_round_trips_exactly_through_json(state):
    again = json_round_trip(state)
    assert again == state
    assert again.as_data() == state.as_data()


# ----- histories: a small model of one organization's credit account ------------------------------

@dataclass
class Lot:
    number: int
    remaining: Decimal
    expires_at: datetime
    noticed: bool = False


@dataclass
class Model:
    now: datetime = START
    lots: list[Lot] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    balances: list[Decimal] = field(default_factory=list)  # the model's balance after each step

    def stamp(self, moment: datetime, style: int) -> str:
        """The same instant written the ways events may carry it."""
        text = moment.isoformat()
        return (text.replace("+00:00", "Z"), text, moment.astimezone(timezone(timedelta(hours=2))).isoformat())[style]

    def record(self, event_type: str, data: dict[str, Any]) -> None:
        self.steps.append((event_type, data))
        self.balances.append(sum((lot.remaining for lot in self.lots), Decimal("0.0000")))

    def in_debit_order(self) -> list[Lot]:
        return sorted(self.lots, key=lambda lot: (lot.expires_at, lot.number))

    def settle(self, style: int) -> None:
        """What the engine does first at `now` (SPEC §7): due lots expire, then the lots that now
        expire within 30 days are announced, once each, in debit order."""
        for lot in self.in_debit_order():
            if lot.expires_at <= self.now and lot.remaining > 0:
                amount, lot.remaining = lot.remaining, Decimal("0.0000")
                self.record("CreditAccount.FundsExpired", {"lot_number": lot.number, "amount": f"{amount:.4f}",
                                                           "at": self.stamp(self.now, style)})
        for lot in self.in_debit_order():
            if not lot.noticed and lot.remaining > 0 and lot.expires_at - EXPIRY_NOTICE <= self.now < lot.expires_at:
                lot.noticed = True
                self.record(APPROACHED, {"lot_number": lot.number, "remaining": f"{lot.remaining:.4f}",
                                         "expires_at": self.stamp(lot.expires_at, style),
                                         "at": self.stamp(self.now, style)})

    def add(self, amount: Decimal, expires_in: timedelta, style: int) -> None:
        self.settle(style)
        lot = Lot(len(self.lots) + 1, amount, self.now + expires_in)
        self.lots.append(lot)
        self.record("CreditAccount.FundsAdded", {
            "lot_number": lot.number, "source": "manual", "amount": f"{amount:.4f}",
            "added_at": self.stamp(self.now, 0), "expires_at": self.stamp(lot.expires_at, style),
            "request_id": None, "payment_reference": None})

    def call(self, charge: Decimal, style: int) -> None:
        self.settle(style)
        debits, left = [], charge
        for lot in self.in_debit_order():
            take = min(left, lot.remaining)
            if take > 0:
                lot.remaining -= take
                left -= take
                debits.append({"lot": lot.number, "amount": f"{take:.4f}"})
        self.record("CreditAccount.CallRated", {
            "usage_id": f"u{len(self.steps)}", "debits": debits, "debited": f"{charge - left:.4f}",
            "uncollected": f"{left:.4f}", "at": self.stamp(self.now, style)})

    def clock(self, wait: timedelta, style: int) -> None:
        """The clock moves: the account settles, and the clock stores its own event."""
        self.now += wait
        self.settle(style)
        self.record(CLOCK, {"at": self.stamp(self.now, style)})

    def configure(self, enabled: bool, trigger: Decimal | None, style: int) -> None:
        self.settle(style)
        settings = {"enabled": enabled, "recharge_amount": "5.0000",
                    "trigger_amount": None if trigger is None else f"{trigger:.4f}"}
        self.record("CreditAccount.AutoRechargeConfigured", {"auto_recharge": settings,
                                                             "at": self.stamp(self.now, style)})


small_amounts = st.integers(0, 50_000).map(lambda units: Decimal(units).scaleb(-4))
waits = st.one_of(st.integers(0, 3600), st.integers(0, 40 * 86400), st.just(86400 * 30)).map(
    lambda seconds: timedelta(seconds=seconds))
expiries = st.one_of(st.integers(0, 70 * 86400).map(lambda seconds: timedelta(seconds=seconds)),
                     st.integers(0, 70 * 86400 * 10**6).map(lambda micros: timedelta(microseconds=micros)))
styles = st.integers(0, 2)
operations = st.one_of(
    st.tuples(st.just("add"), small_amounts, expiries, styles),
    st.tuples(st.just("call"), small_amounts, styles),
    st.tuples(st.just("clock"), waits, styles),
    st.tuples(st.just("configure"), st.booleans(), st.none() | small_amounts, styles),
)


@st.composite
def models(draw) -> Model:
    model = Model()
    for name, *arguments in draw(st.lists(operations, max_size=40)):
        getattr(model, name)(*arguments)
    return model


def histories() -> st.SearchStrategy[list[Step]]:
    return models().map(lambda model: model.steps)


def run(steps: list[Step], split: int | None = None) -> tuple[OrgAlertState, list[Alert]]:
    """Apply the history; at `split`, persist the state as JSON and carry on from what was read."""
    state, alerts = OrgAlertState.opened(OPENED), []
    for position, (event_type, data) in enumerate(steps, start=1):
        if position - 1 == split:
            state = json_round_trip(state)
        alerts += alerts_for_event(state, event_type, data, position)
    return state, alerts


def told(alerts: list[Alert]) -> list[tuple[str, str, dict[str, Any]]]:
    """What the alerts say, without where in the log they came from."""
    return [(alert.kind, alert.at, alert.facts) for alert in alerts]


@LAWS
@given(models())
def test_tracked_balance_is_the_models_after_every_event(model):
    state = OrgAlertState.opened(OPENED)
    for position, ((event_type, data), balance) in enumerate(zip(model.steps, model.balances), start=1):
        alerts_for_event(state, event_type, data, position)
        assert state.balance == balance >= 0


@LAWS
@given(histories())
def test_each_expiry_approached_is_one_funds_expiring_alert_and_nothing_else_is(steps):
    _, alerts = run(steps)
    expiring = [alert for alert in alerts if alert.kind == FUNDS_EXPIRING]
    announced = [(position, data) for position, (event_type, data) in enumerate(steps, start=1)
                 if event_type == APPROACHED]
    assert [(alert.position, alert.at, alert.facts) for alert in expiring] == [
        (position, data["at"], {key: data[key] for key in ("lot_number", "remaining", "expires_at")})
        for position, data in announced]


@LAWS
@given(histories())
def test_the_clocks_events_wherever_they_fall_change_no_alert(steps):
    state, alerts = run(steps)
    without_clock, alerts_without_clock = run([step for step in steps if step[0] != CLOCK])
    assert told(alerts_without_clock) == told(alerts)
    assert without_clock == state


@LAWS
@given(histories(), st.data())
def test_persisting_the_state_between_events_changes_no_alert(steps, data):
    split = data.draw(st.integers(0, len(steps)), label="split")
    state, alerts = run(steps)
    split_state, split_alerts = run(steps, split)
    assert split_alerts == alerts
    assert split_state == state


@LAWS
@given(histories())
def test_alert_ids_never_repeat(steps):
    _, alerts = run(steps)
    ids = [alert.id for alert in alerts]
    assert len(ids) == len(set(ids))


# ----- against the real engine: generated `simulate` scenarios ------------------------------------

@FEW
@given(scenario_lines())
def test_tracked_balances_equal_the_engines_on_generated_scenarios(lines):
    simulation = new_simulation()
    simulation.run(lines)
    app, router = simulation.app, Router()
    for document in stored_documents(app):
        router.apply(document)
    for org, state in router.states.items():
        assert state.balance == app.repository.get(CreditAccount.create_id(org)).balance
    identities = [(alert.org, alert.id) for alert in router.alerts]
    assert len(identities) == len(set(identities))
    assert Counter(alert.kind for alert in router.alerts)[FUNDS_EXPIRING] == router.events[APPROACHED]


@FEW
@given(scenario_lines())
def test_the_engine_announces_each_lot_once_inside_its_window_with_funds_left(lines):
    simulation = new_simulation()
    simulation.run(lines)
    announced = [document for document in stored_documents(simulation.app) if document["type"] == APPROACHED]
    lots = Counter((document["aggregate_id"], document["data"]["lot_number"]) for document in announced)
    assert all(count == 1 for count in lots.values())
    for document in announced:
        now, expires_at = parse_moment(document["data"]["at"]), parse_moment(document["data"]["expires_at"])
        assert now < expires_at <= now + EXPIRY_NOTICE
        assert Decimal(document["data"]["remaining"]) > 0
