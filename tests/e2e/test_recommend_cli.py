"""`commcredits recommend` on a SQLite store seeded with SPEC examples 01-basics (contoso, USD,
legacy) and 03-nce-pools-bulk (northwind, NCE: overage only): the text and JSON answers, the
"no usage" answers, the exit status of each kind of mistake, and docs/recommend.md's examples.

The command is registered on an app of the test's own (`register(app)`), as commcredits/cli.py
will register it."""

import shlex
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest
import typer
from typer.testing import CliRunner

from application.billing_application import BillingApplication
from application.recommendation import Window
from application.reference_data import load_catalog
from application.settings import store_from_url
from commcredits import recommend_cli
from commcredits.recommend_cli import usage_window
from commcredits.simulate import Simulation
from domain.timestamps import parse_timestamp
from tests.support import SPEC_EXAMPLES, SPEC_RATES

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "recommend.md"
FIRST_QUARTER = ("--as-of", "2026-04-15T09:30:00Z")  # window 2026-01-01 .. 2026-04-01: u1..u6 of 01-basics


def recommend_app() -> typer.Typer:
    app = typer.Typer(add_completion=False)

    @app.callback()
    def _commands() -> None:
        """A test app holding only `recommend`."""

    recommend_cli.register(app)
    return app


@pytest.fixture(scope="module")
def database_url(tmp_path_factory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('recommend') / 'events.sqlite'}"
    billing = BillingApplication(env=store_from_url(url).env)
    try:
        for example in ("01-basics.jsonl", "03-nce-pools-bulk.jsonl"):
            Simulation(billing, SPEC_RATES, load_catalog(None)).run((SPEC_EXAMPLES / example).read_bytes().splitlines())
    finally:
        billing.close()
    return url


@pytest.fixture
def recommend(database_url):
    runner, app = CliRunner(), recommend_app()

    def invoke(*args: str, expect: int = 0, url: str = database_url):
        result = runner.invoke(app, ["recommend", *args], env={"COMMCREDITS_DATABASE_URL": url})
        assert result.exit_code == expect, (args, result.exit_code, result.stdout, result.stderr, result.exception)
        return result

    return invoke


def test_the_text_answer_gives_the_figures_then_the_reasoning(recommend):
    # 01-basics, January: 5 Jan u2 0.23 debited + u3 0.50 uncollected (no_credits_licence) = 0.73,
    # 6 Jan u4 16.20, 7 Jan u5 1.20; u1 is covered, u6 free; 87 other days are 0.
    # largest 16.20: trigger ceil(19.44) = 20; p90 = 0: recharge = trigger = 20;
    # average month 18.13 / 3 = 6.0433...: initial ceil(7.252) = 8
    lines = recommend("contoso", *FIRST_QUARTER).stdout.splitlines()
    assert lines[0] == "contoso: 3 months of usage from 2026-01-01 (included) to 2026-04-01 (excluded), margin 20 %"
    assert [line.split() for line in lines[2:5]] == [["initial", "funds", "8.0000", "USD"],
                                                    ["trigger", "amount", "20.0000", "USD"],
                                                    ["recharge", "amount", "20.0000", "USD"]]
    assert "Reasoning:" in lines
    assert any("18.1300 in total" in line for line in lines)  # uncollected demand counts


def test_the_json_answer_has_every_figure_as_a_four_decimal_string(recommend):
    document = orjson.loads(recommend("contoso", *FIRST_QUARTER, "--json").stdout)
    assert document["status"] == "recommended" and document["currency"] == "USD" and document["calls"] == 6
    assert document["window"] == {"start": "2026-01-01", "end": "2026-04-01", "months": 3, "days": 90}
    assert document["recommendation"] == {"initial_funds": "8.0000", "trigger_amount": "20.0000",
                                          "recharge_amount": "20.0000"}
    # sorted days: 87 zeros, 0.73, 1.20, 16.20: p50 rank 45 and p90 rank 81 are 0, p99 rank 90 is 16.20
    assert document["daily_spend"] == {"active_days": 3, "total": "18.1300", "p50": "0.0000", "p90": "0.0000",
                                       "p99": "16.2000", "largest": "16.2000", "largest_day": "2026-01-06",
                                       "average_month": "6.0433"}
    # U = 18.13 / 3 × 12 = 72.52; N = ceil(72.52 × 1.2 = 87.024) = 88; N − U = 15.48; H = max(8, 40) = 40 < U
    assert document["expiry"] == {"lot_lifetime_months": 12, "yearly_use": "72.5200", "naive_purchase": "88.0000",
                                  "naive_expiry": "15.4800", "largest_holding": "40.0000", "plan_expiry": "0.0000",
                                  "waste_avoided": "15.4800"}
    assert document["margin_percent"] == "20" and document["as_of"] == "2026-04-15T09:30:00Z"
    assert len(document["reasoning"]) == 7 and all(isinstance(sentence, str) for sentence in document["reasoning"])


