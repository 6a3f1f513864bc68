"""Formulas and NULs from input in the files people open in a spreadsheet (docs/reports.md, "Text
from input in CSV"): the usage report's CSV quotes them with `'` (OWASP), its XLSX keeps them as
text cells with Excel's quote prefix, the audit journal's CSV quotes a hostile organization id;
numbers we write and E.164 phone numbers stay as they are."""

import csv
import io
from datetime import datetime, timezone

import orjson
import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from application.billing_application import BillingApplication
from application.commands import RateCdr
from application.reference_data import load_catalog
from application.settings import store_from_url
from commcredits.cli import app
from commcredits.simulate import Simulation
from commcredits.spreadsheet_text import cell_text, csv_text, starts_a_formula
from domain.calls import Cdr
from tests.support import SPEC_RATES, as_lines

ORG = '=HYPERLINK("http://x/org")'
ANN, EVIL_USER = "ann@contoso.example", "-2+3@contoso.example"
AT = "2026-01-01T00:00:00Z"
WINDOW = ("--from", "2026-01-01T00:00:00Z", "--to", "2026-02-01T00:00:00Z")
CALLER, DESTINATION = "+14255550100", "+442071234567"
SETUP = [
    {"type": "organization.created", "at": AT, "org": ORG, "name": "Contoso", "country": "US", "currency": "USD",
     "commerce": "legacy", "agreements": ["EA-1"]},
    {"type": "user.added", "at": AT, "org": ORG, "user": ANN, "usage_location": "US"},
    {"type": "user.added", "at": AT, "org": ORG, "user": EVIL_USER, "usage_location": "US"},
    {"type": "licences.assigned", "at": AT, "org": ORG, "users": [ANN, EVIL_USER],
     "licences": ["PHONE_SYSTEM", "CALLING_PLAN_PAYG"]},
    {"type": "order.placed", "at": AT, "org": ORG, "order": "o-1", "funds": "10",
     "auto_recharge": {"enabled": False}, "payment": {"method": "enterprise_agreement", "agreement": "EA-1",
                                                     "po": None}},
    {"type": "licences.assigned", "at": AT, "org": ORG, "users": [ANN, EVIL_USER],
     "licences": ["COMMUNICATIONS_CREDITS"]},
]


def cdr_line(usage_id: str, minute: int, *, user: str = ANN, call_id: str | None = None) -> dict:
    start = f"2026-01-05T10:{minute:02d}:00Z"
    return {"type": "cdr", "usage_id": usage_id, "org": ORG, "user": user, "call_type": "user_out",
            "caller_number": CALLER, "destination_number": DESTINATION, "start_time": start, "end_time": start,
            "duration_seconds": 60, "call_id": call_id}


# Through the CDR wire format (its identifiers take these as they are):
HOSTILE_LINES = [
    cdr_line('=HYPERLINK("http://x")', 1),
    cdr_line("@SUM(1)", 2, call_id="+1+cmd|' /C calc'!A0"),
    cdr_line("u-evil-user", 3, user=EVIL_USER),
]


def hostile_cdr(usage_id: str, minute: int, *, number_type: str | None, conference_id: str | None) -> RateCdr:
    """A CDR with control characters, as a writer that does not validate CDRs (or an older
    version's rules) may have stored it: rated straight through the service."""
    start = datetime(2026, 1, 5, 11, minute, tzinfo=timezone.utc)
    return RateCdr(Cdr(usage_id, ORG, ANN, "user_out", number_type, CALLER, DESTINATION, start, start, 60,
                       conference_id=conference_id))


STORED_CDRS = [
    hostile_cdr("u-tab", 1, number_type="\r=1", conference_id="\t=1"),
    hostile_cdr("u-control", 2, number_type=None, conference_id="\x01=2+3"),
]


def seed(database_url: str, stored_cdrs: list[RateCdr] = STORED_CDRS) -> None:
    billing = BillingApplication(env=store_from_url(database_url).env)
    try:
        simulation = Simulation(billing, SPEC_RATES, load_catalog(None))
        simulation.run(as_lines([*SETUP, *HOSTILE_LINES]))
        assert simulation.log.rejected == []
        for command in stored_cdrs:
            simulation.service.handle(command)
        simulation.service.flush()
    finally:
        billing.close()


def report_rows(cli) -> dict[str, dict[str, str]]:
    """The CSV report's rows by their Usage ID cell, as written."""
    records = csv.DictReader(io.StringIO(cli("report", "usage", ORG, *WINDOW).stdout, newline=""))
    return {record["Usage ID"]: record for record in records}


@pytest.fixture
def seeded(database_url) -> str:
    seed(database_url)
    return database_url


def test_the_usage_csv_quotes_every_cell_from_input_that_a_spreadsheet_would_run(seeded, cli):
    rows = report_rows(cli)
    assert set(rows) == {"'=HYPERLINK(\"http://x\")", "'@SUM(1)", "u-evil-user", "u-tab", "u-control"}
    assert rows["'@SUM(1)"]["Call ID"] == "'+1+cmd|' /C calc'!A0"
    assert rows["u-evil-user"]["UPN"] == "'-2+3@contoso.example"
    assert rows["u-tab"]["Conference ID"] == "'\t=1" and rows["u-tab"]["Number Type"] == "'\r=1"
    assert rows["u-control"]["Conference ID"] == "'=2+3"  # the hidden control character dropped first


