"""SPEC §6 step 4 and §11: the rate card, its lookup and what makes a rate card file not load."""

import csv
import io
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from domain.rates import RateCard, RateCardError, RateRow, check_rate_card_header, parse_rate_rows

UTC = timezone.utc
HEADER = "prefix,kind,rate_per_minute,connection_fee,currency,effective_from"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def load(text: str) -> RateCard:
    """Read CSV text the way a rate card file is read: header checked, then rows (row 1 = header)."""
    reader = csv.DictReader(io.StringIO(text.strip() + "\n", newline=""), strict=True)
    check_rate_card_header(reader.fieldnames)
    return parse_rate_rows(reader)


CARD = load(f"""
{HEADER}
1,outbound,0.0190,0,USD,2025-01-01T00:00:00Z
1425,outbound,0.0100,0,USD,2025-01-01T00:00:00Z
1425555,outbound,0.0050,0.0100,USD,2026-06-01T00:00:00Z
44,outbound,0.0230,0,USD,2025-01-01T00:00:00Z
447,outbound,0.1500,0.0500,USD,2025-01-01T00:00:00Z
33,outbound,0.0250,0,USD,2025-01-01T00:00:00Z
33,outbound,0.0300,0,USD,2026-03-01T00:00:00Z
33,outbound,0.0350,0,USD,2026-03-01T00:00:00.500000Z
1,dialout,0.0200,0,USD,2025-01-01T00:00:00Z
1,tollfree,0.0180,0,USD,2025-01-01T00:00:00Z
1,outbound,0.0170,0,EUR,2025-01-01T00:00:00Z
""")


def rate_of(row: RateRow | None) -> str | None:
    return None if row is None else str(row.rate_per_minute)


# ----- lookup -----------------------------------------------------------------------------------


def test_card_holds_every_row():
    assert len(CARD) == 11


@pytest.mark.parametrize(
    ("digits", "expected_prefix", "expected_rate"),
    [
        ("14255550100", "1425", "0.0100"),  # 1425 beats 1; 1425555 is not yet effective (see below)
        ("12125550100", "1", "0.0190"),
        ("447700900123", "447", "0.1500"),  # 447 beats 44
        ("442079460000", "44", "0.0230"),
        ("4", None, None),  # no prefix of "4" exists
        ("81312345678", None, None),
    ],
)
def test_longest_prefix_wins(digits, expected_prefix, expected_rate):
    row = CARD.find("USD", "outbound", digits, utc(2026, 1, 15))
    assert (row and row.prefix) == expected_prefix
    assert rate_of(row) == expected_rate


def test_longer_prefix_used_once_effective():
    # 1425555 becomes effective 2026-06-01: before that 1425 applies, from that instant on 1425555
    assert CARD.find("USD", "outbound", "14255550100", utc(2026, 5, 31, 23, 59, 59)).prefix == "1425"
    row = CARD.find("USD", "outbound", "14255550100", utc(2026, 6, 1))
    assert row.prefix == "1425555"
    assert row.connection_fee == Decimal("0.0100")


@pytest.mark.parametrize(
    ("at", "expected_rate"),
    [
        (utc(2026, 2, 28, 23, 59, 59), "0.0250"),  # the 2026-03-01 row is not yet effective
        (utc(2026, 3, 1), "0.0300"),  # effective_from == start time counts (<=)
        (utc(2026, 3, 1, 0, 0, 0, 499999), "0.0300"),
        (utc(2026, 3, 1, 0, 0, 0, 500000), "0.0350"),  # fractional effective_from honoured
        (utc(2027, 1, 1), "0.0350"),  # the latest effective row
        (utc(2025, 1, 1), "0.0250"),
    ],
)
def test_latest_effective_from_not_after_start(at, expected_rate):
    assert rate_of(CARD.find("USD", "outbound", "33142685300", at)) == expected_rate


def test_row_effective_after_the_call_is_ignored():
    # every 33 row starts 2025-01-01 or later: a call in 2024 has no rate
    assert CARD.find("USD", "outbound", "33142685300", utc(2024, 12, 31, 23, 59, 59)) is None


