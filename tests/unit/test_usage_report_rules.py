"""The usage report's derived columns (docs/reports.md), one case per row."""

from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from projections.usage_report import capability, destination_dialed, domestic_or_international, sortable_time

US_NUMBER, GB_NUMBER, RESERVED_GB = "+12065550123", "+442071234567", "+447700900123"


@pytest.mark.parametrize("kind, caller, destination, home, expected", [
    ("outbound", US_NUMBER, US_NUMBER, "US", "Domestic"),
    ("outbound", US_NUMBER, GB_NUMBER, "US", "International"),
    ("outbound", GB_NUMBER, RESERVED_GB, "GB", "International"),  # no country: domestic for no user (SPEC §2)
    ("dialout", US_NUMBER, GB_NUMBER, "GB", "Domestic"),
    ("app_outbound", US_NUMBER, US_NUMBER, "US", "Domestic"),  # home = the organization's country
    ("tollfree", GB_NUMBER, "+18005550199", "US", "International"),  # the caller is the other party
    ("tollfree", US_NUMBER, "+18005550199", "US", "Domestic"),
    ("inbound", GB_NUMBER, US_NUMBER, "GB", "Domestic"),
    ("inbound", US_NUMBER, GB_NUMBER, "GB", "International"),
    ("emergency", US_NUMBER, "911", "US", "Domestic"),
    ("emergency", GB_NUMBER, "112", "FR", "Domestic"),
])
def test_domestic_or_international(kind, caller, destination, home, expected):
    assert domestic_or_international(kind, caller, destination, home) == expected


@pytest.mark.parametrize("number, region", [(US_NUMBER, "US"), (GB_NUMBER, "GB"), ("+33142685300", "FR"),
                                            (RESERVED_GB, None), ("911", None), ("+112", None)])
def test_destination_dialed_is_the_region_phonenumbers_resolves(number, region):
    assert destination_dialed(number) == region


ZERO = Decimal("0.0000")


@pytest.mark.parametrize("pool, covered, debited, overage, uncollected, expected", [
    ("DOMESTIC/US", 5, ZERO, ZERO, ZERO, "DOMESTIC/US"),
    ("DOMESTIC/US", 3, Decimal("0.0380"), ZERO, ZERO, "DOMESTIC/US + Communications Credits"),
    ("DOMESTIC/US", 0, Decimal("0.0380"), ZERO, ZERO, "Communications Credits"),  # pool tried, empty
    (None, 0, Decimal("1.0000"), ZERO, Decimal("0.5000"), "Communications Credits + Uncollected"),
    ("INTERNATIONAL/FR", 600, ZERO, Decimal("0.2100"), ZERO, "INTERNATIONAL/FR + Overage"),
    (None, 0, ZERO, ZERO, Decimal("0.5000"), "Uncollected"),
    (None, 0, ZERO, ZERO, ZERO, "Free"),
])
def test_capability_lists_what_paid_in_order(pool, covered, debited, overage, uncollected, expected):
    assert capability(pool, covered, debited, overage, uncollected) == expected


def test_sortable_time_orders_as_text_as_it_orders_as_time():
    base = datetime(2026, 3, 1, tzinfo=timezone.utc)
    moments = [base, base + timedelta(microseconds=1), base + timedelta(milliseconds=500), base + timedelta(seconds=1),
               base.astimezone(timezone(timedelta(hours=2))) + timedelta(seconds=2)]
    assert sorted(moments, key=sortable_time) == sorted(moments)
    assert sortable_time("2026-03-01T00:00:00Z") < sortable_time("2026-03-01T00:00:00.5Z")
    assert sortable_time(moments[-1]) == "2026-03-01T00:00:02.000000Z"