def test_the_usage_csv_leaves_phone_numbers_and_our_numbers_as_they_are(seeded, cli):
    for record in report_rows(cli).values():
        assert record["Caller Number"] == CALLER and record["Destination Number"] == DESTINATION
        assert record["Charge"] == "0.0230" and record["Debited"] == "0.0230"  # one minute to the UK
        assert record["Start Time (UTC)"].startswith("2026-01-05T1") and record["Duration Seconds"] == "60"


def test_the_usage_xlsx_keeps_what_came_from_input_as_text_cells(seeded, cli, tmp_path):
    output = tmp_path / "usage.xlsx"
    cli("report", "usage", ORG, *WINDOW, "--format", "xlsx", "--output", str(output))
    sheet = load_workbook(output).active
    cells = [cell for row in sheet.iter_rows(min_row=2, max_row=sheet.max_row - 1) for cell in row]  # not Total
    assert not [cell.coordinate for cell in cells if cell.data_type == "f"]
    quoted = {cell.value for cell in cells if cell.quotePrefix}
    assert quoted == {'=HYPERLINK("http://x")', "@SUM(1)", "+1+cmd|' /C calc'!A0", EVIL_USER, "\t=1",
                      "\n=1",  # "\r=1": XML reads a carriage return back as a line feed
                      "=2+3"}  # "\x01=2+3": the control character a workbook cannot hold is dropped
    assert {cell.value for cell in cells if cell.column == 6} == {CALLER}  # Caller Number: text, no quote prefix


def test_the_audit_csv_quotes_a_hostile_organization_and_the_jsonl_keeps_it_exact(seeded, cli):
    rows = list(csv.DictReader(io.StringIO(cli("audit", "export", "--format", "csv").stdout, newline="")))
    entries = [orjson.loads(line) for line in cli("audit", "export", "--format", "jsonl").stdout.splitlines()]
    assert rows and {row["org"] for row in rows} == {"'" + ORG}
    assert {entry["org"] for entry in entries} == {ORG}
    assert {row["debit"] for row in rows} <= {"0.0000", "0.0230", "10.0000"}  # amounts: exact, unquoted


def test_a_stored_nul_is_dropped_from_the_csv_and_the_xlsx(tmp_path):
    """SQLite only: PostgreSQL's text columns cannot hold a NUL at all."""
    url = f"sqlite:///{tmp_path / 'store' / 'events.sqlite'}"
    seed(url, [hostile_cdr("u-nul", 3, number_type="voice\x00", conference_id="\x00=HYPERLINK(\"http://x\")")])
    runner = CliRunner()
    env = {"COMMCREDITS_DATABASE_URL": url}
    result = runner.invoke(app, ["report", "usage", ORG, *WINDOW], env=env)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "\x00" not in result.stdout
    (nul,) = [record for record in csv.DictReader(io.StringIO(result.stdout, newline=""))
              if record["Usage ID"] == "u-nul"]
    assert nul["Conference ID"] == "'=HYPERLINK(\"http://x\")" and nul["Number Type"] == "voice"
    output = tmp_path / "usage.xlsx"
    written = runner.invoke(app, ["report", "usage", ORG, *WINDOW, "--format", "xlsx", "--output", str(output)],
                            env=env)
    assert written.exit_code == 0, (written.stderr, written.exception)
    cells = {cell.value: cell for row in load_workbook(output).active.iter_rows(min_row=2) for cell in row}
    assert cells['=HYPERLINK("http://x")'].quotePrefix and cells["voice"].data_type == "s"


@pytest.mark.parametrize(("text", "cell"), [
    ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
    ("@SUM(1)", "'@SUM(1)"),
    ("+1+2", "'+1+2"),
    ("-2+3", "'-2+3"),
    ("\t=1", "'\t=1"),
    ("\r=1", "'\r=1"),
    ("a\x00b", "ab"),
    ("\x00=1", "'=1"),
    ("\x01=1", "'=1"),
    ("a\x1fb\nc", "ab\nc"),
    ("-", "'-"),
    ("+14255550100", "+14255550100"),
    ("+1 425 555 0100", "'+1 425 555 0100"),
    ("+" + "1" * 16, "'+" + "1" * 16),
    ("+١٤٢٥", "'+١٤٢٥"),
    ("plain", "plain"),
    ("a=1", "a=1"),
    ("", ""),
], ids=["hyperlink", "at", "plus formula", "minus formula", "tab", "carriage return", "NUL", "NUL then formula",
        "control character then formula", "control characters but line feed", "lone minus", "E.164 number",
        "spaced number", "too long for E.164", "non-ASCII digits", "plain", "equals inside", "empty"])
def test_csv_text_quotes_what_a_spreadsheet_would_run_and_nothing_else(text: str, cell: str) -> None:
    assert csv_text(text) == cell
    assert starts_a_formula(cell_text(text)) == (cell != cell_text(text))