def test_currency_filter():
    assert rate_of(CARD.find("EUR", "outbound", "14255550100", utc(2026, 1, 1))) == "0.0170"
    assert CARD.find("EUR", "outbound", "442079460000", utc(2026, 1, 1)) is None  # no EUR 44 row
    assert CARD.find("GBP", "outbound", "14255550100", utc(2026, 1, 1)) is None


def test_kind_filter():
    at = utc(2026, 1, 1)
    assert rate_of(CARD.find("USD", "dialout", "14255550100", at)) == "0.0200"
    assert rate_of(CARD.find("USD", "tollfree", "14255550100", at)) == "0.0180"
    assert CARD.find("USD", "dialout", "442079460000", at) is None  # 44 only has outbound rows
    assert CARD.find("USD", "tollfree", "33142685300", at) is None


def test_empty_card_finds_nothing():
    empty = load(HEADER)
    assert len(empty) == 0
    assert empty.find("USD", "outbound", "14255550100", utc(2026, 1, 1)) is None


def test_rows_keep_exact_decimals_and_event_data():
    row = CARD.find("USD", "outbound", "447700900123", utc(2026, 1, 1))
    assert row.rate_per_minute == Decimal("0.1500")
    assert row.connection_fee == Decimal("0.0500")
    assert row.as_event_data() == {
        "prefix": "447", "kind": "outbound", "rate_per_minute": "0.1500", "connection_fee": "0.0500",
        "currency": "USD", "effective_from": "2025-01-01T00:00:00Z",
    }


def test_zero_rates_and_fees_load():
    card = load(f"{HEADER}\n1,outbound,0,0.0000,USD,2025-01-01T00:00:00Z")
    row = card.find("USD", "outbound", "1", utc(2025, 1, 1))
    assert (row.rate_per_minute, row.connection_fee) == (Decimal("0"), Decimal("0"))


def test_effective_from_with_offset_normalised():
    # 2026-03-01T00:30+01:00 = 2026-02-28T23:30Z: effective for a call at 23:45Z on 28 Feb
    card = load(f"{HEADER}\n1,outbound,0.0100,0,USD,2026-03-01T00:30:00+01:00")
    assert card.find("USD", "outbound", "1425", utc(2026, 2, 28, 23, 45)) is not None
    assert card.find("USD", "outbound", "1425", utc(2026, 2, 28, 23, 29)) is None


def test_fifteen_digit_prefix_matches_fifteen_digit_number():
    card = load(f"{HEADER}\n123456789012345,outbound,0.5,0,USD,2025-01-01T00:00:00Z")
    assert card.find("USD", "outbound", "123456789012345", utc(2026, 1, 1)).prefix == "123456789012345"


# ----- files that do not load -------------------------------------------------------------------

