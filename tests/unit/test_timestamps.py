"""SPEC §2 time and §7 lot lifetimes: strict ISO 8601 with an offset, UTC inside, calendar months."""

from datetime import datetime, timedelta, timezone

import pytest

from domain.errors import InvalidInput
from domain.lots import expiry_of
from domain.timestamps import (
    add_calendar_months,
    decode_timestamp,
    encode_timestamp,
    first_instant_after_month,
    format_timestamp,
    month_key,
    parse_timestamp,
)

UTC = timezone.utc


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


# ----- parse_timestamp --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-31T10:00:00Z", utc(2026, 1, 31, 10)),
        ("2026-01-31T10:00:00+00:00", utc(2026, 1, 31, 10)),
        ("2026-01-31T10:00:00-00:00", utc(2026, 1, 31, 10)),
        # +01:00 just after midnight on New Year's day is 23:30 UTC on 31 Dec: month AND year change
        ("2026-01-01T00:30:00+01:00", utc(2025, 12, 31, 23, 30)),
        # -05:00 late on 31 Dec is already next year in UTC
        ("2025-12-31T22:00:00-05:00", utc(2026, 1, 1, 3)),
        # -08:00 on the last evening of February (leap year) lands on 1 March UTC
        ("2028-02-29T20:00:00-08:00", utc(2028, 3, 1, 4)),
        # half-hour and 45-minute offsets
        ("2026-03-01T05:00:00+05:30", utc(2026, 2, 28, 23, 30)),
        ("2026-06-15T12:00:00+05:45", utc(2026, 6, 15, 6, 15)),
        ("2026-06-15T12:00:00+14:00", utc(2026, 6, 14, 22)),
        ("2026-06-15T12:00:00-12:00", utc(2026, 6, 16, 0)),
    ],
)
def test_offsets_are_normalised_to_utc(text, expected):
    moment = parse_timestamp(text)
    assert moment == expected
    assert moment.utcoffset() == timedelta(0)
    assert (moment.year, moment.month, moment.day, moment.hour, moment.minute) == (
        expected.year, expected.month, expected.day, expected.hour, expected.minute)


@pytest.mark.parametrize(
    ("text", "microsecond"),
    [
        ("2026-01-31T10:00:00.5Z", 500000),
        ("2026-01-31T10:00:00.123Z", 123000),
        ("2026-01-31T10:00:00.123456Z", 123456),
        # more than 6 fraction digits: truncated to microseconds, never rounded into the next second
        ("2026-01-31T10:00:00.1234569Z", 123456),
        ("2026-01-31T10:00:00.999999999Z", 999999),
    ],
)
def test_fractional_seconds_allowed(text, microsecond):
    moment = parse_timestamp(text)
    assert moment.replace(microsecond=0) == utc(2026, 1, 31, 10)
    assert moment.microsecond == microsecond


def test_fractional_seconds_with_offset():
    assert parse_timestamp("2026-01-01T00:00:00.250+01:00") == utc(2025, 12, 31, 23, 0, 0, 250000)


@pytest.mark.parametrize(
    "text",
    [
        "2026-01-31T10:00:00",  # no offset: ambiguous local time
        "2026-01-31T10:00:00.5",
        "2026-01-31 10:00:00Z",  # space instead of T
        "2026-01-31",
        "2026-01-31T10:00Z",  # no seconds
        "2026-1-31T10:00:00Z",
        "2026-01-31T10:00:00z",
        "2026-01-31T10:00:00+0100",  # offset without colon
        "2026-01-31T10:00:00+01",
        "2026-01-31T10:00:00.Z",  # point with no digits
        " 2026-01-31T10:00:00Z",
        "2026-01-31T10:00:00Z ",
        "",
        "yesterday",
    ],
)
def test_malformed_or_offsetless_rejected(text):
    with pytest.raises(InvalidInput):
        parse_timestamp(text)


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-29T00:00:00Z",  # 2026 is not a leap year
        "2100-02-29T00:00:00Z",  # divisible by 100, not by 400: not a leap year
        "2026-02-30T00:00:00Z",
        "2026-04-31T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-00-10T00:00:00Z",
        "2026-01-00T00:00:00Z",
        "2026-01-31T24:00:00Z",
        "2026-01-31T23:60:00Z",
        "2026-01-31T23:59:60Z",  # leap seconds are not representable
    ],
)
def test_dates_and_times_that_do_not_exist_rejected(text):
    with pytest.raises(InvalidInput):
        parse_timestamp(text)


