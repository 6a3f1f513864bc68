"""SPEC §11: `commcredits simulate` agrees with every worked example, as parsed JSON."""

import json
import subprocess
import sys

import pytest

from tests.support import SPEC_EXAMPLES

SCENARIOS = sorted(SPEC_EXAMPLES.glob("*.jsonl"))


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda path: path.stem)
@pytest.mark.parametrize("store", ["memory", "sqlite-memory", "sqlite-file"])
def test_simulate_output_equals_expected(scenario, store):
    result = subprocess.run(
        [sys.executable, "-m", "commcredits.cli", "simulate", str(scenario), "--rates",
         str(SPEC_EXAMPLES / "rates.csv"), "--store", store],
        capture_output=True, check=True,
    )
    expected = json.loads(scenario.with_suffix(".expected.json").read_text())
    assert json.loads(result.stdout) == expected


def test_all_five_examples_are_present():
    assert len(SCENARIOS) == 5
