"""SPEC §6: call kinds and the pure rating decision (`plan_call`), before anything is applied."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from domain.calls import (
    CALL_TYPES,
    Cdr,
    billed_minutes,
    kind_of,
    user_required,
)
from domain.catalog import Catalog, parse_catalog
from domain.errors import NoRate
from domain.licences import (
    AUDIO_CONFERENCING,
    CALLING_PLAN_DOMESTIC,
    CALLING_PLAN_INTERNATIONAL,
    CALLING_PLAN_PAYG,
    COMMUNICATIONS_CREDITS,
    E5,
    PHONE_SYSTEM,
)
from domain.rates import RateCard, RateRow
from domain.rating import (
    PAYER_CREDITS,
    PAYER_NONE,
    PAYER_OVERAGE,
    PAYER_UNCOLLECTED,
    Billing,
    Caller,
    plan_call,
)

UTC = timezone.utc


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def row(prefix, kind, rate, fee="0", currency="USD", effective_from=utc(2025, 1, 1)):
    return RateRow(prefix, kind, Decimal(rate), Decimal(fee), currency, effective_from)


RATES = RateCard([
    row("1", "outbound", "0.0190"),
    row("44", "outbound", "0.0230"),
    row("447", "outbound", "0.1500", fee="0.0500"),
    row("33", "outbound", "0.0250"),
    row("33", "outbound", "0.0300", effective_from=utc(2026, 3, 1)),
    row("1", "dialout", "0.0200"),
    row("44", "dialout", "0.0350"),
    row("91", "dialout", "0.1200"),
    row("1", "tollfree", "0.0180"),
    row("44", "tollfree", "0.0400"),
    row("1", "outbound", "0.0170", currency="EUR"),
    row("800", "outbound", "0", fee="0"),  # a free destination
])

LEGACY_ACTIVE = Billing("USD", "legacy", True)
LEGACY_INACTIVE = Billing("USD", "legacy", False)
NCE = Billing("USD", "nce", False)

US_NUMBER = "+12065550123"
UK_NUMBER = "+442071234567"
FR_NUMBER = "+33142685300"
IN_NUMBER = "+919812345678"
NO_REGION = "+447700900123"

DOMESTIC_USER = Caller("US", frozenset({PHONE_SYSTEM, CALLING_PLAN_DOMESTIC, COMMUNICATIONS_CREDITS}))
INTERNATIONAL_USER = Caller("US", frozenset({PHONE_SYSTEM, CALLING_PLAN_INTERNATIONAL, COMMUNICATIONS_CREDITS}))
NO_CREDITS_USER = Caller("US", frozenset({PHONE_SYSTEM, CALLING_PLAN_DOMESTIC}))
ORGANIZER = Caller("US", frozenset({AUDIO_CONFERENCING, COMMUNICATIONS_CREDITS}))


def cdr(call_type="user_out", destination=US_NUMBER, seconds=60, caller="+14255550100", number_type=None,
        start=utc(2026, 1, 5, 10), user="alice@contoso.com") -> Cdr:
    return Cdr("u1", "contoso", user, call_type, number_type, caller, destination, start, start, seconds)


def pools(**remaining: int):
    """A remaining-minutes lookup: pools(DOMESTIC_US=10) -> DOMESTIC/US has 10 left; others 0."""
    table = {key.replace("_", "/"): value for key, value in remaining.items()}
    asked = []

    def remaining_minutes(month: str, pool: str) -> int:
        asked.append((month, pool))
        return table.get(pool, 0)

    remaining_minutes.asked = asked
    return remaining_minutes


def plan(call, caller=DOMESTIC_USER, billing=LEGACY_ACTIVE, remaining=None, catalog=None):
    return plan_call(call, caller, billing, remaining or pools(), RATES, catalog or Catalog())


# ----- kinds ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call_type", "number_type", "kind"),
    [
        ("user_out", None, "outbound"),
        ("user_out_conf", None, "outbound"),
        ("user_out_transfer", None, "outbound"),
        ("user_out_forwarding", None, "outbound"),
        ("fmc_out", None, "outbound"),
        ("user_out", "toll_free", "outbound"),  # number_type does not matter for outbound
        ("conf_out", None, "dialout"),
        ("conf_out", "toll_free", "dialout"),
        ("ucap_out", None, "app_outbound"),
        ("ucap_out_conf", None, "app_outbound"),
        ("user_in", "toll_free", "tollfree"),
        ("conf_in", "toll_free", "tollfree"),
        ("ucap_in", "toll_free", "tollfree"),
        ("unassigned_in", "toll_free", "tollfree"),
        ("user_in", None, "inbound"),
        ("user_in", "geographic", "inbound"),
        ("conf_in", None, "inbound"),
        ("ucap_in", "geographic", "inbound"),
        ("unassigned_in", None, "inbound"),
        ("fmc_in", "toll_free", "inbound"),  # fmc_in is never toll-free
        ("emergency_in", "toll_free", "inbound"),
        ("emergency_out", None, "emergency"),
    ],
)
def test_kind_of(call_type, number_type, kind):
    assert kind_of(call_type, number_type) == kind


def test_call_types_are_exactly_the_specs():
    assert CALL_TYPES == {
        "user_out", "user_out_conf", "user_out_transfer", "user_out_forwarding", "fmc_out", "conf_out",
        "ucap_out", "ucap_out_conf", "user_in", "conf_in", "ucap_in", "unassigned_in", "fmc_in",
        "emergency_in", "emergency_out",
    }


@pytest.mark.parametrize(
    ("call_type", "number_type", "required"),
    [
        ("user_out", None, True),
        ("fmc_out", None, True),
        ("conf_out", None, True),
        ("ucap_out", None, False),
        ("ucap_out_conf", None, False),
        ("user_in", "toll_free", True),
        ("conf_in", "toll_free", False),
        ("ucap_in", "toll_free", False),
        ("unassigned_in", "toll_free", False),
        ("user_in", None, True),
        ("fmc_in", None, True),
        ("conf_in", None, False),
        ("ucap_in", None, False),
        ("unassigned_in", None, False),
        ("emergency_in", None, False),
        ("emergency_out", None, True),
    ],
)
def test_user_required(call_type, number_type, required):
    assert user_required(call_type, number_type) is required


@pytest.mark.parametrize(("seconds", "minutes"), [(0, 0), (1, 1), (59, 1), (60, 1), (61, 2), (241, 5),
                                                  (600, 10), (86400, 1440), (86399, 1440)])
def test_billed_minutes_round_up(seconds, minutes):
    assert billed_minutes(seconds) == minutes


def test_tollfree_is_rated_by_the_caller_number():
    call = cdr("conf_in", destination="+18005550199", caller=UK_NUMBER, number_type="toll_free")
    assert call.rated_number == UK_NUMBER
    assert cdr("user_out", destination=UK_NUMBER).rated_number == UK_NUMBER


# ----- free and zero calls ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        cdr("user_in", destination="+14255550100", caller=UK_NUMBER, seconds=300),
        cdr("emergency_out", destination="911", seconds=300),
        cdr("emergency_in", destination="+14255550100", seconds=300, user=None),
    ],
)
def test_free_kinds_charge_nothing_but_keep_billed_minutes(call):
    remaining = pools(DOMESTIC_US=100)
    result = plan(call, remaining=remaining)
    assert result.billed_minutes == 5  # 300 s = 5 min
    assert (result.pool, result.covered_minutes, result.charge, result.payer) == (None, 0, Decimal("0"), PAYER_NONE)
    assert remaining.asked == []  # no pool was even consulted


def test_free_kinds_need_no_rate_even_on_nce():
    # +81 has no rate at all; inbound calls never look one up
    result = plan(cdr("user_in", caller="+81312345678"), billing=NCE)
    assert result.payer == PAYER_NONE


def test_zero_second_call_touches_nothing_and_needs_no_rate():
    remaining = pools(DOMESTIC_US=100)
    result = plan(cdr(destination="+81312345678", seconds=0), remaining=remaining)
    assert (result.billed_minutes, result.pool, result.covered_minutes, result.charge) == (0, None, 0, Decimal("0"))
    assert result.payer == PAYER_NONE
    assert remaining.asked == []


# ----- pools ------------------------------------------------------------------------------------


def test_domestic_call_fully_covered_needs_no_rate():
    # 241 s -> 5 min, all 5 covered by DOMESTIC/US (100 left): chargeable 0, the call is done
    result = plan(cdr(seconds=241), remaining=pools(DOMESTIC_US=100))
    assert (result.billed_minutes, result.pool, result.covered_minutes, result.chargeable_minutes) == \
        (5, "DOMESTIC/US", 5, 0)
    assert result.charge == Decimal("0")
    assert result.rate is None
    assert result.payer == PAYER_NONE


def test_pool_partly_covers_then_rate_applies():
    # 10 min, 3 left in the pool: covered 3, chargeable 7; 7 x 0.0190 = 0.1330
    result = plan(cdr(seconds=600), remaining=pools(DOMESTIC_US=3))
    assert (result.covered_minutes, result.chargeable_minutes) == (3, 7)
    assert result.charge == Decimal("0.1330")
    assert result.payer == PAYER_CREDITS


def test_empty_pool_is_still_the_pool_tried():
    result = plan(cdr(seconds=120), remaining=pools(DOMESTIC_US=0))
    # 2 min x 0.0190 = 0.0380
    assert (result.pool, result.covered_minutes, result.charge) == ("DOMESTIC/US", 0, Decimal("0.0380"))


def test_pool_month_is_the_utc_month_of_start_time():
    remaining = pools(DOMESTIC_US=10)
    # starts 23:59 on 31 Dec UTC, ends in January: the pool month is December
    result = plan(cdr(seconds=120, start=utc(2025, 12, 31, 23, 59)), remaining=remaining)
    assert result.pool_month == "2025-12"
    assert remaining.asked == [("2025-12", "DOMESTIC/US")]


@pytest.mark.parametrize(
    ("caller", "destination", "pool"),
    [
        (DOMESTIC_USER, US_NUMBER, "DOMESTIC/US"),
        (DOMESTIC_USER, UK_NUMBER, None),  # abroad, no international plan
        (INTERNATIONAL_USER, US_NUMBER, "DOMESTIC/US"),  # the international plan includes domestic
        (INTERNATIONAL_USER, UK_NUMBER, "INTERNATIONAL/US"),
        (Caller("GB", frozenset({PHONE_SYSTEM, CALLING_PLAN_INTERNATIONAL, COMMUNICATIONS_CREDITS})), UK_NUMBER,
         "DOMESTIC/GB"),
        (Caller("GB", frozenset({PHONE_SYSTEM, CALLING_PLAN_INTERNATIONAL, COMMUNICATIONS_CREDITS})), US_NUMBER,
         "INTERNATIONAL/GB"),
        (Caller("US", frozenset({PHONE_SYSTEM, CALLING_PLAN_PAYG, COMMUNICATIONS_CREDITS})), US_NUMBER, None),
        (Caller("US", frozenset({E5, COMMUNICATIONS_CREDITS})), US_NUMBER, None),  # E5 has no calling minutes
        (DOMESTIC_USER, NO_REGION, None),  # no region: domestic for no user
        # Canada is a different country from the US even though both are +1
        (DOMESTIC_USER, "+16135550100", None),
    ],
)
def test_outbound_pool_tried(caller, destination, pool):
    assert plan(cdr(destination=destination), caller=caller).pool == pool


@pytest.mark.parametrize(
    ("caller", "destination", "pool"),
    [
        (ORGANIZER, US_NUMBER, "DIALOUT/US"),
        (ORGANIZER, UK_NUMBER, "DIALOUT/US"),  # GB is a dial-out country; the pool is the organizer's
        (Caller("GB", frozenset({E5, COMMUNICATIONS_CREDITS})), US_NUMBER, "DIALOUT/GB"),
        (ORGANIZER, IN_NUMBER, None),  # IN is not a dial-out country
        (DOMESTIC_USER, US_NUMBER, None),  # no audio conferencing
        (ORGANIZER, NO_REGION, None),  # no region: not a dial-out country
    ],
)
def test_dialout_pool_tried(caller, destination, pool):
    assert plan(cdr("conf_out", destination=destination), caller=caller).pool == pool


def test_dialout_countries_come_from_the_catalogue():
    catalog = parse_catalog({"dialout_countries": ["IN"]})
    assert plan(cdr("conf_out", destination=IN_NUMBER), caller=ORGANIZER, catalog=catalog).pool == "DIALOUT/US"
    assert plan(cdr("conf_out", destination=US_NUMBER), caller=ORGANIZER, catalog=catalog).pool is None


@pytest.mark.parametrize(
    "call",
    [
        cdr("ucap_out", destination=US_NUMBER, user=None),
        cdr("conf_in", destination="+18005550199", caller="+12065550123", number_type="toll_free", user=None),
    ],
)
def test_app_outbound_and_tollfree_try_no_pool(call):
    remaining = pools(DOMESTIC_US=100, DIALOUT_US=100)
    result = plan(call, caller=None, remaining=remaining)
    assert result.pool is None
    assert remaining.asked == []


# ----- rates and charges ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "caller", "charge"),
    [
        # 600 s = 10 min to +44 20...: 10 x 0.0230 = 0.2300
        (cdr(destination=UK_NUMBER, seconds=600), DOMESTIC_USER, "0.2300"),
        # 180 s = 3 min to +447...: 3 x 0.1500 + 0.0500 fee = 0.5000
        (cdr(destination=NO_REGION, seconds=180), DOMESTIC_USER, "0.5000"),
        # 61 s = 2 min to +33 before 2026-03-01: 2 x 0.0250 = 0.0500
        (cdr(destination=FR_NUMBER, seconds=61), DOMESTIC_USER, "0.0500"),
        # 7200 s = 120 min to +33 on 2026-04-02: the 2026-03-01 row, 120 x 0.0300 = 3.6000
        (cdr(destination=FR_NUMBER, seconds=7200, start=utc(2026, 4, 2, 10)), DOMESTIC_USER, "3.6000"),
        # dial-out to India (not a dial-out country): 30 min x 0.1200 = 3.6000
        (cdr("conf_out", destination=IN_NUMBER, seconds=1800), ORGANIZER, "3.6000"),
        # app outbound uses the outbound rates: 1 min x 0.0190
        (cdr("ucap_out", destination=US_NUMBER, seconds=1, user=None), None, "0.0190"),
        # toll-free priced by the caller's +44 number: 30 min x 0.0400 = 1.2000
        (cdr("conf_in", destination="+18005550199", caller=UK_NUMBER, number_type="toll_free", seconds=1800,
             user=None), None, "1.2000"),
    ],
)
def test_charge_is_chargeable_minutes_times_rate_plus_fee(call, caller, charge):
    assert plan(call, caller=caller).charge == Decimal(charge)


def test_rate_row_of_the_plan_is_kept():
    result = plan(cdr(destination=NO_REGION, seconds=180))
    assert result.rate.prefix == "447"
    assert result.rate.kind == "outbound"


def test_connection_fee_charged_once_per_call():
    # 1 min x 0.1500 + 0.0500 = 0.2000; 2 min = 0.3000 + 0.0500 = 0.3500
    assert plan(cdr(destination=NO_REGION, seconds=60)).charge == Decimal("0.2000")
    assert plan(cdr(destination=NO_REGION, seconds=61)).charge == Decimal("0.3500")


def test_currency_of_the_organization_selects_rates():
    # EUR org: +1 at 0.0170; 2 min = 0.0340
    result = plan(cdr(seconds=120), billing=Billing("EUR", "legacy", True))
    assert result.charge == Decimal("0.0340")
    with pytest.raises(NoRate):
        plan(cdr(destination=UK_NUMBER), billing=Billing("EUR", "legacy", True))


@pytest.mark.parametrize(
    "call",
    [
        cdr(destination="+81312345678"),  # no +81 outbound row
        cdr("conf_out", destination=FR_NUMBER),  # no +33 dial-out row
        cdr("conf_in", destination="+18005550199", caller=FR_NUMBER, number_type="toll_free", user=None),
        cdr(destination=FR_NUMBER, start=utc(2024, 12, 31, 23, 59)),  # rows not yet effective
    ],
)
def test_no_rate_rejects_the_call(call):
    with pytest.raises(NoRate) as caught:
        plan(call, caller=ORGANIZER if call.call_type == "conf_out" else DOMESTIC_USER)
    assert caught.value.code == "no_rate"


def test_no_rate_checked_even_on_nce_and_inactive_credits():
    for billing in (NCE, LEGACY_INACTIVE):
        with pytest.raises(NoRate):
            plan(cdr(destination="+81312345678"), billing=billing)


def test_partly_covered_call_without_rate_is_rejected():
    # 2 min, 1 covered, 1 chargeable, and no +81 row: the whole CDR is rejected (no pool draw)
    with pytest.raises(NoRate):
        plan(cdr(destination="+81312345678", seconds=120),
             caller=INTERNATIONAL_USER, remaining=pools(INTERNATIONAL_US=1))


# ----- who pays ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "caller", "billing", "payer", "reason"),
    [
        (cdr(destination=UK_NUMBER), DOMESTIC_USER, LEGACY_ACTIVE, PAYER_CREDITS, None),
        (cdr(destination=UK_NUMBER), DOMESTIC_USER, NCE, PAYER_OVERAGE, None),
        (cdr(destination=UK_NUMBER), NO_CREDITS_USER, NCE, PAYER_OVERAGE, None),
        (cdr(destination=UK_NUMBER), DOMESTIC_USER, LEGACY_INACTIVE, PAYER_UNCOLLECTED, "credits_not_active"),
        # inactive credits wins even when the user also lacks the licence
        (cdr(destination=UK_NUMBER), NO_CREDITS_USER, LEGACY_INACTIVE, PAYER_UNCOLLECTED, "credits_not_active"),
        (cdr(destination=UK_NUMBER), NO_CREDITS_USER, LEGACY_ACTIVE, PAYER_UNCOLLECTED, "no_credits_licence"),
        (cdr("conf_out", destination=IN_NUMBER), Caller("US", frozenset({AUDIO_CONFERENCING})), LEGACY_ACTIVE,
         PAYER_UNCOLLECTED, "no_credits_licence"),
        (cdr("conf_out", destination=IN_NUMBER), ORGANIZER, LEGACY_ACTIVE, PAYER_CREDITS, None),
        # application outbound and toll-free need no user licence
        (cdr("ucap_out", destination=UK_NUMBER, user=None), None, LEGACY_ACTIVE, PAYER_CREDITS, None),
        (cdr("ucap_out", destination=UK_NUMBER), NO_CREDITS_USER, LEGACY_ACTIVE, PAYER_CREDITS, None),
        (cdr("user_in", destination="+18005550199", caller=UK_NUMBER, number_type="toll_free"), NO_CREDITS_USER,
         LEGACY_ACTIVE, PAYER_CREDITS, None),
        (cdr("ucap_out", destination=UK_NUMBER, user=None), None, LEGACY_INACTIVE, PAYER_UNCOLLECTED,
         "credits_not_active"),
        (cdr("ucap_out", destination=UK_NUMBER, user=None), None, NCE, PAYER_OVERAGE, None),
    ],
)
def test_who_pays(call, caller, billing, payer, reason):
    result = plan(call, caller=caller, billing=billing)
    assert (result.payer, result.uncollected_reason) == (payer, reason)


@pytest.mark.parametrize("billing", [LEGACY_ACTIVE, LEGACY_INACTIVE, NCE])
def test_zero_rate_and_fee_charge_nothing_no_reason(billing):
    # prefix 800 has rate 0 and fee 0: charge 0, recorded with nothing to pay and no reason
    result = plan(cdr(destination="+8005550100", seconds=600), caller=NO_CREDITS_USER, billing=billing)
    assert result.charge == Decimal("0")
    assert result.chargeable_minutes == 10
    assert (result.payer, result.uncollected_reason) == (PAYER_NONE, None)
