"""The usage report's files read back: XLSX with openpyxl (header, frozen pane, typed cells, a
totals row equal to sums computed here from the SPEC examples' expected files and CDR lines),
and CSV and JSON parsing back to the same rows."""

import csv
import io
import re
from dataclasses import replace
from datetime import datetime, timezone
from decimal import Decimal

import orjson
import pytest
from openpyxl import load_workbook

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from application.settings import sqlite_store
from commcredits.simulate import Simulation
from commcredits.usage_export import csv_bytes, json_bytes, xlsx_bytes
from projections.projector import Projector
from projections.runner import catch_up
from projections.sources import StoreLog
from projections.usage_queries import usage_rows
from projections.usage_report import UsageReport
from projections.view_database import ViewDatabase
from tests.support import SPEC_EXAMPLES, SPEC_RATES

UTC = timezone.utc
EXAMPLES = sorted(path.stem for path in SPEC_EXAMPLES.glob("*.jsonl"))
ALL_TIME = (datetime(2000, 1, 1, tzinfo=UTC), datetime(2200, 1, 1, tzinfo=UTC))
FOUR_DECIMALS = re.compile(r"[0-9]+\.[0-9]{4}")
AMOUNTS = ("connection_fee", "charge", "debited", "uncollected", "overage")
INTEGERS = ("duration_seconds", "billed_minutes", "covered_minutes")


def example_rows(example: str, tmp_path) -> list:
    store = sqlite_store(tmp_path / "events.sqlite")
    app = BillingApplication(env=store.env)
    database = ViewDatabase.for_store(store)
    try:
        Simulation(app, SPEC_RATES, load_catalog(None)).run((SPEC_EXAMPLES / f"{example}.jsonl").read_bytes()
                                                            .splitlines())
        view = UsageReport()
        catch_up(Projector(view, database), StoreLog(app))
        orgs = orjson.loads((SPEC_EXAMPLES / f"{example}.expected.json").read_bytes())["organizations"]
        return [row for org in orgs for row in usage_rows(database, view, org, *ALL_TIME)]
    finally:
        database.close()
        app.close()


def expected_totals(example: str) -> dict:
    """From the expected file's `calls` and the CDR lines themselves, not from the report. A
    call's line is the first of its usage id that the expected file does not list as rejected
    (a later one is a duplicate)."""
    expected = orjson.loads((SPEC_EXAMPLES / f"{example}.expected.json").read_bytes())
    calls, rejected = expected["calls"], {entry["line"] for entry in expected["rejected"]}
    durations = {}
    for number, line in enumerate((SPEC_EXAMPLES / f"{example}.jsonl").read_bytes().splitlines(), start=1):
        if number in rejected or not line.strip():
            continue
        document = orjson.loads(line)
        if document["type"] == "cdr":
            durations.setdefault(document["usage_id"], document["duration_seconds"])
    assert durations.keys() == calls.keys()
    totals = {name: sum(Decimal(call[name]) for call in calls.values())
              for name in ("charge", "debited", "uncollected", "overage")}
    totals["billed_minutes"] = sum(call["billed_minutes"] for call in calls.values())
    totals["covered_minutes"] = sum(call["covered_minutes"] for call in calls.values())
    totals["duration_seconds"] = sum(durations.values())
    return totals


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_workbook_has_a_frozen_header_typed_cells_and_an_exact_totals_row(example, tmp_path):
    rows = example_rows(example, tmp_path)
    sheet = load_workbook(io.BytesIO(xlsx_bytes(rows))).active
    header = [cell.value for cell in sheet[1]]
    column = {title: index for index, title in enumerate(header)}
    assert header[:3] == ["Usage ID", "Call ID", "Conference ID"]
    assert "Start Time (UTC)" in column and "End Time (UTC)" in column and "Charge" in column
    assert sheet.freeze_panes == "A2"
    assert sheet.max_row == len(rows) + 2  # header, one row per call, the totals

    for row, cells in zip(rows, sheet.iter_rows(min_row=2, max_row=len(rows) + 1)):
        assert cells[column["Usage ID"]].value == row.usage_id
        charge = cells[column["Charge"]]
        assert charge.data_type == "n" and charge.number_format == "0.0000"
        assert Decimal(str(charge.value)) == row.charge
        assert type(cells[column["Duration Seconds"]].value) is int
        assert type(cells[column["Billed Minutes"]].value) is int
        start = cells[column["Start Time (UTC)"]]
        assert start.is_date and isinstance(start.value, datetime) and start.value.tzinfo is None
        assert start.value == row.start_time.astimezone(UTC).replace(tzinfo=None)

    totals = [cell.value for cell in sheet[len(rows) + 2]]
    assert totals[0] == "Total"
    expected = expected_totals(example)
    for title, name in (("Charge", "charge"), ("Debited", "debited"), ("Uncollected", "uncollected"),
                        ("Overage", "overage")):
        assert Decimal(str(totals[column[title]])) == expected[name], title
    for title, name in (("Duration Seconds", "duration_seconds"), ("Billed Minutes", "billed_minutes"),
                        ("Covered Minutes", "covered_minutes")):
        assert totals[column[title]] == expected[name], title
        assert type(totals[column[title]]) is int


@pytest.mark.parametrize("example", EXAMPLES)
def test_csv_and_json_parse_back_to_the_same_rows(example, tmp_path):
    rows = example_rows(example, tmp_path)
    documents = orjson.loads(json_bytes(rows))
    records = list(csv.reader(io.StringIO(csv_bytes(rows).decode("utf-8"), newline="")))
    header, lines = records[0], records[1:]
    assert header[0] == "Usage ID" and len(lines) == len(documents) == len(rows)
    for row, document, line in zip(rows, documents, lines):
        assert len(line) == len(header) == len(document)
        for (name, value), text in zip(document.items(), line):  # CSV columns in JSON key order
            if isinstance(value, dict):
                assert orjson.loads(text) == value, name
            else:
                assert text == ("" if value is None else str(value)), name
        for name in AMOUNTS:
            assert FOUR_DECIMALS.fullmatch(document[name]) and Decimal(document[name]) == getattr(row, name)
        for name in INTEGERS:
            assert type(document[name]) is int and document[name] == getattr(row, name)
        assert datetime.fromisoformat(document["start_time"].replace("Z", "+00:00")) == row.start_time
        assert document["start_time"].endswith("Z")
        assert document["usage_id"] == row.usage_id and document["rate"] == row.rate


def test_an_empty_report_still_has_its_header_and_a_zero_totals_row():
    sheet = load_workbook(io.BytesIO(xlsx_bytes([]))).active
    assert sheet.max_row == 2 and sheet["A2"].value == "Total"
    assert orjson.loads(json_bytes([])) == []
    assert csv_bytes([]).decode().count("\r\n") == 1


def test_text_that_looks_like_a_formula_stays_text_in_the_workbook(tmp_path):
    row = example_rows("01-basics", tmp_path)[0]
    tricky = replace(row, usage_id="=HYPERLINK(\"http://example.com\")", upn="=1+1")
    sheet = load_workbook(io.BytesIO(xlsx_bytes([tricky]))).active
    assert sheet["A2"].data_type == "s" and sheet["A2"].value == tricky.usage_id
    assert "=1+1" in [cell.value for cell in sheet[2]]
    assert all(cell.data_type != "f" for cell in sheet[2])