GOOD = "1,outbound,0.0190,0,USD,2025-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("bad_row", "problem"),
    [
        ("1,outbound,0.0190,0,USD,2025-01-01T00:00:00Z", "duplicate"),  # same key as row 2
        # same instant written with an offset is still a duplicate (after normalising to UTC)
        ("1,outbound,0.0250,0,USD,2025-01-01T01:00:00+01:00", "duplicate"),
        ("1,roaming,0.0190,0,USD,2025-01-01T00:00:00Z", "kind"),
        ("1,OUTBOUND,0.0190,0,USD,2025-01-01T00:00:00Z", "kind"),
        ("1,,0.0190,0,USD,2025-01-01T00:00:00Z", "kind"),
        ("44a,outbound,0.0190,0,USD,2025-01-01T00:00:00Z", "prefix"),
        ("abc,outbound,0.0190,0,USD,2025-01-01T00:00:00Z", "prefix"),
        ("1234567890123456,outbound,0.0190,0,USD,2025-01-01T00:00:00Z", "prefix"),  # 16 digits
        (",outbound,0.0190,0,USD,2025-01-01T00:00:00Z", "prefix"),
        ("+44,outbound,0.0190,0,USD,2025-01-01T00:00:00Z", "prefix"),
        (" 44,outbound,0.0190,0,USD,2025-01-01T00:00:00Z", "prefix"),
        ("44,outbound,0.01234,0,USD,2025-01-01T00:00:00Z", "rate_per_minute"),
        ("44,outbound,-0.01,0,USD,2025-01-01T00:00:00Z", "rate_per_minute"),
        ("44,outbound,1e-2,0,USD,2025-01-01T00:00:00Z", "rate_per_minute"),
        ("44,outbound,,0,USD,2025-01-01T00:00:00Z", "rate_per_minute"),
        ("44,outbound,0.02,abc,USD,2025-01-01T00:00:00Z", "connection_fee"),
        ("44,outbound,0.02,1000000.0001,USD,2025-01-01T00:00:00Z", "connection_fee"),
        ("44,outbound,0.02,0,usd,2025-01-01T00:00:00Z", "currency"),
        ("44,outbound,0.02,0,XYZ,2025-01-01T00:00:00Z", "currency"),
        ("44,outbound,0.02,0,USD,2025-01-01T00:00:00", "effective_from"),  # no offset
        ("44,outbound,0.02,0,USD,2025-02-29T00:00:00Z", "effective_from"),  # not a leap year
        ("44,outbound,0.02,0,USD,1999-12-31T23:59:59Z", "effective_from"),
        ("44,outbound,0.02,0,USD,2025-01-01", "effective_from"),
        ("44,outbound,0.02,0,USD", "columns"),  # too few columns
        ("44,outbound,0.02,0,USD,2025-01-01T00:00:00Z,extra", "columns"),  # too many
    ],
)
def test_bad_row_does_not_load_and_error_names_the_row(bad_row, problem):
    text = f"{HEADER}\n{GOOD}\n44,outbound,0.0230,0,USD,2025-01-01T00:00:00Z\n{bad_row}"
    with pytest.raises(RateCardError) as caught:
        load(text)
    # header = row 1, GOOD = row 2, the 44 row = row 3, the bad row = row 4
    assert caught.value.row == 4
    assert str(caught.value).startswith("row 4: ")
    assert problem in str(caught.value)


def test_first_bad_row_is_named():
    text = f"{HEADER}\nx,outbound,0.01,0,USD,2025-01-01T00:00:00Z\n{GOOD}\ny,outbound,0.01,0,USD,2025-01-01T00:00:00Z"
    with pytest.raises(RateCardError) as caught:
        load(text)
    assert caught.value.row == 2


@pytest.mark.parametrize(
    ("other", "loads"),
    [
        ("1,outbound,0.0190,0,USD,2025-06-01T00:00:00Z", True),  # other effective_from
        ("1,dialout,0.0190,0,USD,2025-01-01T00:00:00Z", True),  # other kind
        ("1,outbound,0.0190,0,EUR,2025-01-01T00:00:00Z", True),  # other currency
        ("12,outbound,0.0190,0,USD,2025-01-01T00:00:00Z", True),  # other prefix
        ("01,outbound,0.0190,0,USD,2025-01-01T00:00:00Z", True),  # "01" is a different prefix to "1"
    ],
)
def test_rows_differing_in_one_key_column_are_not_duplicates(other, loads):
    assert len(load(f"{HEADER}\n{GOOD}\n{other}")) == 2


@pytest.mark.parametrize(
    "header",
    [
        "prefix,kind,rate_per_minute,connection_fee,currency",
        "kind,prefix,rate_per_minute,connection_fee,currency,effective_from",
        "prefix,kind,rate,connection_fee,currency,effective_from",
        "prefix, kind, rate_per_minute, connection_fee, currency, effective_from",  # the header names the columns
        "",
    ],
)
def test_bad_header_is_row_one(header):
    with pytest.raises(RateCardError) as caught:
        load(f"{header}\n{GOOD}")
    assert caught.value.row == 1


def test_rate_card_error_is_a_value_error_not_a_domain_error():
    from domain.errors import DomainError

    assert issubclass(RateCardError, ValueError)
    assert not issubclass(RateCardError, DomainError)


def test_huge_amount_row_is_a_rate_card_error():
    # SPEC §11: a bad amount means the file does not load, with the row named (exit 2), not a crash
    with pytest.raises(RateCardError) as caught:
        load(f"{HEADER}\n{GOOD}\n44,outbound,{'1' + '0' * 30},0,USD,2025-01-01T00:00:00Z")
    assert caught.value.row == 3
