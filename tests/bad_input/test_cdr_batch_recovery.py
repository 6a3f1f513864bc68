"""Item 1 (the consumer): every message of a batch ends rated or dead-lettered, never neither.

Before: in the batch `A1, A2, X, B1, B2, Y, C1, D1, Z, E1`, where X, Y and Z raised something
other than a rejection, only C1, D1 and E1 were rated: the recovery path for an unexpected error
called itself, and the inner `discard()` threw away the outer call's re-rated work, while the
saved position moved past A1..B2. With `call_type` `[]`, `{}` or `[1]` the validator raised
`TypeError`; that is now `invalid_input` (test_any_json_in_any_field), so the bug path is also
driven here by a service that fails on purpose.
"""

import orjson
import pytest

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from application.service import BillingService
from commcredits.simulate import Simulation, report_document
from consumers.cdr_rating import INTERNAL_ERROR, CdrMessage, CdrRater
from domain.payments import SimulatedGateway
from tests.bad_input.hostile_cdrs import SETUP_LINES
from tests.integration.test_cdr_consumer import CDR
from tests.support import SPEC_RATES, simulate_lines

TOPIC = "cdr.v1"
NAMES = ("A1", "A2", "X", "B1", "B2", "Y", "C1", "D1", "Z", "E1")
BAD = {"X": [], "Y": {}, "Z": [1]}


def cdr_line(name: str, index: int, **changes) -> bytes:
    start = f"2026-01-10T{9 + index:02d}:00:00Z"
    return orjson.dumps({**CDR, "usage_id": name, "start_time": start, "end_time": start.replace(":00:00Z", ":05:00Z"),
                         **changes})


def batch(values: list[bytes]) -> list[CdrMessage]:
    return [CdrMessage(TOPIC, 0, offset, b"contoso", value) for offset, value in enumerate(values)]


class FailingOn(BillingService):
    """A billing service with a bug for some usage ids: it raises half-way through rating them,
    after the account has already been changed in memory."""

    failing: frozenset[str] = frozenset()

    def _handle_RateCdr(self, command):
        outcome = super()._handle_RateCdr(command)
        if command.cdr.usage_id in self.failing:
            raise RuntimeError(f"bug while rating {command.cdr.usage_id}")
        return outcome


def rater_on(store, service_class=BillingService):
    app = BillingApplication(env=store.env)
    Simulation(app, SPEC_RATES, load_catalog(None)).run(SETUP_LINES)
    service = service_class(app, SPEC_RATES, load_catalog(None), SimulatedGateway())
    return app, CdrRater(service)


def rated_in_store(app) -> dict:
    return report_document(app, Simulation(app, SPEC_RATES, load_catalog(None)).log)


def test_call_types_that_are_not_strings_are_dead_letters_and_the_rest_is_rated(store):
    values = [cdr_line(name, index, call_type=BAD.get(name, "user_out")) for index, name in enumerate(NAMES)]
    app, rater = rater_on(store)
    outcome = rater.rate_batch(batch(values))
    rater.commit(outcome, TOPIC, 0)
    assert outcome.rated == 7 and [letter.code for letter in outcome.dead_letters] == ["invalid_input"] * 3
    assert [letter.message.offset for letter in outcome.dead_letters] == [2, 5, 8]
    report = rated_in_store(app)
    good = [value for name, value in zip(NAMES, values) if name not in BAD]
    expected = simulate_lines(SETUP_LINES + [orjson.dumps({**orjson.loads(v), "type": "cdr"}) for v in good])
    assert report["calls"] == expected["calls"] and report["organizations"] == expected["organizations"]
    app.close()


@pytest.mark.parametrize("failing", [{"X", "Y", "Z"}, {"A1"}, {"E1"}, set(NAMES)])
def test_bugs_park_only_their_own_messages_and_keep_the_others_work(store, failing):
    class Failing(FailingOn):
        pass

    Failing.failing = frozenset(failing)
    values = [cdr_line(name, index) for index, name in enumerate(NAMES)]
    app, rater = rater_on(store, Failing)
    outcome = rater.rate_batch(batch(values))
    rater.commit(outcome, TOPIC, 0)
    assert outcome.rated == len(NAMES) - len(failing)
    assert {letter.message.value for letter in outcome.dead_letters} == {v for n, v in zip(NAMES, values) if n in failing}
    assert all(letter.code == INTERNAL_ERROR and "RuntimeError: bug while rating" in letter.reason
               for letter in outcome.dead_letters)
    assert outcome.last_offset == len(NAMES) - 1
    report = rated_in_store(app)
    expected = simulate_lines(SETUP_LINES + [orjson.dumps({**orjson.loads(v), "type": "cdr"})
                                             for n, v in zip(NAMES, values) if n not in failing])
    assert report["calls"] == expected["calls"]
    assert report["organizations"] == expected["organizations"]  # no half-applied charge of a parked CDR
    app.close()