@pytest.mark.parametrize("text", ["2024-02-29T12:00:00Z", "2028-02-29T23:59:59Z", "2000-02-29T00:00:00Z"])
def test_leap_day_valid_in_leap_years(text):
    moment = parse_timestamp(text)
    assert (moment.month, moment.day) == (2, 29)


@pytest.mark.parametrize(
    "text",
    [
        "1999-12-31T23:59:59Z",
        "2200-01-01T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        # inside the range locally, outside after normalising to UTC
        "2000-01-01T00:30:00+01:00",  # = 1999-12-31T23:30:00Z
        "2199-12-31T23:00:00-02:00",  # = 2200-01-01T01:00:00Z
    ],
)
def test_years_outside_2000_to_2199_rejected_judged_in_utc(text):
    with pytest.raises(InvalidInput, match="2000-2199"):
        parse_timestamp(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2000-01-01T00:00:00Z", utc(2000, 1, 1)),
        ("2199-12-31T23:59:59Z", utc(2199, 12, 31, 23, 59, 59)),
        # outside the range locally, inside after normalising to UTC
        ("1999-12-31T23:30:00-01:00", utc(2000, 1, 1, 0, 30)),
        ("2200-01-01T00:30:00+01:00", utc(2199, 12, 31, 23, 30)),
    ],
)
def test_year_bounds_inclusive_judged_in_utc(text, expected):
    assert parse_timestamp(text) == expected


@pytest.mark.parametrize("value", [None, 1767225600, 1.5, ["2026-01-01T00:00:00Z"], utc(2026, 1, 1)])
def test_non_string_timestamp_rejected(value):
    with pytest.raises(InvalidInput):
        parse_timestamp(value)


def test_error_names_the_field():
    with pytest.raises(InvalidInput, match="start_time"):
        parse_timestamp("2026-01-31T10:00:00", field="start_time")


# ----- output forms -----------------------------------------------------------------------------


def test_format_timestamp_is_whole_seconds_with_z():
    assert format_timestamp(utc(2026, 1, 31, 10, 0, 0, 999999)) == "2026-01-31T10:00:00Z"
    # a non-UTC datetime is written in UTC
    plus_one = timezone(timedelta(hours=1))
    assert format_timestamp(datetime(2026, 1, 1, 0, 30, tzinfo=plus_one)) == "2025-12-31T23:30:00Z"
    # west of UTC across a leap day and a year end; fractions are cut, never rounded up
    assert format_timestamp(datetime(2028, 2, 28, 23, 0, 0, 500000, tzinfo=timezone(timedelta(hours=-2)))) == \
        "2028-02-29T01:00:00Z"
    assert format_timestamp(datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-1)))) == \
        "2027-01-01T00:59:59Z"


def test_encode_decode_round_trip_keeps_microseconds():
    moment = utc(2028, 2, 29, 23, 59, 59, 123456)
    text = encode_timestamp(moment)
    assert text == "2028-02-29T23:59:59.123456Z"
    assert decode_timestamp(text) == moment
    assert encode_timestamp(utc(2026, 1, 1)) == "2026-01-01T00:00:00Z"
    assert decode_timestamp("2026-01-01T00:00:00Z") == utc(2026, 1, 1)


def test_encode_normalises_offset_to_utc():
    plus_one = timezone(timedelta(hours=1))
    assert encode_timestamp(datetime(2026, 1, 1, 0, 30, tzinfo=plus_one)) == "2025-12-31T23:30:00Z"
    odd = timezone(timedelta(hours=-9, minutes=-30, seconds=-15))  # an offset with seconds
    assert encode_timestamp(datetime(2024, 2, 29, 14, 29, 45, 7, tzinfo=odd)) == "2024-03-01T00:00:00.000007Z"  # past the leap day


def test_encode_of_a_zone_at_zero_offset_and_of_a_naive_time():
    from zoneinfo import ZoneInfo
    london = ZoneInfo("Europe/London")
    assert encode_timestamp(datetime(2026, 12, 31, 23, 59, 59, tzinfo=london)) == "2026-12-31T23:59:59Z"  # GMT
    assert encode_timestamp(datetime(2026, 7, 1, 0, 0, 0, 500000, tzinfo=london)) == "2026-06-30T23:00:00.500000Z"
    assert encode_timestamp(datetime(2026, 1, 1, 8, 0)) == "2026-01-01T08:00:00Z"  # naive: taken as UTC


