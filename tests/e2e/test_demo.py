"""`commcredits demo`: a generated month through the live pipeline ends where `simulate` does."""

import pytest

from application.reference_data import load_rate_card
from commcredits.demo import run_demo
from commcredits.scenario import encoded, generate
from tests.support import simulate_lines


@pytest.mark.slow
def test_the_demo_month_through_kafka_ends_with_simulates_balances(tmp_path):
    size = {"organizations": 3, "users": 60, "cdrs": 3000, "seed": 11}
    result = run_demo(tmp_path, **size)
    expected = simulate_lines([encoded(line) for line in generate(*size.values())], rate_card=load_rate_card(None))

    assert result.report["organizations"] == expected["organizations"]
    assert result.report["calls"] == expected["calls"]
    assert result.published_cdrs == expected["counts"]["rated"] + expected["counts"]["duplicates"] + \
        expected["counts"]["rejected"] + 1  # + the malformed line, parked on the dead-letter topic
    assert result.dead_letters == expected["counts"]["rejected"] + 1
    assert result.relayed_events == result.stored_events
    # the month's story: a recharge failed on the expired card, funds expired a year on
    organizations = result.report["organizations"].values()
    assert any(org["recharges"]["failed"] for org in organizations)
    assert any(org["totals"]["expired"] != "0.0000" for org in organizations)
    assert "org-003" in result.summary
