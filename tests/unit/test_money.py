"""SPEC §2 money: strict decimal strings in, exact 4-decimal strings out."""

from decimal import Decimal

import pytest

from domain.errors import DomainError, InvalidInput
from domain.money import MAX_AMOUNT, ZERO, format_money, parse_money, to_money


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("12.5", Decimal("12.5000")),
        ("0.0190", Decimal("0.0190")),
        ("100", Decimal("100.0000")),
        ("1000000", Decimal("1000000.0000")),  # the upper bound is inclusive
        ("1000000.0000", Decimal("1000000.0000")),
        ("0.0001", Decimal("0.0001")),  # smallest positive amount
        ("007.10", Decimal("7.1000")),  # leading zeros are still digits
        ("999999.9999", Decimal("999999.9999")),
    ],
)
def test_parse_money_accepts_decimal_strings(text, expected):
    amount = parse_money(text)
    assert amount == expected
    assert isinstance(amount, Decimal)
    # quantized to 4 places, so it formats with exactly 4 decimals
    assert amount.as_tuple().exponent == -4


@pytest.mark.parametrize(
    "text",
    [
        "12.34567",  # 5 decimals
        ".5",  # leading point
        "5.",  # point without digits
        "+1",
        "-1",
        "-0.5",
        "1e3",
        "1E3",
        "NaN",
        "nan",
        "Infinity",
        "inf",
        "-Infinity",
        "1000000.0001",  # just above the maximum
        "1000001",
        " 12.5",
        "12.5 ",
        "12.5\n",
        "1 000",
        "1,5",
        "1_000",
        "",
        "0x10",
        "١٢",  # non-ASCII digits
    ],
)
def test_parse_money_rejects_malformed_or_out_of_range(text):
    with pytest.raises(InvalidInput) as caught:
        parse_money(text)
    assert caught.value.code == "invalid_input"


@pytest.mark.parametrize("value", [12.5, 12, Decimal("12.5"), None, ["12.5"], {"a": "1"}, True, float("nan")])
def test_parse_money_rejects_non_strings(value):
    with pytest.raises(InvalidInput):
        parse_money(value)


@pytest.mark.parametrize("text", ["0", "0.0", "0.0000", "000"])
def test_zero_rejected_where_a_positive_amount_is_required(text):
    with pytest.raises(InvalidInput, match="greater than 0"):
        parse_money(text)


@pytest.mark.parametrize("text", ["0", "0.0", "0.0000"])
def test_zero_accepted_with_allow_zero(text):
    assert parse_money(text, allow_zero=True) == Decimal("0.0000")


@pytest.mark.parametrize("text", ["-0", "-1", "1.00001", "1000000.0001"])
def test_allow_zero_does_not_relax_other_rules(text):
    with pytest.raises(InvalidInput):
        parse_money(text, allow_zero=True)


def test_error_message_names_the_field():
    with pytest.raises(InvalidInput, match="recharge_amount"):
        parse_money("abc", field="recharge_amount")
    with pytest.raises(InvalidInput, match="trigger_amount"):
        parse_money("2000000", field="trigger_amount", allow_zero=True)


def test_invalid_input_is_a_domain_error_with_spec_code():
    with pytest.raises(DomainError) as caught:
        parse_money("1e3")
    assert caught.value.code == "invalid_input"
    assert str(caught.value).startswith("invalid_input: ")


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (Decimal("12.5"), "12.5000"),
        (Decimal("0"), "0.0000"),
        (Decimal("0.019"), "0.0190"),
        (Decimal("1000000"), "1000000.0000"),
        (Decimal("100"), "100.0000"),
        (ZERO, "0.0000"),
        (MAX_AMOUNT, "1000000.0000"),
        # exact arithmetic: 3 minutes at 0.0190 plus a 0.0500 fee = 0.0570 + 0.0500 = 0.1070
        (3 * Decimal("0.0190") + Decimal("0.0500"), "0.1070"),
        # 0.1 + 0.2 is exactly 0.3 in decimal (never 0.30000000000000004)
        (Decimal("0.1") + Decimal("0.2"), "0.3000"),
    ],
)
def test_format_money_gives_exactly_four_decimals(amount, text):
    assert format_money(amount) == text


def test_format_money_never_uses_exponent_notation():
    assert format_money(Decimal("1E+2")) == "100.0000"
    assert format_money(Decimal("1E-4")) == "0.0001"


def test_format_money_rounds_half_even_past_four_places():
    # Python's default context rounds ROUND_HALF_EVEN: 0.00005 -> 0.0000, 0.00015 -> 0.0002
    assert format_money(Decimal("0.00005")) == "0.0000"
    assert format_money(Decimal("0.00015")) == "0.0002"


def test_round_trip_parse_then_format():
    for text, expected in [("12.5", "12.5000"), ("0.0190", "0.0190"), ("100", "100.0000")]:
        assert format_money(parse_money(text)) == expected


def test_to_money_reads_trusted_event_amounts_without_range_checks():
    assert to_money("0.0000") == Decimal("0")
    assert to_money("2000000.0000") == Decimal("2000000.0000")
    assert format_money(to_money("12.5")) == "12.5000"


@pytest.mark.parametrize("text", ["1" + "0" * 24, "1" + "0" * 30, "9" * 25 + ".1234"])
def test_huge_amount_is_invalid_input_not_a_crash(text):
    # 10^24 is far above 1,000,000: SPEC §2 says invalid_input. Decimal(text).quantize(0.0001) needs
    # more than the default 28 digits of precision and raises InvalidOperation before the range check.
    with pytest.raises(InvalidInput):
        parse_money(text)