def test_months_and_margin_change_the_window_and_the_figures(recommend):
    # one month (January), margin 0: trigger ceil(16.20) = 17; average month 18.13: initial ceil(18.13) = 19
    document = orjson.loads(recommend("contoso", "--months", "1", "--margin", "0", "--as-of", "2026-02-01T00:00:00Z",
                                      "--json").stdout)
    assert document["window"] == {"start": "2026-01-01", "end": "2026-02-01", "months": 1, "days": 31}
    assert document["recommendation"] == {"initial_funds": "19.0000", "trigger_amount": "17.0000",
                                          "recharge_amount": "17.0000"}
    # 12.5 %: trigger ceil(16.20 × 1.125 = 18.225) = 19; initial ceil(18.13 × 1.125 = 20.39625) = 21
    document = orjson.loads(recommend("contoso", "--months", "1", "--margin", "12.5", "--as-of",
                                      "2026-02-01T00:00:00Z", "--json").stdout)
    assert document["margin_percent"] == "12.5"
    assert document["recommendation"]["trigger_amount"] == "19.0000"
    assert document["recommendation"]["initial_funds"] == "21.0000"


def test_no_calls_in_the_window_is_an_answer_without_figures(recommend):
    text = recommend("contoso", "--as-of", "2026-12-01T00:00:00Z").stdout
    assert "No usage in the window" in text and "initial funds" not in text
    document = orjson.loads(recommend("contoso", "--as-of", "2026-12-01T00:00:00Z", "--json").stdout)
    assert document["status"] == "no_usage" and document["calls"] == 0
    assert document["recommendation"] is None and document["daily_spend"] is None and document["expiry"] is None


def test_calls_paid_by_overage_only_are_no_credit_spend(recommend):
    document = orjson.loads(recommend("northwind", "--as-of", "2026-07-01T00:00:00Z", "--json").stdout)
    assert document["status"] == "no_credit_spend" and document["calls"] > 0 and document["recommendation"] is None
    assert "none was paid from credits" in document["reasoning"][0]


def test_an_unknown_organization_exits_1_with_its_code(recommend):
    result = recommend("nobody", *FIRST_QUARTER, expect=1)
    assert result.stderr.startswith("commcredits: unknown_organization: ") and "nobody" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("options, message", [
    (("--months", "0"), "--months must be a whole number of months from 1 to 24, got 0"),
    (("--months", "25"), "--months must be a whole number of months from 1 to 24, got 25"),
    (("--margin", "-5"), "--margin must be a percentage from 0 to 1000 with at most 2 decimals"),
    (("--margin", "12.345"), "got '12.345'"),
    (("--margin", "1000.01"), "got '1000.01'"),
    (("--margin", "abc"), "got 'abc'"),
    (("--as-of", "2026-04-15"), "--as-of must be ISO 8601 with a UTC offset"),
    (("--as-of", "2026-02-30T00:00:00Z"), "--as-of is not a real date"),
])
def test_bad_options_exit_2_with_a_precise_message(recommend, options, message):
    result = recommend("contoso", *options, expect=2)
    assert result.stderr.startswith("commcredits: ") and message in result.stderr, result.stderr
    assert result.stdout == ""


def test_a_months_value_that_is_not_a_number_exits_2(recommend):
    assert "--months" in recommend("contoso", "--months", "three", expect=2).stderr


def test_a_store_that_does_not_answer_exits_3(recommend):
    result = recommend("contoso", *FIRST_QUARTER, expect=3, url="postgresql://postgres@127.0.0.1:1/nothing")
    assert result.stderr.startswith("commcredits: event store unavailable: ")


@pytest.mark.parametrize("as_of, months, window", [
    ("2026-04-15T09:30:00Z", 3, Window(datetime(2026, 1, 1).date(), datetime(2026, 4, 1).date())),
    ("2026-04-01T00:00:00Z", 3, Window(datetime(2026, 1, 1).date(), datetime(2026, 4, 1).date())),
    ("2026-04-01T00:30:00+01:00", 3, Window(datetime(2025, 12, 1).date(), datetime(2026, 3, 1).date())),  # March in UTC
    ("2024-03-10T00:00:00Z", 1, Window(datetime(2024, 2, 1).date(), datetime(2024, 3, 1).date())),  # 29 days
    ("2026-02-01T00:00:00Z", 24, Window(datetime(2024, 2, 1).date(), datetime(2026, 2, 1).date())),
])
def test_the_window_is_whole_utc_months_before_the_month_of_as_of(as_of, months, window):
    assert usage_window(parse_timestamp(as_of), months) == window


def test_the_default_as_of_is_now(recommend):
    before = datetime.now(timezone.utc).date().replace(day=1).isoformat()
    document = orjson.loads(recommend("contoso", "--json").stdout)
    after = datetime.now(timezone.utc).date().replace(day=1).isoformat()
    assert document["window"]["end"] in {before, after}  # a month may turn during the command


def documented_examples() -> list[tuple[str, str]]:
    """Each `$ commcredits recommend` line of docs/recommend.md and the block's lines after it."""
    lines, examples = DOCUMENT.read_text().splitlines(), []
    for number, line in enumerate(lines):
        if line.startswith("$ commcredits recommend "):
            end = lines.index("```", number)
            examples.append((line[2:], "\n".join(lines[number + 1:end]) + "\n"))
    return examples


def test_the_examples_in_docs_recommend_print_what_is_shown(recommend):
    examples = documented_examples()
    assert len(examples) == 3
    for command, expected in examples:
        assert recommend(*shlex.split(command)[2:]).stdout == expected, command
