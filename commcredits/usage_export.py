"""The usage report as a file: CSV, JSON or XLSX, from typed rows (`projections.usage_queries`).

- CSV: a header row of the report's column titles, then one line per call; amounts as
  4-decimal strings, times as `YYYY-MM-DDTHH:MM:SSZ` (UTC), empty cells for absent values; text
  from the CDRs made safe to open in a spreadsheet (`commcredits.spreadsheet_text.csv_text`:
  `'` in front of what would be a formula, NULs and other invisible control characters dropped).
- JSON: a list of objects keyed by the snake_case field names; amounts as 4-decimal strings
  (never JSON numbers, which readers take for floats), times as in CSV, absent values null,
  the rate row as an object.
- XLSX: the header row, typed cells (amounts are numbers shown with 4 decimals, minutes and
  seconds integers, times date-time cells in UTC: Excel has no time zones, so the header says
  UTC), the pane frozen below the header, and a `Total` row after the data whose sums are
  computed exactly here with `Decimal` and written as values, not formulas (a reader that does not
  recalculate would show nothing); text is always a text cell, without invisible control
  characters, marked with Excel's quote prefix when it would otherwise be read as a formula.
"""

import csv
import io
from collections.abc import Sequence
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import orjson
from openpyxl import Workbook
from openpyxl.styles import Font

from commcredits.spreadsheet_text import cell_text, csv_text, starts_a_formula
from domain.money import ZERO, format_money
from domain.timestamps import encode_timestamp
from projections.usage_queries import AMOUNT_FIELDS, ROW_FIELDS, TIME_FIELDS, UsageRow

FORMATS = ("csv", "json", "xlsx")
# Column titles: the Teams PSTN usage report's where it has the column, ours after them.
HEADERS = {
    "usage_id": "Usage ID", "call_id": "Call ID", "conference_id": "Conference ID",
    "user_location": "User Location", "upn": "UPN", "caller_number": "Caller Number", "call_type": "Call Type",
    "number_type": "Number Type", "domestic_international": "Domestic/International",
    "destination_dialed": "Destination Dialed", "destination_number": "Destination Number",
    "start_time": "Start Time (UTC)", "end_time": "End Time (UTC)", "duration_seconds": "Duration Seconds",
    "connection_fee": "Connection Fee", "charge": "Charge", "currency": "Currency", "capability": "Capability",
    "kind": "Kind", "billed_minutes": "Billed Minutes", "pool": "Pool", "covered_minutes": "Covered Minutes",
    "debited": "Debited", "uncollected": "Uncollected", "overage": "Overage", "reason": "Uncollected Reason",
    "rate": "Rate Row",
}
assert tuple(HEADERS) == ROW_FIELDS, "every row field has a title, in row order"
TOTALLED = ("duration_seconds", "billed_minutes", "covered_minutes", "charge", "debited", "uncollected", "overage")
TOTAL_LABEL = "Total"
AMOUNT_FORMAT = "0.0000"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss"
FROZEN_BELOW_HEADER = "A2"


def render(rows: Sequence[UsageRow], report_format: str) -> bytes:
    assert report_format in FORMATS, report_format
    return {"csv": csv_bytes, "json": json_bytes, "xlsx": xlsx_bytes}[report_format](rows)


def csv_bytes(rows: Sequence[UsageRow]) -> bytes:
    text = io.StringIO(newline="")
    writer = csv.writer(text, lineterminator="\r\n")
    writer.writerow(HEADERS.values())
    writer.writerows([_csv_cell(value) for value in _values(row)] for row in rows)
    return text.getvalue().encode("utf-8")


def json_bytes(rows: Sequence[UsageRow]) -> bytes:
    documents = [{name: _json_value(value) for name, value in zip(ROW_FIELDS, _values(row))} for row in rows]
    return orjson.dumps(documents, option=orjson.OPT_INDENT_2) + b"\n"


def xlsx_bytes(rows: Sequence[UsageRow]) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "PSTN usage"
    sheet.append(list(HEADERS.values()))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([_cell_value(value) for value in _values(row)])
    totals = usage_totals(rows)
    sheet.append([TOTAL_LABEL if name == ROW_FIELDS[0] else totals.get(name) for name in ROW_FIELDS])
    sheet[len(rows) + 2][0].font = Font(bold=True)
    _keep_text_as_text(sheet)
    _format_columns(sheet, len(rows) + 2)
    sheet.freeze_panes = FROZEN_BELOW_HEADER
    output = io.BytesIO()
    workbook.save(output)
    return output.getvalue()


def usage_totals(rows: Sequence[UsageRow]) -> dict[str, int | Decimal]:
    """Exact sums of the totalled columns (integers stay integers, amounts stay `Decimal`)."""
    return {name: sum((getattr(row, name) for row in rows), ZERO if name in AMOUNT_FIELDS else 0)
            for name in TOTALLED}


def _values(row: UsageRow) -> list[Any]:
    return [getattr(row, name) for name in ROW_FIELDS]


def _csv_cell(value: Any) -> str:
    """Text made safe to open in a spreadsheet (`csv_text`: the CDRs' fields; our own texts, kinds
    and reasons, never start a formula); numbers, amounts, times and the rate row, all written by
    us, exactly as `_text` writes them."""
    return csv_text(value) if isinstance(value, str) else _text(value)


def _text(value: Any) -> str:
    """A CSV cell: what a spreadsheet or a script reads back without losing a digit."""
    json_value = _json_value(value)
    if json_value is None:
        return ""
    return _json_text(json_value) if isinstance(json_value, dict) else str(json_value)


def _json_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format_money(value)
    if isinstance(value, datetime):
        return encode_timestamp(value)  # UTC, `Z`; microseconds only when the CDR had them
    return value


def _cell_value(value: Any) -> Any:
    if isinstance(value, str):
        return cell_text(value)  # openpyxl refuses a control character a workbook cannot hold
    if isinstance(value, dict):
        return _json_text(value)
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).replace(tzinfo=None)  # Excel has no offsets: UTC, said in the header
    return value


def _json_text(value: dict[str, Any]) -> str:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def _keep_text_as_text(sheet: Any) -> None:
    """A usage id or a user name is data from a CDR, and must never run in the reader's
    spreadsheet. Text that a spreadsheet would read as a formula (`starts_a_formula`; openpyxl
    itself takes any string starting with `=` for one) is written as a text cell with Excel's
    quote prefix, which shows it as typed and keeps it text when the reader edits it."""
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str) and starts_a_formula(cell.value):
                cell.data_type = "s"
                cell.quotePrefix = True


def _format_columns(sheet: Any, last_row: int) -> None:
    for index, name in enumerate(ROW_FIELDS, start=1):
        number_format = AMOUNT_FORMAT if name in AMOUNT_FIELDS else DATETIME_FORMAT if name in TIME_FIELDS else None
        if number_format:
            for (cell,) in sheet.iter_rows(min_row=2, max_row=last_row, min_col=index, max_col=index):
                cell.number_format = number_format
