"""`commcredits report usage` on a persistent store (a SQLite file and real PostgreSQL) seeded
with the SPEC's basics example: each format written and read back, and the exit status and
message of each kind of mistake."""

import csv
import io
import shlex
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from application.settings import store_from_url
from commcredits.cli import app
from commcredits.report_cli import read_usage_rows
from commcredits.simulate import Simulation
from tests.conftest import POSTGRES_URL
from tests.support import SPEC_EXAMPLES, SPEC_RATES

ORG = "contoso"
JANUARY = ("--from", "2026-01-01T00:00:00Z", "--to", "2026-02-01T00:00:00Z")
IN_JANUARY = ["u1", "u2", "u3", "u4", "u5", "u6"]  # 01-basics: u7 starts on 2 April


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'report' / 'events.sqlite'}"
    else:
        url = f"{POSTGRES_URL}?schema={request.getfixturevalue('postgres_schema')}"
    billing = BillingApplication(env=store_from_url(url).env)
    try:
        Simulation(billing, SPEC_RATES, load_catalog(None)).run(
            (SPEC_EXAMPLES / "01-basics.jsonl").read_bytes().splitlines())
    finally:
        billing.close()
    return url


@pytest.fixture
def report(database_url):
    runner = CliRunner()

    def invoke(*args: str, expect: int = 0):
        result = runner.invoke(app, ["report", "usage", *args], env={"COMMCREDITS_DATABASE_URL": database_url})
        assert result.exit_code == expect, (args, result.exit_code, result.stdout, result.stderr, result.exception)
        return result

    return invoke


def test_csv_goes_to_stdout_by_default(report):
    records = list(csv.DictReader(io.StringIO(report(ORG, *JANUARY).stdout)))
    assert [record["Usage ID"] for record in records] == IN_JANUARY
    assert records[3]["Charge"] == "16.2000" and records[3]["Debited"] == "16.2000"  # u4: 180 min × 0.09


def test_json_lists_the_calls_with_amounts_as_strings(report):
    documents = orjson.loads(report(ORG, *JANUARY, "--format", "json").stdout)
    assert [document["usage_id"] for document in documents] == IN_JANUARY
    assert documents[2]["uncollected"] == "0.5000" and documents[2]["reason"] == "no_credits_licence"


def test_json_to_a_file_writes_nothing_on_stdout(report, tmp_path):
    output = tmp_path / "january.json"
    result = report(ORG, *JANUARY, "--format", "json", "--output", str(output))
    assert result.stdout == ""
    assert [document["usage_id"] for document in orjson.loads(output.read_bytes())] == IN_JANUARY


def test_xlsx_is_written_to_the_output_file(report, tmp_path):
    output = tmp_path / "january.xlsx"
    report(ORG, *JANUARY, "--format", "xlsx", "--output", str(output))
    sheet = load_workbook(output).active
    assert [row[0] for row in sheet.iter_rows(values_only=True)] == ["Usage ID", *IN_JANUARY, "Total"]
    assert sheet.freeze_panes == "A2"


def test_from_with_an_offset_selects_what_its_utc_equivalent_selects(report):
    in_utc = report(ORG, "--from", "2026-01-06T00:00:00Z", "--to", "2026-04-02T10:00:00Z").stdout
    with_offset = report(ORG, "--from", "2026-01-06T02:00:00+02:00", "--to", "2026-04-02T10:00:00Z").stdout
    assert with_offset == in_utc
    # u4 starts at 2026-01-06T10:00Z (included); u7 exactly at --to (excluded)
    assert [record["Usage ID"] for record in csv.DictReader(io.StringIO(in_utc))] == ["u4", "u5", "u6"]


def test_an_unknown_organization_exits_1_with_its_code(report):
    result = report("nobody", *JANUARY, expect=1)
    assert result.stderr.startswith("commcredits: unknown_organization: ") and "nobody" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("window, message", [
    (("--from", "2026-01-01", "--to", "2026-02-01T00:00:00Z"), "--from must be ISO 8601 with a UTC offset"),
    (("--from", "2026-01-01T00:00:00Z", "--to", "2026-02-30T00:00:00Z"), "--to is not a real date"),
    (("--from", "2026-02-01T00:00:00Z", "--to", "2026-02-01T00:00:00Z"), "--from (2026-02-01T00:00:00Z) must be "
                                                                         "before --to (2026-02-01T00:00:00Z)"),
    (("--from", "2026-02-01T01:00:00+01:00", "--to", "2026-02-01T00:00:00Z"), "must be before --to"),
])
def test_a_bad_window_exits_2_with_a_precise_message(report, window, message):
    result = report(ORG, *window, expect=2)
    assert result.stderr.startswith("commcredits: ") and message in result.stderr, result.stderr


def test_xlsx_without_an_output_file_exits_2(report):
    result = report(ORG, *JANUARY, "--format", "xlsx", expect=2)
    assert "--output" in result.stderr and result.stdout == ""


def test_an_unknown_format_exits_2(report):
    report(ORG, *JANUARY, "--format", "pdf", expect=2)


DOC_COMMANDS = [line[2:] for line in (Path(__file__).resolve().parents[2] / "docs" / "reports.md").read_text()
                .splitlines() if line.startswith("$ commcredits ")]


def test_the_examples_in_docs_reports_run_as_written(database_url, tmp_path, monkeypatch):
    assert DOC_COMMANDS
    monkeypatch.chdir(tmp_path)  # where the examples' --output files land
    for command in DOC_COMMANDS:
        argv = shlex.split(command)[1:]
        result = CliRunner().invoke(app, argv, env={"COMMCREDITS_DATABASE_URL": database_url})
        assert result.exit_code == 0, (command, result.stderr)
        output = argv[argv.index("--output") + 1] if "--output" in argv else None
        assert (tmp_path / output).stat().st_size > 0 if output else result.stdout.strip(), command


def test_reports_run_at_the_same_time_each_catch_the_view_up_once(database_url):
    """A report made the view; more calls were rated since; four processes' worth of reports then
    race to catch it up: the losers start again from the winner's position, and every one of
    them reports every call once."""
    store = store_from_url(database_url)
    window = (datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2027, 1, 1, tzinfo=timezone.utc))
    apps = [BillingApplication(env=store.env) for _ in range(4)]
    try:
        assert len(read_usage_rows(apps[0], store, ORG, *window)) == 7
        Simulation(apps[0], SPEC_RATES, load_catalog(None)).run(
            (SPEC_EXAMPLES / "02-expiry-and-recharge.jsonl").read_bytes().splitlines())
        with ThreadPoolExecutor(max_workers=len(apps)) as pool:
            reports = list(pool.map(lambda billing: [row.usage_id for row in
                                                     read_usage_rows(billing, store, "fabrikam", *window)], apps))
    finally:
        for billing in apps:
            billing.close()
    assert reports == [["f1", "f2", "f3", "f4", "f5"]] * len(apps)


def test_a_store_that_does_not_answer_exits_3():
    result = CliRunner().invoke(app, ["report", "usage", ORG, *JANUARY],
                                env={"COMMCREDITS_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/nothing"})
    assert result.exit_code == 3, (result.stderr, result.exception)
    assert result.stderr.startswith("commcredits: event store unavailable: ")
