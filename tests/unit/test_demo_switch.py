"""The demo's switch (commcredits/demo_switch.py) against an in-process simulation: what it asks,
what it connects, how it cuts a call at `max_seconds`, and in what order its lines arrive.

The live demo runs the same switch through the desk and Kafka (tests/e2e/test_demo.py); here every
step applies at once, so a whole generated month takes a second or two.
"""

from typing import Any

import pytest

from application.reference_data import load_catalog, load_rate_card
from application.settings import memory_store
from commcredits.composition import open_application
from commcredits.demo_switch import Switch
from commcredits.scenario import encoded, generate
from commcredits.simulate import Simulation, report_document
from domain.timestamps import parse_timestamp

FREE_CALL_TYPES = {"emergency_out", "user_in"}


class SimulatedPort:
    """The switch's port on a simulation: each step is applied at once, after those before it."""

    def __init__(self) -> None:
        self.app = open_application(memory_store())
        self.simulation = Simulation(self.app, load_rate_card(None), load_catalog(None), store_is_new=True)
        self.sent: list[dict[str, Any] | str] = []
        self.steps: list[str] = []

    def ask(self, requests: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        self.steps.append("ask")
        return [self._decide(request) for request in requests]

    def send_cdrs(self, lines: list[dict[str, Any] | str]) -> None:
        self.steps.append("cdrs")
        for line in lines:
            self._apply(line)

    def administer(self, line: dict[str, Any]) -> None:
        self.steps.append("admin")
        self._apply(line)

    def report(self) -> dict[str, Any]:
        self.simulation.service.flush()
        return report_document(self.app, self.simulation.log)

    def _decide(self, request: dict[str, Any]) -> dict[str, Any] | None:
        rejected = len(self.simulation.log.rejected)
        self._apply(request)
        record = self.simulation.service.authorization(request["call_id"])
        return None if len(self.simulation.log.rejected) > rejected else record.as_record()

    def _apply(self, line: dict[str, Any] | str) -> None:
        self.sent.append(line)
        self.simulation.log.lines += 1
        self.simulation.apply_line(len(self.sent), encoded(line))


AT = "2026-03-02T08:00:00Z"
SETUP = [
    {"type": "organization.created", "at": AT, "org": "acme", "name": "Acme", "country": "US", "currency": "USD",
     "commerce": "legacy", "agreements": []},
    {"type": "user.added", "at": AT, "org": "acme", "user": "alice@acme.example", "usage_location": "US"},
    {"type": "licences.assigned", "at": AT, "org": "acme", "users": ["alice@acme.example"],
     "licences": ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC"]},
    {"type": "order.placed", "at": AT, "org": "acme", "order": "o-1", "funds": "0.05",
     "auto_recharge": {"enabled": False}, "payment": {"method": "card", "card": "visa-1", "expires": "2030-12"}},
    {"type": "licences.assigned", "at": AT, "org": "acme", "users": ["alice@acme.example"],
     "licences": ["COMMUNICATIONS_CREDITS"]},
]


def call(usage_id: str, start: str, end: str, seconds: int, call_type: str = "user_out",
         destination: str = "+442071234567") -> dict[str, Any]:
    """Alice's call; abroad, so her domestic plan's minutes do not cover it: credits pay 0.0230 a minute."""
    return {"type": "cdr", "usage_id": usage_id, "org": "acme", "user": "alice@acme.example", "call_type": call_type,
            "caller_number": "+12065550100", "destination_number": destination,
            "start_time": f"2026-03-02T{start}Z", "end_time": f"2026-03-02T{end}Z", "duration_seconds": seconds}


LONG = call("long", "09:00:00", "09:10:00", 600)  # 0.05 pays 2 minutes: cut at 120 s
BROKE = call("broke", "10:00:00", "10:01:00", 60)  # 0.0040 left: denied
EMERGENCY = call("sos", "10:30:00", "10:30:30", 30, "emergency_out", "911")
TOP_UP = {"type": "funds.added", "at": "2026-03-02T11:00:00Z", "org": "acme", "amount": "10", "request_id": "t-1"}
AFTER = call("after", "12:00:00", "12:05:00", 300)
INBOUND = call("in", "12:10:00", "12:11:00", 60, "user_in", "+12065550100")
MONTH = [LONG, BROKE, EMERGENCY, TOP_UP, AFTER, AFTER, INBOUND]  # AFTER twice: the switch retries its CDR


@pytest.fixture
def played() -> tuple[SimulatedPort, Switch]:
    port = SimulatedPort()
    for line in SETUP:
        port.administer(line)
    port.steps.clear()
    switch = Switch(port)
    switch.run(MONTH)
    return port, switch


def test_an_allowed_call_is_cut_at_max_seconds_and_its_cdr_carries_the_call_id(played):
    port, _ = played
    report = port.report()

    assert report["authorizations"]["long"]["decision"] == "allowed"
    assert report["authorizations"]["long"]["max_seconds"] == 120
    assert report["authorizations"]["long"]["status"] == "settled"
    [sent] = [line for line in port.sent if line.get("usage_id") == "long"]
    assert (sent["duration_seconds"], sent["end_time"], sent["call_id"]) == (120, "2026-03-02T09:02:00Z", "long")
    assert report["calls"]["long"]["billed_minutes"] == 2
    assert report["calls"]["long"]["charge"] == "0.0460"
    assert report["calls"]["long"]["uncollected"] == "0.0000"


def test_a_denied_call_is_not_connected(played):
    port, switch = played
    report = port.report()

    assert report["authorizations"]["broke"]["decision"] == "denied"
    assert report["authorizations"]["broke"]["code"] == "insufficient_funds"
    assert "broke" not in report["calls"]
    assert not [line for line in port.sent if line.get("type") == "cdr" and line["usage_id"] == "broke"]
    assert switch.stats.denied == {"insufficient_funds": 1}


def test_free_calls_are_not_asked_and_are_sent_as_they_came(played):
    port, switch = played
    report = port.report()

    asked = {line["call_id"] for line in port.sent if line.get("type") == "call.authorize"}
    assert asked == {"long", "broke", "after"}
    assert report["calls"]["sos"]["kind"] == "emergency"
    assert report["calls"]["in"]["kind"] == "inbound"
    assert EMERGENCY in port.sent and INBOUND in port.sent
    assert switch.stats.not_asked == 2


def test_funds_added_between_calls_pay_the_next_one_and_a_retried_cdr_is_a_duplicate(played):
    port, switch = played
    report = port.report()

    assert report["authorizations"]["after"]["max_seconds"] == 300
    assert report["calls"]["after"]["charge"] == "0.1150"
    assert report["counts"]["duplicates"] == 1
    assert [line["usage_id"] for line in port.sent if line.get("type") == "cdr"].count("after") == 2
    assert (switch.stats.asked, switch.stats.allowed, switch.stats.cut_short) == (3, 2, 1)


def test_lines_go_out_in_rounds_of_at_most_an_hour_and_administrative_lines_at_their_time(played):
    port, _ = played

    kinds = [line["type"] for line in port.sent[len(SETUP):]]
    assert kinds == ["call.authorize", "cdr",  # 09:00 round: the cut call ended at 09:02
                     "call.authorize", "cdr",  # 10:00 round, ended by the top-up at 11:00: the emergency call
                     "funds.added",
                     "call.authorize", "cdr", "cdr", "cdr"]  # 12:00 round: the retried CDR, the inbound call
    assert port.steps == ["ask", "cdrs", "ask", "cdrs", "admin", "ask", "cdrs"]


def test_a_generated_month_asks_before_every_billable_call_and_no_reservation_outlives_its_cdr():
    port = SimulatedPort()
    month = list(generate(4, 60, 1500, seed=5, days=5))
    first_cdr = next(index for index, line in enumerate(month) if isinstance(line, str) or line["type"] == "cdr")
    for line in month[:first_cdr]:
        port.administer(line)
    switch = Switch(port)
    switch.run(month[first_cdr:])
    report = port.report()

    decisions = report["authorizations"]
    generated = {line["usage_id"]: line for line in month if isinstance(line, dict) and line["type"] == "cdr"}
    billable = {usage_id for usage_id, cdr in generated.items() if cdr["call_type"] not in FREE_CALL_TYPES
                and not (cdr["call_type"] == "conf_in" and cdr.get("number_type") != "toll_free")}
    assert set(decisions) == billable  # every billable call asked once, no free call asked
    assert {record["status"] for record in decisions.values()} == {"settled", "denied"}  # none expired
    denied = {call_id for call_id, record in decisions.items() if record["decision"] == "denied"}
    assert denied and set(report["calls"]) == set(generated) - denied  # a denied call has no CDR
    for line in port.sent:
        if isinstance(line, dict) and line["type"] == "cdr" and "call_id" in line:
            record = decisions[line["call_id"]]
            assert record["decision"] == "allowed"
            assert line["duration_seconds"] <= record["max_seconds"]
            elapsed = parse_timestamp(line["end_time"]) - parse_timestamp(line["start_time"])
            assert elapsed.total_seconds() == line["duration_seconds"]
    assert switch.stats.asked == len(decisions)
    assert switch.stats.not_asked == len(generated) - len(billable)
