"""The statement's text and HTML forms, from a statement written out by hand: every figure
appears, the balance lines read in order, and HTML escapes every value."""

import html
from copy import deepcopy

import orjson

from commcredits.statement_render import html_document, render, text

KINDS = ("outbound", "dialout", "app_outbound", "tollfree")
STATEMENT = {
    "org": "acme", "name": "Acme <script>alert(1)</script>", "currency": "USD", "commerce": "legacy",
    "month": "2026-02", "period": {"from": "2026-02-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"},
    "opening_balance": "10.0000",
    "funds_added": {"order": "0.0000", "manual": "5.0000", "auto_recharge": "25.0000"},
    "charged": {**dict.fromkeys(KINDS, "0.0000"), "outbound": "12.3400"},
    "uncollected": {**dict.fromkeys(KINDS, "0.0000"), "tollfree": "0.5000"},
    "overage": dict.fromkeys(KINDS, "0.0000"),
    "totals": {"funds_added": "30.0000", "charged": "12.3400", "expired": "2.0000", "uncollected": "0.5000",
               "overage": "0.0000"},
    "closing_balance": "25.6600",
    "overage_to_invoice": None,
}


def test_text_shows_the_balance_lines_in_reading_order():
    lines = text(STATEMENT).splitlines()
    labels = [line.split("  ")[0].strip() for line in lines[3:] if not line.startswith("  ")]
    assert labels[:5] == ["Opening balance", "Funds added", "Charged to credits", "Expired", "Closing balance"]
    assert lines[0] == "Communications Credits statement 2026-02: Acme <script>alert(1)</script> (acme)"
    assert any(line.strip().startswith("Auto-recharge") and line.endswith("25.0000") for line in lines)
    assert "Overage to invoice" not in text(STATEMENT)  # a legacy organization


def test_text_of_an_nce_organization_shows_the_overage_to_invoice():
    nce = deepcopy(STATEMENT) | {"commerce": "nce", "overage_to_invoice": "1.5000"}
    assert any(line.startswith("Overage to invoice") and line.endswith("1.5000") for line in text(nce).splitlines())


def test_html_escapes_every_value_and_is_self_contained():
    document = html_document(STATEMENT)
    assert "<script>" not in document
    assert html.escape("Acme <script>alert(1)</script>") in document
    assert "http" not in document  # no external stylesheet, script or font
    assert "<td>25.6600</td>" in document


def test_json_keeps_amounts_as_strings():
    assert orjson.loads(render(STATEMENT, "json")) == STATEMENT
