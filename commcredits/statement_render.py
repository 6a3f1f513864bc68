"""The monthly statement as a file: JSON, plain text, or a small self-contained HTML document.

All three are made from the statement `projections.statement_queries.statement` returns, whose
amounts are already 4-decimal strings: nothing is computed here, so the three always agree.

- JSON: the statement itself, keys sorted, amounts as strings (never JSON numbers, which
  readers take for floats).
- Text: aligned lines for a terminal or an e-mail.
- HTML: one page with its styles inline (no external resource, so it can be mailed or archived
  as it is); every value from the store (an organization's name is user input) is escaped.
"""

import html
from typing import Any

import orjson

from commcredits.terminal_text import terminal_safe

FORMATS = ("json", "text", "html")
AMOUNT_WIDTH = 14  # room for 999,999,999.9999 without breaking the column
SOURCE_LABELS = {"order": "Order", "manual": "Added by hand", "auto_recharge": "Auto-recharge"}
KIND_LABELS = {"outbound": "Outbound calls", "dialout": "Conference dial-out",
               "app_outbound": "Application outbound (auto attendant, call queue)", "tollfree": "Toll-free inbound",
               "inbound": "Inbound", "emergency": "Emergency"}


def render(statement: dict[str, Any], statement_format: str) -> bytes:
    assert statement_format in FORMATS, statement_format
    if statement_format == "json":
        return orjson.dumps(statement, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
    if statement_format == "text":
        return text(statement).encode()
    return html_document(statement).encode()


def statement_lines(statement: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(label, amount, depth) in reading order: the balance first, then what did not touch it.
    Depth 0 is a figure, 1 a part of the figure above it."""
    totals = statement["totals"]
    lines = [("Opening balance", statement["opening_balance"], 0),
             ("Funds added", totals["funds_added"], 0), *_parts(statement["funds_added"], SOURCE_LABELS),
             ("Charged to credits", totals["charged"], 0), *_parts(statement["charged"], KIND_LABELS),
             ("Expired", totals["expired"], 0),
             ("Closing balance", statement["closing_balance"], 0),
             ("Uncollected (not taken from the balance)", totals["uncollected"], 0),
             *_parts(statement["uncollected"], KIND_LABELS)]
    if statement["overage_to_invoice"] is not None:
        lines += [("Overage to invoice", statement["overage_to_invoice"], 0),
                  *_parts(statement["overage"], KIND_LABELS)]
    return lines


def title(statement: dict[str, Any]) -> str:
    return f"Communications Credits statement {statement['month']}: {statement['name']} ({statement['org']})"


def subtitle(statement: dict[str, Any]) -> str:
    period = statement["period"]
    return (f"From {period['from']} to {period['to']} (UTC, end excluded); amounts in {statement['currency']}; "
            f"commerce: {statement['commerce']}")


def text(statement: dict[str, Any]) -> str:
    labelled = [(f"{'  ' * depth}{label}", amount) for label, amount, depth in statement_lines(statement)]
    width = max(len(label) for label, _ in labelled)
    lines = [terminal_safe(title(statement)), subtitle(statement), ""]
    lines += [f"{label.ljust(width)} {amount.rjust(AMOUNT_WIDTH)}" for label, amount in labelled]
    return "\n".join(lines) + "\n"


def html_document(statement: dict[str, Any]) -> str:
    rows = "\n".join(
        f'<tr class="depth-{depth}"><th scope="row">{html.escape(label)}</th>'
        f'<td>{html.escape(amount)}</td></tr>' for label, amount, depth in statement_lines(statement))
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title(statement))}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; }}
table {{ border-collapse: collapse; }}
th, td {{ padding: 0.2em 1em; border-bottom: 1px solid #ddd; }}
th {{ text-align: left; font-weight: normal; }}
td {{ text-align: right; font-family: monospace; }}
tr.depth-0 th {{ font-weight: bold; }}
tr.depth-1 th {{ padding-left: 2.5em; }}
</style>
</head>
<body>
<h1>{html.escape(title(statement))}</h1>
<p>{html.escape(subtitle(statement))}</p>
<table>
{rows}
</table>
</body>
</html>
"""


def _parts(amounts: dict[str, str], labels: dict[str, str]) -> list[tuple[str, str, int]]:
    return [(labels.get(detail, detail), amount, 1) for detail, amount in amounts.items()]
