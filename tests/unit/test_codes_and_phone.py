"""SPEC §2 codes, identifiers and phone numbers."""

import pytest

from domain.codes import is_country_code, parse_country, parse_currency, parse_identifier
from domain.errors import InvalidInput
from domain.phone import country_of, digits_of, parse_e164, parse_emergency_number

# ----- country and currency codes ---------------------------------------------------------------


@pytest.mark.parametrize("code", ["US", "GB", "PR", "DE", "JP", "NZ", "IE"])
def test_country_codes_accepted(code):
    assert parse_country(code) == code
    assert is_country_code(code)


@pytest.mark.parametrize(
    "code",
    ["us", "Us", "uS", "USA", "U", "", "XX", "ZZ", "UK", " US", "US ", "*", None, 1, ["US"], {"US": 1}],
)
def test_bad_country_codes_rejected(code):
    with pytest.raises(InvalidInput):
        parse_country(code)
    assert not is_country_code(code)


def test_country_error_names_the_field():
    with pytest.raises(InvalidInput, match="usage_location"):
        parse_country("us", field="usage_location")


@pytest.mark.parametrize("code", ["USD", "EUR", "GBP", "JPY", "CHF"])
def test_currency_codes_accepted(code):
    assert parse_currency(code) == code


@pytest.mark.parametrize("code", ["usd", "Usd", "US", "USDD", "XYZ", "ABC", "", " USD", None, 840, ["USD"]])
def test_bad_currency_codes_rejected(code):
    with pytest.raises(InvalidInput):
        parse_currency(code)


# ----- identifiers ------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["contoso", "alice@contoso.com", "o", "ORDER-1", "0"])
def test_identifiers_accepted(value):
    assert parse_identifier(value, field="org") == value


@pytest.mark.parametrize("value", ["", None, 0, 1, 1.5, float("nan"), True, ["a"], {"a": "b"}, b"org"])
def test_bad_identifiers_rejected(value):
    with pytest.raises(InvalidInput, match="org"):
        parse_identifier(value, field="org")


# ----- phone numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "region"),
    [
        ("+14255550100", "US"),
        ("+442079460000", "GB"),
        ("+33142685300", "FR"),
        ("+4930123456", "DE"),
        ("+16135550100", "CA"),
        ("+17875550100", "PR"),
        ("+81312345678", "JP"),
    ],
)
def test_e164_numbers_and_their_regions(number, region):
    assert parse_e164(number, field="destination_number") == number
    assert country_of(number) == region


def test_reserved_range_has_no_region():
    # SPEC §2's example: a possible number in a reserved range has no country
    assert parse_e164("+447700900123", field="destination_number") == "+447700900123"
    assert country_of("+447700900123") is None


@pytest.mark.parametrize(
    "number",
    [
        "14255550100",  # no +
        "+04255550100",  # first digit 0
        "+1 425 555 0100",  # spaces
        "+1-425-555-0100",  # punctuation
        "+(1)4255550100",
        "+1",  # 1 digit
        "+1234567890123456",  # 16 digits
        "+",
        "",
        "++14255550100",
        "+1425555010a",
        "+１４２５５５５０１００",  # full-width digits
        None,
        14255550100,
        ["+14255550100"],
    ],
)
def test_non_e164_rejected(number):
    with pytest.raises(InvalidInput):
        parse_e164(number, field="caller_number")


def test_e164_error_names_the_field():
    with pytest.raises(InvalidInput, match="caller_number"):
        parse_e164("4255550100", field="caller_number")


def test_well_formed_but_impossible_number_rejected():
    # +1 followed by 3 digits matches the E.164 pattern but is not a possible NANP number
    with pytest.raises(InvalidInput, match="not a possible"):
        parse_e164("+1425", field="destination_number")


@pytest.mark.parametrize("number", ["112", "911", "+112", "999", "000", "+911", "123456789012345"])
def test_emergency_numbers_accepted(number):
    assert parse_emergency_number(number, field="destination_number") == number


@pytest.mark.parametrize("number", ["1", "+1", "9 11", "1234567890123456", "++112", "", "abc", None, 911])
def test_bad_emergency_numbers_rejected(number):
    with pytest.raises(InvalidInput):
        parse_emergency_number(number, field="destination_number")


def test_digits_of_strips_the_plus():
    assert digits_of("+14255550100") == "14255550100"


@pytest.mark.parametrize("number", ["+999123456", "+12", "+4420"])
def test_e164_shaped_but_not_possible_rejected(number):
    # +999 is no country code; +12 and +4420 are too short for their countries
    with pytest.raises(InvalidInput, match="not a possible"):
        parse_e164(number, field="destination_number")


@pytest.mark.parametrize("number", ["+80012345678", "+882123456789"])
def test_non_geographic_numbers_are_accepted_without_a_country(number):
    # international freephone (+800) and global services (+882) resolve to region "001": no country
    assert parse_e164(number, field="destination_number") == number
    assert country_of(number) is None
