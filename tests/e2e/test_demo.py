"""`commcredits demo`: a generated month through the live pipeline ends where `simulate` does,
with its switch asking before each billable call (SPEC §13) and without (`--no-authorize`)."""

from decimal import Decimal

import orjson
import pytest

from application.reference_data import load_rate_card
from commcredits.demo import run_demo
from commcredits.scenario import encoded, generate
from tests.support import simulate_lines

FREE_CALL_TYPES = {"emergency_out", "user_in"}  # the generated month's conf_in calls are all toll-free


@pytest.mark.slow
def test_the_demo_month_through_kafka_ends_with_simulates_balances(tmp_path):
    size = {"organizations": 3, "users": 60, "cdrs": 3000, "seed": 11}
    result = run_demo(tmp_path, **size, authorize=False)
    expected = simulate_lines([encoded(line) for line in generate(*size.values())], rate_card=load_rate_card(None))

    assert result.report["organizations"] == expected["organizations"]
    assert result.report["calls"] == expected["calls"]
    assert result.report["authorizations"] == {} and result.switch is None  # nothing asked
    assert result.published_cdrs == expected["counts"]["rated"] + expected["counts"]["duplicates"] + \
        expected["counts"]["rejected"] + 1  # + the malformed line, parked on the dead-letter topic
    assert result.dead_letters == expected["counts"]["rejected"] + 1
    assert result.relayed_events == result.stored_events
    # the month's story: a recharge failed on the expired card, funds expired a year on
    organizations = result.report["organizations"].values()
    assert any(org["recharges"]["failed"] for org in organizations)
    assert any(org["totals"]["expired"] != "0.0000" for org in organizations)
    assert "org-003" in result.summary
    assert "call authorizations" not in result.summary


@pytest.fixture(scope="module")
def authorized(tmp_path_factory):
    """A short month (four office days) with four organizations: the third tops up by hand and runs out."""
    size = {"organizations": 4, "users": 60, "cdrs": 3000, "seed": 11, "days": 5}
    result = run_demo(tmp_path_factory.mktemp("demo"), **size)
    month = [orjson.loads(line) for line in result.month.read_bytes().splitlines() if line.startswith(b"{")]
    return size, result, month


@pytest.mark.slow
def test_the_authorized_month_through_kafka_ends_where_simulate_of_its_lines_ends(authorized):
    _, result, _ = authorized
    expected = simulate_lines(result.month.read_bytes().splitlines(), rate_card=load_rate_card(None))

    assert result.report["authorizations"] == expected["authorizations"]
    assert result.report["calls"] == expected["calls"]
    assert result.report["organizations"] == expected["organizations"]
    assert result.relayed_events == result.stored_events


@pytest.mark.slow
def test_every_published_billable_cdr_was_allowed_and_lasts_no_longer_than_its_max_seconds(authorized):
    _, result, month = authorized
    decisions = result.report["authorizations"]
    cdrs = [line for line in month if line["type"] == "cdr"]

    billable = [cdr for cdr in cdrs if cdr["call_type"] not in FREE_CALL_TYPES]
    assert billable and all(decisions[cdr["call_id"]]["decision"] == "allowed" for cdr in billable)
    assert all(cdr["duration_seconds"] <= decisions[cdr["call_id"]]["max_seconds"] for cdr in billable)
    allowed = {call_id for call_id, record in decisions.items() if record["decision"] == "allowed"}
    assert {decisions[call_id]["status"] for call_id in allowed} == {"settled"}  # every reservation by its CDR


@pytest.mark.slow
def test_denied_calls_have_no_cdr_and_free_calls_are_not_asked(authorized):
    size, result, month = authorized
    decisions = result.report["authorizations"]
    generated = {line["usage_id"]: line for line in generate(**size)
                 if isinstance(line, dict) and line["type"] == "cdr"}

    denied = {call_id for call_id, record in decisions.items() if record["decision"] == "denied"}
    assert denied and not denied & {line["usage_id"] for line in month if line["type"] == "cdr"}
    assert set(result.report["calls"]) == set(generated) - denied
    free = {usage_id for usage_id, cdr in generated.items() if cdr["call_type"] in FREE_CALL_TYPES}
    asked = {line["call_id"] for line in month if line["type"] == "call.authorize"}
    assert free and not free & asked and asked == set(decisions)
    assert result.switch.asked == len(decisions) and result.switch.not_asked == len(free)


@pytest.mark.slow
def test_with_authorization_less_goes_uncollected_than_in_the_same_month_without(authorized):
    size, result, _ = authorized
    without = simulate_lines([encoded(line) for line in generate(**size)], rate_card=load_rate_card(None))
    codes = {record["code"] for record in result.report["authorizations"].values()}

    def uncollected(report):
        return {org: Decimal(state["totals"]["uncollected"]) for org, state in report["organizations"].items()}

    assert {"insufficient_funds", "no_credits_licence"} <= codes  # org-003 ran out; unlicensed users abroad
    assert sum(uncollected(result.report).values()) < sum(uncollected(without).values())
    assert all(uncollected(result.report)[org] <= amount for org, amount in uncollected(without).items())
    table = result.summary.split("without (--no-authorize)", 1)[1]
    for org, state in without["organizations"].items():  # the summary sets each beside the other
        line = next(line for line in table.splitlines() if line.startswith(org))
        assert line.split()[-2:] == [result.report["organizations"][org]["totals"]["uncollected"],
                                     state["totals"]["uncollected"]]
    assert f"denied {sum(1 for r in result.report['authorizations'].values() if r['decision'] == 'denied')}" \
        in result.summary
