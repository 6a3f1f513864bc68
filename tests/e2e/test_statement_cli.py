"""`commcredits statement` on a persistent store (a SQLite file and real PostgreSQL) seeded with
the SPEC's basics example and an organization whose name is markup: each format, and the exit
status and message of each kind of mistake.

The command is registered on an app of the test's own (`statement_cli.register`), as
`commcredits.cli` registers it.
"""

import html

import orjson
import pytest
import typer
from typer.testing import CliRunner

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from application.settings import store_from_url
from commcredits import statement_cli
from commcredits.simulate import Simulation
from tests.conftest import POSTGRES_URL
from tests.support import SPEC_EXAMPLES, SPEC_RATES, as_lines

EXPECTED = orjson.loads((SPEC_EXAMPLES / "01-basics.expected.json").read_bytes())["organizations"]["contoso"]
MARKUP_NAME = "<script>alert('x')</script> & Co"
MARKUP_ORG = {"type": "organization.created", "at": "2027-02-01T00:00:00Z", "org": "markup", "name": MARKUP_NAME,
              "country": "US", "currency": "USD", "commerce": "nce"}


def statement_app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def _commands() -> None:
        """A group, so that `statement` is a subcommand as in `commcredits`."""

    statement_cli.register(app)
    return app


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'statement' / 'events.sqlite'}"
    else:
        url = f"{POSTGRES_URL}?schema={request.getfixturevalue('postgres_schema')}"
    billing = BillingApplication(env=store_from_url(url).env)
    try:
        lines = (SPEC_EXAMPLES / "01-basics.jsonl").read_bytes().splitlines() + as_lines([MARKUP_ORG])
        Simulation(billing, SPEC_RATES, load_catalog(None)).run(lines)
    finally:
        billing.close()
    return url


@pytest.fixture
def statement(database_url):
    runner, app = CliRunner(), statement_app()

    def invoke(*args: str, expect: int = 0):
        result = runner.invoke(app, ["statement", *args], env={"COMMCREDITS_DATABASE_URL": database_url})
        assert result.exit_code == expect, (args, result.exit_code, result.stdout, result.stderr, result.exception)
        return result

    return invoke


def test_json_is_the_default_and_the_last_month_closes_at_the_expected_balance(statement):
    document = orjson.loads(statement("contoso", "--month", "2027-01").stdout)  # 01-basics ends in January 2027
    assert document["closing_balance"] == EXPECTED["balance"]
    assert document["org"] == "contoso" and document["month"] == "2027-01" and document["currency"] == "USD"


def test_a_month_without_activity_opens_and_closes_at_the_same_balance(statement):
    """01-basics has nothing in February 2026: it opens where January closed."""
    january = orjson.loads(statement("contoso", "--month", "2026-01").stdout)
    february = orjson.loads(statement("contoso", "--month", "2026-02").stdout)
    assert february["opening_balance"] == february["closing_balance"] == january["closing_balance"]


def test_text_lists_the_figures(statement):
    output = statement("contoso", "--month", "2027-01", "--format", "text").stdout
    assert "Communications Credits statement 2027-01: Contoso (contoso)" in output
    assert any(line.startswith("Closing balance") and line.endswith(EXPECTED["balance"])
               for line in output.splitlines())


def test_html_to_a_file_escapes_the_organization_name(statement, tmp_path):
    output = tmp_path / "markup.html"
    result = statement("markup", "--month", "2027-02", "--format", "html", "--output", str(output))
    assert result.stdout == ""
    document = output.read_text()
    assert document.startswith("<!DOCTYPE html>") and "<script>" not in document
    assert html.escape(MARKUP_NAME) in document
    assert "Overage to invoice" in document  # an NCE organization


def test_a_month_that_does_not_exist_is_bad_usage(statement):
    result = statement("contoso", "--month", "2026-13", expect=2)
    assert result.stderr == "commcredits: --month '2026-13' has no month 13: months are 01 to 12\n"
    assert "YYYY-MM" in statement("contoso", "--month", "2026-1", expect=2).stderr
    assert "2000-2199" in statement("contoso", "--month", "2300-01", expect=2).stderr


def test_an_unknown_organization_is_exit_1_with_its_code(statement):
    result = statement("nobody", "--month", "2026-01", expect=1)
    assert result.stderr.startswith("commcredits: unknown_organization: ")


def test_an_unwritable_output_is_bad_usage(statement, tmp_path):
    result = statement("contoso", "--month", "2026-01", "--output", str(tmp_path / "missing" / "s.json"), expect=2)
    assert "cannot be written" in result.stderr


def test_a_store_that_does_not_answer_is_exit_3():
    url = "postgresql://postgres@127.0.0.1:1/nothing?connect_timeout=2"
    result = CliRunner().invoke(statement_app(), ["statement", "contoso", "--month", "2026-01"],
                                env={"COMMCREDITS_DATABASE_URL": url})
    assert result.exit_code == 3, (result.stdout, result.stderr)
    assert result.stderr.startswith("commcredits: event store unavailable")
