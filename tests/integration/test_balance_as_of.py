"""`balance --as-of`: the account as it stood at a moment, from the event history. The oracle is
`simulate` run on the lines up to that moment: the two must agree at every line's time and one
second before it, on SQLite and PostgreSQL."""

from datetime import datetime, timedelta

import orjson
import pytest

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from commcredits.balance_page import balance_as_of
from commcredits.simulate import Simulation
from domain.timestamps import parse_timestamp
from tests.support import SPEC_EXAMPLES, SPEC_RATES, simulate_lines

EXAMPLES = ["01-basics", "02-expiry-and-recharge"]


def timed_lines(example: str) -> list[tuple[datetime | None, bytes]]:
    """Each line with the time it is applied at (a CDR's end, a command's `at`); a malformed line
    has none (it changes nothing)."""
    result = []
    for raw in (SPEC_EXAMPLES / f"{example}.jsonl").read_bytes().splitlines():
        try:
            document = orjson.loads(raw)
            at = document.get("end_time") or document.get("at")
            result.append((parse_timestamp(at) if isinstance(at, str) else None, raw))
        except (orjson.JSONDecodeError, AttributeError, ValueError):
            result.append((None, raw))
    return result


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_account_at_any_moment_is_what_simulate_says_of_the_lines_until_then(example, store):
    lines = timed_lines(example)
    app = BillingApplication(env=store.env)
    Simulation(app, SPEC_RATES, load_catalog(None)).run(raw for _, raw in lines)
    moments = sorted({at for at, _ in lines if at is not None})
    try:
        for moment in moments + [moment - timedelta(seconds=1) for moment in moments]:
            until_then = [raw for at, raw in lines if at is None or at <= moment]
            expected = simulate_lines(until_then)["organizations"]
            for org, organization in expected.items():
                shown = balance_as_of(app, org, moment)
                assert shown is not None, (org, moment)
                assert {key: shown[key] for key in organization} == organization, (org, moment)
        first = moments[0] - timedelta(seconds=1)
        assert all(balance_as_of(app, org, first) is None for org in expected)  # not opened yet
    finally:
        app.close()