# ----- calendar months (§7: expiry 12 calendar months later, same time of day) ------------------


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (utc(2025, 1, 31, 9, 15), 1, utc(2025, 2, 28, 9, 15)),  # 31 Jan -> no 31 Feb -> 28 Feb
        (utc(2024, 1, 31, 9, 15), 1, utc(2024, 2, 29, 9, 15)),  # leap year: 29 Feb
        (utc(2025, 3, 31), 1, utc(2025, 4, 30)),
        (utc(2025, 12, 15), 1, utc(2026, 1, 15)),  # across the year end
        (utc(2025, 12, 31, 23, 59, 59), 2, utc(2026, 2, 28, 23, 59, 59)),
        (utc(2024, 2, 29, 8, 0), 12, utc(2025, 2, 28, 8, 0)),  # leap day + 1 year
        (utc(2024, 2, 29), 48, utc(2028, 2, 29)),  # leap day + 4 years is a leap day again
        (utc(2026, 1, 15, 10, 0, 0, 500000), 12, utc(2027, 1, 15, 10, 0, 0, 500000)),
        (utc(2026, 5, 31), 0, utc(2026, 5, 31)),
        (utc(2026, 1, 31), 25, utc(2028, 2, 29)),  # 2 years + 1 month into a leap February
    ],
)
def test_add_calendar_months(start, months, expected):
    assert add_calendar_months(start, months) == expected


@pytest.mark.parametrize(
    ("added_at", "expected"),
    [
        (utc(2024, 2, 29, 14, 30), utc(2025, 2, 28, 14, 30)),  # SPEC §7's example
        (utc(2026, 1, 31, 10), utc(2027, 1, 31, 10)),
        (utc(2027, 2, 28, 6), utc(2028, 2, 28, 6)),  # not moved to the leap day
        (utc(2025, 12, 31, 23, 59, 59), utc(2026, 12, 31, 23, 59, 59)),
        (utc(2199, 1, 1), utc(2200, 1, 1)),  # the expiry may be beyond the input year range
    ],
)
def test_lot_expires_twelve_calendar_months_later_same_time_of_day(added_at, expected):
    assert expiry_of(added_at) == expected


def test_expiry_of_an_offset_input_is_computed_in_utc():
    # 2025-03-01T00:30+01:00 is 2025-02-28T23:30Z: expiry is 2026-02-28T23:30Z, not 2026-03-01
    added_at = parse_timestamp("2025-03-01T00:30:00+01:00")
    assert expiry_of(added_at) == utc(2026, 2, 28, 23, 30)


# ----- month keys (pools are kept per UTC calendar month) ---------------------------------------


@pytest.mark.parametrize(
    ("moment", "key"),
    [
        (utc(2025, 12, 31, 23, 59, 59, 999999), "2025-12"),
        (utc(2026, 1, 1, 0, 0, 0), "2026-01"),
        (utc(2028, 2, 29, 12), "2028-02"),
        (datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), "2025-12"),  # UTC month
        (datetime(2028, 2, 29, 23, 30, tzinfo=timezone(timedelta(hours=-5))), "2028-03"),  # leap day, west of UTC
        (datetime(2026, 12, 31, 20, 0, tzinfo=timezone(timedelta(hours=-4, minutes=-30))), "2027-01"),
    ],
)
def test_month_key(moment, key):
    assert month_key(moment) == key


@pytest.mark.parametrize(
    ("year", "month", "expected"),
    [
        (2025, 12, utc(2026, 1, 1)),  # December -> next year
        (2026, 1, utc(2026, 2, 1)),
        (2026, 2, utc(2026, 3, 1)),
        (2028, 2, utc(2028, 3, 1)),  # leap February still ends on 1 March
        (2026, 4, utc(2026, 5, 1)),
        (2199, 12, utc(2200, 1, 1)),
    ],
)
def test_first_instant_after_month(year, month, expected):
    assert first_instant_after_month(year, month) == expected
    # the instant just before is still in that month
    assert month_key(expected - timedelta(microseconds=1)) == f"{year:04d}-{month:02d}"


@pytest.mark.parametrize("text", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_extreme_years_with_offsets_are_invalid_input_not_a_crash(text):
    # 0001-01-01T00:00+01:00 is in year 0 in UTC (and 9999-12-31T23:59:59-01:00 in year 10000):
    # astimezone() overflows before the 2000-2199 check, so the caller gets an OverflowError.
    with pytest.raises(InvalidInput):
        parse_timestamp(text)


def test_offset_minutes_above_59_rejected():
    # ISO 8601 offset minutes run 00-59; datetime.fromisoformat() accepts "+01:60" as 2 hours.
    with pytest.raises(InvalidInput):
        parse_timestamp("2026-01-01T00:00:00+01:60")
