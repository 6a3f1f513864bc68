"""SPEC §5 (included minutes) and §6 (rating a call) as tables of scenarios.

Each row: a preamble, the CDRs, and the fields of the report expected, computed by hand from the
SPEC (arithmetic in the comments). Rates are those of the SPEC examples unless a row brings its
own rate card:

    USD outbound 1: 0.0190 | 44: 0.0230 | 447: 0.1500 + 0.0500 fee | 33: 0.0250, from 2026-03-01 0.0300
             49: 0.0240 | 91: 0.0900        dialout 1: 0.0200 | 44: 0.0350 | 91: 0.1200
    USD tollfree 1: 0.0180 | 44: 0.0400     EUR outbound 1: 0.0170 | 33: 0.0210 | 49: 0.0200 | 44: 0.0200
    EUR tollfree 33: 0.0300                 EUR dialout 39: 0.0300 + 0.0150 fee from 2026-01-01
"""

import phonenumbers
import pytest

from tests.e2e.test_spec_rules import (
    ACME,
    ALICE,
    ALICE_NUMBER,
    BOB,
    FR_NUMBER,
    GB_NUMBER,
    IN_NUMBER,
    JP_NUMBER,
    ORG,
    PAYG,
    TOLL_FREE,
    US_NUMBER,
    assert_accepted,
    assert_fields,
    assert_rejected_last,
    assigned,
    auto,
    cdr,
    inactive,
    legacy,
    nce,
    org_created,
    removed,
    run,
    user_added,
    without,
)

GB_MOBILE = "+447400123456"      # GB, prefix 447: 0.1500/min + 0.0500
NO_REGION = "+447700900123"      # possible number, reserved range: no country
CA_NUMBER = "+14165550123"
PR_NUMBER = "+17875550123"
DE_NUMBER = "+4930123456"
IT_NUMBER = "+390612345678"
DOMESTIC = ("PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC")
INTERNATIONAL = ("PHONE_SYSTEM", "CALLING_PLAN_INTERNATIONAL")
SMALL = '{"minutes": {"DOMESTIC": {"*": 10}, "INTERNATIONAL": {"*": 5}, "DIALOUT": {"*": 10}}}'


def call(usage_id="u1", **fields):
    """Expected fields of one call, as `pick` paths."""
    return {f"calls.{usage_id}.{key}": value for key, value in fields.items()}


def check(lines, expected, rates=None, catalogue=None):
    report = assert_accepted(lines, rates=rates, catalogue=catalogue)
    assert_fields(report, expected)
    return report


# === §6 kinds ===================================================================================
# LEGACY: alice (US) holds PHONE_SYSTEM, CALLING_PLAN_PAYG (no included minutes) and
# COMMUNICATIONS_CREDITS; credits active with 100.

LEGACY = legacy()
OUTBOUND_TYPES = ["user_out", "user_out_conf", "user_out_transfer", "user_out_forwarding", "fmc_out"]
TOLL_FREE_TYPES = ["user_in", "conf_in", "ucap_in", "unassigned_in"]
INBOUND_TYPES = ["user_in", "conf_in", "ucap_in", "unassigned_in", "fmc_in", "emergency_in"]
USER_REQUIRED_INBOUND = {"user_in", "fmc_in"}


@pytest.mark.parametrize("call_type", OUTBOUND_TYPES)
def test_s6_outbound_kinds(call_type):
    # 3 min × 0.0190 = 0.0570, paid from credits
    check([*LEGACY, cdr("u1", call_type=call_type, seconds=180)],
          call(kind="outbound", billed_minutes=3, pool=None, charge="0.0570", debited="0.0570", reason=None)
          | {ACME + "balance": "99.9430"})


def test_s6_conf_out_is_dialout_rated_on_dialout_rows():
    # 3 min × 0.0200 (dialout row 1) = 0.0600; alice has no audio conferencing: no pool
    check([*LEGACY, cdr("u1", call_type="conf_out", seconds=180)],
          call(kind="dialout", pool=None, covered_minutes=0, charge="0.0600", debited="0.0600"))


@pytest.mark.parametrize("call_type", ["ucap_out", "ucap_out_conf"])
@pytest.mark.parametrize("user", [None, ALICE, BOB], ids=["no-user", "user-with-credits", "user-without-licences"])
def test_s6_application_outbound(call_type, user):
    # outbound row 44: 3 min × 0.0230 = 0.0690, paid from credits whatever the user holds
    check([*LEGACY, user_added(BOB), cdr("u1", call_type=call_type, user=user, dest=GB_NUMBER, seconds=180)],
          call(kind="app_outbound", pool=None, charge="0.0690", debited="0.0690", reason=None))


def test_s6_application_outbound_draws_no_pool():
    # alice has a domestic plan, but an auto attendant's call draws nothing: 3 × 0.0190 = 0.0570
    check([*legacy(*DOMESTIC), cdr("u1", call_type="ucap_out", seconds=180)],
          call(kind="app_outbound", pool=None, covered_minutes=0, charge="0.0570") | {ACME + "pools": {}})


@pytest.mark.parametrize("call_type", TOLL_FREE_TYPES)
@pytest.mark.parametrize("caller, charge", [
    (GB_NUMBER, "0.1200"),       # tollfree row 44: 3 × 0.0400
    (US_NUMBER, "0.0540"),       # tollfree row 1: 3 × 0.0180
])
def test_s6_toll_free_inbound_is_rated_on_the_callers_number(call_type, caller, charge):
    user = ALICE if call_type == "user_in" else None
    check([*LEGACY, cdr("u1", call_type=call_type, user=user, caller=caller, dest=TOLL_FREE, seconds=180,
                        number_type="toll_free")],
          call(kind="tollfree", pool=None, billed_minutes=3, charge=charge, debited=charge))


def test_s6_toll_free_with_a_user_is_paid_without_a_user_licence():
    # bob holds nothing; conf_in toll-free naming him is still paid from credits: 2 × 0.0180 = 0.0360
    check([*LEGACY, user_added(BOB), cdr("u1", call_type="conf_in", user=BOB, caller=US_NUMBER, dest=TOLL_FREE,
                                         seconds=120, number_type="toll_free")],
          call(kind="tollfree", charge="0.0360", debited="0.0360", reason=None))


def test_s6_toll_free_caller_without_a_row_is_no_rate():
    # caller FR: no USD tollfree row for 33 (the destination +1800… would have matched row 1)
    assert_rejected_last([*LEGACY, cdr("u1", call_type="conf_in", user=None, caller=FR_NUMBER, dest=TOLL_FREE,
                                       number_type="toll_free")], "no_rate")


@pytest.mark.parametrize("call_type", INBOUND_TYPES)
@pytest.mark.parametrize("number_type", [None, "geographic", "service"], ids=["absent", "geographic", "service"])
def test_s6_inbound_is_free(call_type, number_type):
    user = ALICE if call_type in USER_REQUIRED_INBOUND else None
    extra = {} if number_type is None else {"number_type": number_type}
    # caller JP has no rate at all: a free call needs none
    check([*LEGACY, cdr("u1", call_type=call_type, user=user, caller=JP_NUMBER, dest=ALICE_NUMBER, seconds=300,
                        **extra)],
          call(kind="inbound", billed_minutes=5, covered_minutes=0, pool=None, charge="0.0000", debited="0.0000",
               uncollected="0.0000", overage="0.0000", reason=None) | {ACME + "balance": "100.0000"})


@pytest.mark.parametrize("call_type", ["fmc_in", "emergency_in"])
def test_s6_toll_free_flag_does_not_make_fmc_or_emergency_inbound_billable(call_type):
    user = ALICE if call_type == "fmc_in" else None
    check([*LEGACY, cdr("u1", call_type=call_type, user=user, caller=GB_NUMBER, dest=TOLL_FREE, seconds=300,
                        number_type="toll_free")],
          call(kind="inbound", charge="0.0000", billed_minutes=5))


@pytest.mark.parametrize("call_type, kind, charge", [
    ("user_out", "outbound", "0.0570"),          # 3 × 0.0190 on the destination, not the caller
    ("fmc_out", "outbound", "0.0570"),
    ("conf_out", "dialout", "0.0600"),           # 3 × 0.0200
    ("ucap_out", "app_outbound", "0.0570"),
])
def test_s6_toll_free_flag_does_not_change_outgoing_kinds(call_type, kind, charge):
    # number_type is "any" for outgoing call types; caller GB would cost 0.0400/min if toll-free
    check([*LEGACY, cdr("u1", call_type=call_type, caller=GB_NUMBER, dest=US_NUMBER, seconds=180,
                        number_type="toll_free")],
          call(kind=kind, charge=charge))


@pytest.mark.parametrize("preamble", [LEGACY, inactive(), nce(), [org_created(), user_added()]],
                         ids=["legacy", "inactive", "nce", "no-licences"])
def test_s6_emergency_is_free_and_never_blocked(preamble):
    check([*preamble, cdr("u1", call_type="emergency_out", dest="911", seconds=300)],
          call(kind="emergency", billed_minutes=5, pool=None, charge="0.0000", uncollected="0.0000",
               overage="0.0000", reason=None))


@pytest.mark.parametrize("call_type, number_type", [
    *[(call_type, None) for call_type in OUTBOUND_TYPES],
    ("conf_out", None), ("user_in", None), ("user_in", "toll_free"), ("fmc_in", None), ("emergency_out", None),
])
def test_s6_user_required(call_type, number_type):
    extra = {"number_type": number_type} if number_type else {}
    dest = "112" if call_type == "emergency_out" else US_NUMBER
    assert_rejected_last([*LEGACY, without(cdr("u1", call_type=call_type, dest=dest, **extra), "user")],
                         "invalid_input")


@pytest.mark.parametrize("call_type, number_type, kind", [
    ("ucap_out", None, "app_outbound"), ("ucap_out_conf", None, "app_outbound"),
    ("conf_in", "toll_free", "tollfree"), ("ucap_in", "toll_free", "tollfree"),
    ("unassigned_in", "toll_free", "tollfree"),
    ("conf_in", None, "inbound"), ("ucap_in", None, "inbound"), ("unassigned_in", None, "inbound"),
    ("emergency_in", None, "inbound"),
])
def test_s6_user_optional(call_type, number_type, kind):
    extra = {"number_type": number_type} if number_type else {}
    check([*LEGACY, cdr("u1", call_type=call_type, user=None, **extra)], call(kind=kind))


@pytest.mark.parametrize("call_type", ["ucap_out", "conf_in", "emergency_in", "unassigned_in"])
def test_s6_optional_user_when_given_must_exist(call_type):
    assert_rejected_last([*LEGACY, cdr("u1", call_type=call_type, user="ghost@acme.com")], "unknown_user")


# --- steps 1–5 ------------------------------------------------------------------------------------

@pytest.mark.parametrize("seconds, minutes, charge", [
    (1, 1, "0.0190"),
    (59, 1, "0.0190"),
    (60, 1, "0.0190"),
    (61, 2, "0.0380"),        # ceil(61 / 60) = 2 → 2 × 0.0190
    (119, 2, "0.0380"),
    (120, 2, "0.0380"),
    (121, 3, "0.0570"),
    (3599, 60, "1.1400"),     # 60 × 0.0190
    (86400, 1440, "27.3600"),  # 1440 × 0.0190
])
def test_s6_billed_minutes_are_rounded_up(seconds, minutes, charge):
    check([*LEGACY, cdr("u1", seconds=seconds, start="2026-01-10T00:00:00Z")],
          call(billed_minutes=minutes, charge=charge, debited=charge))


@pytest.mark.parametrize("preamble, dest", [
    (legacy(*DOMESTIC), US_NUMBER),
    (LEGACY, JP_NUMBER),               # no rate, but nothing is rated
    (nce(), US_NUMBER),
    (inactive(), US_NUMBER),
], ids=["domestic-pool", "no-rate-destination", "nce", "inactive"])
def test_s6_zero_second_call_touches_nothing(preamble, dest):
    report = check([*preamble, cdr("u1", seconds=0, dest=dest, start="2026-01-10T10:00:00Z")],
                   call(kind="outbound", billed_minutes=0, covered_minutes=0, pool=None, charge="0.0000",
                        debited="0.0000", uncollected="0.0000", overage="0.0000", reason=None)
                   | {ACME + "pools": {}, ACME + "totals.uncollected": "0.0000", ACME + "depleted": 0})
    assert report["counts"]["rated"] == 1


@pytest.mark.parametrize("dest, start, seconds, charge", [
    (GB_MOBILE, "2026-01-10T10:00:00Z", 180, "0.5000"),     # longest prefix 447: 3 × 0.1500 + 0.0500
    (GB_NUMBER, "2026-01-10T10:00:00Z", 180, "0.0690"),     # prefix 44: 3 × 0.0230
    (NO_REGION, "2026-01-10T10:00:00Z", 180, "0.5000"),     # 447 too (rated by prefix, no country needed)
    (DE_NUMBER, "2026-01-10T10:00:00Z", 180, "0.0720"),     # 49: 3 × 0.0240
    (FR_NUMBER, "2026-02-28T23:59:59Z", 1, "0.0250"),       # before 2026-03-01: 1 × 0.0250
    (FR_NUMBER, "2026-03-01T00:00:00Z", 60, "0.0300"),      # effective_from <= start: 1 × 0.0300
    (FR_NUMBER, "2026-02-28T23:50:00Z", 1200, "0.5000"),    # rated at start (Feb): 20 × 0.0250
    (FR_NUMBER, "2026-03-01T01:00:00+02:00", 60, "0.0250"),  # = 2026-02-28T23:00Z: 0.0250
])
def test_s6_rate_is_longest_prefix_then_latest_effective_from(dest, start, seconds, charge):
    check([*LEGACY, cdr("u1", dest=dest, start=start, seconds=seconds)], call(charge=charge, debited=charge))


CUSTOM_RATES = """
1,outbound,0.0100,0,USD,2026-01-01T00:00:00Z
12,outbound,0.0200,0,USD,2025-01-01T00:00:00Z
12,outbound,0.0250,0.0100,USD,2025-06-01T00:00:00Z
120,outbound,0.0500,0,USD,2027-01-01T00:00:00Z
1206,outbound,0.0700,0,EUR,2025-01-01T00:00:00Z
1206,dialout,0.0800,0,USD,2025-01-01T00:00:00Z
1206,tollfree,0.0900,0,USD,2025-01-01T00:00:00Z
"""


@pytest.mark.parametrize("start, charge", [
    # row 120 is not effective yet, 1206 is EUR / another kind; longest effective prefix is 12,
    # latest of its rows is 2025-06: 7 × 0.0250 + 0.0100 = 0.1850
    ("2026-01-10T10:00:00Z", "0.1850"),
    # from 2027-01-01 row 120 applies: 7 × 0.0500 = 0.3500
    ("2027-01-10T10:00:00Z", "0.3500"),
    # before 2025-06-01 only the older 12 row: 7 × 0.0200 = 0.1400 (row 1 not effective either)
    ("2025-03-10T10:00:00Z", "0.1400"),
])
def test_s6_rate_selection_with_a_custom_card(start, charge):
    lines = [org_created(at="2025-01-01T00:00:00Z"), user_added(at="2025-01-01T00:00:00Z"),
             assigned(ALICE, list(PAYG), at="2025-01-01T00:00:00Z"),
             {"type": "order.placed", "at": "2025-01-01T00:00:00Z", "org": ORG, "order": "o-1", "funds": "100",
              "auto_recharge": {"enabled": False},
              "payment": {"method": "card", "card": "visa-1", "expires": "2030-12"}},
             assigned(ALICE, "COMMUNICATIONS_CREDITS", at="2025-01-01T00:00:00Z"),
             cdr("u1", start=start, seconds=420)]
    check(lines, call(charge=charge), rates=CUSTOM_RATES)


def test_s6_connection_fee_added_to_the_chargeable_minutes():
    rates = "1,outbound,0.0190,0.0100,USD,2025-01-01T00:00:00Z"
    # 7 min × 0.0190 + 0.0100 = 0.1430
    check([*LEGACY, cdr("u1", seconds=420)], call(charge="0.1430", debited="0.1430"), rates=rates)


def test_s6_no_row_effective_yet_is_no_rate():
    # all USD rows start 2025-01-01; a call in 2024 has none
    lines = [org_created(at="2024-06-01T00:00:00Z"), user_added(at="2024-06-01T00:00:00Z"),
             assigned(ALICE, list(PAYG), at="2024-06-01T00:00:00Z"),
             cdr("u1", start="2024-06-10T10:00:00Z")]
    assert_rejected_last(lines, "no_rate")


@pytest.mark.parametrize("preamble, line", [
    (LEGACY, cdr("u1", dest=JP_NUMBER)),                                   # no USD row for 81
    (LEGACY, cdr("u1", call_type="conf_out", dest=FR_NUMBER)),             # 33 only outbound in USD
    (LEGACY, cdr("u1", call_type="ucap_out", dest=JP_NUMBER)),
    (legacy(country="FR", currency="EUR", loc="FR"), cdr("u1", dest=IN_NUMBER)),   # 91 only in USD
    (nce(), cdr("u1", dest=JP_NUMBER)),
], ids=["no-prefix", "wrong-kind", "app-outbound", "wrong-currency", "nce"])
def test_s6_no_rate(preamble, line):
    assert_rejected_last([*preamble, line], "no_rate")


def test_s6_rates_in_the_organizations_currency():
    eur = legacy("PHONE_SYSTEM", "CALLING_PLAN_PAYG", country="FR", currency="EUR", loc="FR")
    check([*eur, cdr("u1", dest=DE_NUMBER, caller=FR_NUMBER, seconds=180),            # EUR 49: 3 × 0.0200
           cdr("u2", call_type="conf_out", dest=IT_NUMBER, caller=FR_NUMBER, seconds=180)],  # 3 × 0.03 + 0.015
          call("u1", charge="0.0600") | call("u2", kind="dialout", pool=None, charge="0.1050")
          | {ACME + "currency": "EUR", ACME + "balance": "99.8350"})   # 100 − 0.0600 − 0.1050


def test_s6_no_rate_applies_nothing_not_even_the_pool_draw():
    rates = "44,outbound,0.0230,0,USD,2025-01-01T00:00:00Z"   # no row for US numbers
    lines = [*legacy(*DOMESTIC),
             cdr("u1", seconds=900),                                  # 15 min: 10 covered, 5 need a rate
             cdr("u2", seconds=300, start="2026-01-11T10:00:00Z"),    # 5 min: fully covered, no rate needed
             cdr("u3", seconds=360, start="2026-01-12T10:00:00Z"),    # 6 min: 5 left, 1 needs a rate
             cdr("u1", seconds=300, start="2026-01-13T10:00:00Z")]    # u1 not reserved: 5 covered
    report = run(lines, rates=rates, catalogue=SMALL)
    assert report["rejected"] == [{"line": 6, "code": "no_rate"}, {"line": 8, "code": "no_rate"}]
    assert_fields(report, call("u2", covered_minutes=5, charge="0.0000", pool="DOMESTIC/US")
                  | call("u1", covered_minutes=5, charge="0.0000")
                  | {ACME + "pools": {"2026-01": {"DOMESTIC/US": 10}}, ACME + "balance": "100.0000"})


# --- step 6: who pays ----------------------------------------------------------------------------

PAYERS = [
    # (id, preamble, cdr, debited, uncollected, overage, reason) — charge 3 × rate
    ("legacy-outbound", LEGACY, cdr("u1", seconds=180), "0.0570", "0.0000", "0.0000", None),
    ("no-credits-licence-outbound", legacy(credits_licence=False), cdr("u1", seconds=180),
     "0.0000", "0.0570", "0.0000", "no_credits_licence"),
    ("no-credits-licence-dialout", legacy("E5", credits_licence=False),
     cdr("u1", call_type="conf_out", dest=IN_NUMBER, seconds=180),          # IN not dial-out: 3 × 0.1200
     "0.0000", "0.3600", "0.0000", "no_credits_licence"),
    ("no-credits-licence-app-outbound-still-paid", legacy(credits_licence=False),
     cdr("u1", call_type="ucap_out", seconds=180), "0.0570", "0.0000", "0.0000", None),
    ("no-credits-licence-tollfree-still-paid", legacy(credits_licence=False),
     cdr("u1", call_type="user_in", number_type="toll_free", caller=US_NUMBER, dest=TOLL_FREE, seconds=180),
     "0.0540", "0.0000", "0.0000", None),
    ("inactive-outbound", inactive(), cdr("u1", seconds=180), "0.0000", "0.0570", "0.0000", "credits_not_active"),
    ("inactive-dialout", inactive("AUDIO_CONFERENCING"), cdr("u1", call_type="conf_out", dest=IN_NUMBER,
                                                             seconds=180),
     "0.0000", "0.3600", "0.0000", "credits_not_active"),
    ("inactive-app-outbound", inactive(), cdr("u1", call_type="ucap_out", user=None, seconds=180),
     "0.0000", "0.0570", "0.0000", "credits_not_active"),
    ("inactive-tollfree", inactive(), cdr("u1", call_type="unassigned_in", user=None, number_type="toll_free",
                                          caller=US_NUMBER, dest=TOLL_FREE, seconds=180),
     "0.0000", "0.0540", "0.0000", "credits_not_active"),
    ("nce-outbound", nce(), cdr("u1", seconds=180), "0.0000", "0.0000", "0.0570", None),
    ("nce-dialout", nce("AUDIO_CONFERENCING"), cdr("u1", call_type="conf_out", dest=IN_NUMBER, seconds=180),
     "0.0000", "0.0000", "0.3600", None),
    ("nce-app-outbound", nce(), cdr("u1", call_type="ucap_out_conf", user=None, seconds=180),
     "0.0000", "0.0000", "0.0570", None),
    ("nce-tollfree", nce(), cdr("u1", call_type="ucap_in", user=None, number_type="toll_free", caller=GB_NUMBER,
                                dest=TOLL_FREE, seconds=180), "0.0000", "0.0000", "0.1200", None),
]


@pytest.mark.parametrize("preamble, line, debited, uncollected, overage, reason",
                         [pytest.param(*row[1:], id=row[0]) for row in PAYERS])
def test_s6_who_pays(preamble, line, debited, uncollected, overage, reason):
    charge = max(debited, uncollected, overage)
    check([*preamble, line], call(charge=charge, debited=debited, uncollected=uncollected, overage=overage,
                                  reason=reason)
          | {ACME + "totals.uncollected": uncollected, ACME + "totals.overage": overage,
             ACME + "totals.charged": debited})


def test_s6_nce_overage_after_included_minutes():
    # DOMESTIC {"*": 10}: 15 min → 10 covered, 5 × 0.0190 = 0.0950 overage; nothing blocked
    check([*nce(*DOMESTIC), cdr("u1", seconds=900)],
          call(pool="DOMESTIC/US", covered_minutes=10, charge="0.0950", overage="0.0950", debited="0.0000",
               reason=None)
          | {ACME + "totals.overage": "0.0950", ACME + "balance": "0.0000", ACME + "credits_active": False},
          catalogue=SMALL)


ZERO_RATES = """
1,outbound,0,0,USD,2025-01-01T00:00:00Z
44,outbound,0.0230,0,USD,2025-01-01T00:00:00Z
"""


@pytest.mark.parametrize("preamble", [
    legacy(funds="1", auto_recharge=auto("10", "50")),   # balance 1 below trigger 50: a debit would recharge
    inactive(),
    legacy(funds="1", credits_licence=False),
    nce(),
], ids=["legacy-below-trigger", "inactive", "no-credits-licence", "nce"])
def test_s6_zero_charge_debits_nothing_and_triggers_nothing(preamble):
    check([*preamble, cdr("u1", seconds=600)],
          call(charge="0.0000", debited="0.0000", uncollected="0.0000", overage="0.0000", reason=None,
               billed_minutes=10)
          | {ACME + "recharges": {"triggered": 0, "succeeded": 0, "failed": 0}, ACME + "depleted": 0},
          rates=ZERO_RATES)


def test_s6_fully_covered_call_pays_no_connection_fee():
    # GB user, domestic plan (1200 min): GB mobile 3 min fully covered → 0, no 0.0500 fee
    check([*legacy(*DOMESTIC, loc="GB"), cdr("u1", dest=GB_MOBILE, caller=GB_NUMBER, seconds=180)],
          call(pool="DOMESTIC/GB", covered_minutes=3, charge="0.0000"))


def test_s6_partly_covered_call_pays_fee_on_the_rest():
    # DOMESTIC {"*": 2}: 5 min → 2 covered; 3 × 0.1500 + 0.0500 = 0.5000
    check([*legacy(*DOMESTIC, loc="GB"), cdr("u1", dest=GB_MOBILE, caller=GB_NUMBER, seconds=300)],
          call(pool="DOMESTIC/GB", covered_minutes=2, charge="0.5000", debited="0.5000"),
          catalogue='{"minutes": {"DOMESTIC": {"*": 2}}}')


# === §2 regionless numbers ========================================================================

def test_s2_regionless_number_is_not_domestic():
    # GB user with a domestic plan: +447700900123 has no country → no pool; 3 × 0.1500 + 0.0500
    check([*legacy(*DOMESTIC, loc="GB"), cdr("u1", dest=NO_REGION, caller=GB_NUMBER, seconds=180),
           cdr("u2", dest=GB_MOBILE, caller=GB_NUMBER, seconds=180)],
          call("u1", pool=None, covered_minutes=0, charge="0.5000")
          | call("u2", pool="DOMESTIC/GB", covered_minutes=3, charge="0.0000"))


def test_s2_regionless_number_is_not_domestic_for_an_international_plan_either():
    # SPEC is silent on whether a number with no country is "abroad" (INTERNATIONAL) — only that
    # it is domestic for no user; assert just that it does not draw DOMESTIC minutes.
    report = assert_accepted([*legacy(*INTERNATIONAL), cdr("u1", dest=NO_REGION, seconds=180)])
    assert report["calls"]["u1"]["pool"] != "DOMESTIC/US"
    assert "DOMESTIC/US" not in report["organizations"][ORG]["pools"].get("2026-01", {})


def test_s2_regionless_number_is_not_a_dial_out_country():
    # E5 GB user: dial-out to it draws no DIALOUT minutes; dialout row 44: 3 × 0.0350 = 0.1050
    check([*legacy("E5", loc="GB"), cdr("u1", call_type="conf_out", dest=NO_REGION, caller=GB_NUMBER, seconds=180),
           cdr("u2", call_type="conf_out", dest=GB_NUMBER, caller=GB_NUMBER, seconds=180)],
          call("u1", kind="dialout", pool=None, charge="0.1050")
          | call("u2", kind="dialout", pool="DIALOUT/GB", covered_minutes=3, charge="0.0000"))


# === §5 pools =====================================================================================

@pytest.mark.parametrize("preamble, line, pool, covered, charge", [
    # US: 3000 domestic minutes; 1440 covered in full (1200 would not)
    (legacy(*DOMESTIC), cdr("u1", seconds=86400, start="2026-01-10T00:00:00Z"), "DOMESTIC/US", 1440, "0.0000"),
    (legacy(*DOMESTIC, loc="CA"), cdr("u1", dest=CA_NUMBER, seconds=86400, start="2026-01-10T00:00:00Z"),
     "DOMESTIC/CA", 1440, "0.0000"),
    (legacy(*DOMESTIC, loc="PR"), cdr("u1", dest=PR_NUMBER, seconds=86400, start="2026-01-10T00:00:00Z"),
     "DOMESTIC/PR", 1440, "0.0000"),
    # GB: 1200; 240 × 0.0230 = 5.5200
    (legacy(*DOMESTIC, loc="GB"), cdr("u1", dest=GB_NUMBER, seconds=86400, start="2026-01-10T00:00:00Z"),
     "DOMESTIC/GB", 1200, "5.5200"),
    # international plan: domestic calls draw DOMESTIC
    (legacy(*INTERNATIONAL), cdr("u1", seconds=600), "DOMESTIC/US", 10, "0.0000"),
    # international: 600; 700 min to GB → 100 × 0.0230 = 2.3000
    (legacy(*INTERNATIONAL), cdr("u1", dest=GB_NUMBER, seconds=42000, start="2026-01-10T00:00:00Z"),
     "INTERNATIONAL/US", 600, "2.3000"),
    # a domestic plan does not cover abroad: 10 × 0.0230 = 0.2300
    (legacy(*DOMESTIC), cdr("u1", dest=GB_NUMBER, seconds=600), None, 0, "0.2300"),
    # PAYG has no minutes: 10 × 0.0190
    (legacy(*PAYG), cdr("u1", seconds=600), None, 0, "0.1900"),
    # domestic = destination country equals the user's usage location (GB), not the org's (US)
    (legacy(*DOMESTIC, loc="GB"), cdr("u1", seconds=600), None, 0, "0.1900"),
    # dial-out: 60 min per audio-conferencing user; 70 min → 10 × 0.0200 = 0.2000
    (legacy("AUDIO_CONFERENCING"), cdr("u1", call_type="conf_out", seconds=4200, start="2026-01-10T00:00:00Z"),
     "DIALOUT/US", 60, "0.2000"),
    (legacy("E5"), cdr("u1", call_type="conf_out", dest=GB_NUMBER, seconds=600), "DIALOUT/US", 10, "0.0000"),
    # IN is not a dial-out country: 20 × 0.1200 = 2.4000
    (legacy("E5"), cdr("u1", call_type="conf_out", dest=IN_NUMBER, seconds=1200), None, 0, "2.4000"),
    # no audio conferencing → no DIALOUT minutes: 3 × 0.0200
    (legacy(*PAYG), cdr("u1", call_type="conf_out", seconds=180), None, 0, "0.0600"),
    # a plan does not give dial-out minutes to outbound calls of an E5 user without plan
    (legacy("E5"), cdr("u1", seconds=180), None, 0, "0.0570"),
], ids=["domestic-US-3000", "domestic-CA-3000", "domestic-PR-3000", "domestic-GB-1200",
        "international-plan-domestic-call", "international-600", "domestic-plan-abroad", "payg-no-pool",
        "usage-location-not-org-country", "dialout-60", "dialout-to-GB", "dialout-not-a-dialout-country",
        "dialout-needs-audio-conferencing", "outbound-e5-no-plan"])
def test_s5_default_pools(preamble, line, pool, covered, charge):
    expected = call(pool=pool, covered_minutes=covered, charge=charge)
    if covered:
        expected[ACME + "pools"] = {"2026-01": {pool: covered}}
    check([*preamble, line], expected)


@pytest.mark.parametrize("country", ["US", "CA", "PR", "GB", "IE", "FR", "DE", "IT", "ES", "NL", "BE", "AT", "CH",
                                     "SE", "NO", "DK", "FI", "PT", "PL", "AU", "NZ", "JP"])
def test_s5_default_dial_out_countries(country):
    number = phonenumbers.format_number(phonenumbers.example_number(country), phonenumbers.PhoneNumberFormat.E164)
    # 5 min, all within the 60 dial-out minutes: no rate needed
    check([*legacy("E5"), cdr("u1", call_type="conf_out", dest=number, seconds=300)],
          call(pool="DIALOUT/US", covered_minutes=5, charge="0.0000"))


POOL_SCENARIOS = [
    # (id, lines after the org, expected) with catalogue SMALL: DOMESTIC 10, INTERNATIONAL 5, DIALOUT 10
    ("two-contributors", [user_added(BOB), assigned([ALICE, BOB], list(DOMESTIC)), cdr("u1", seconds=900)],
     call(covered_minutes=15, charge="0.0000")),                                  # capacity 2 × 10 = 20
    ("one-contributor", [assigned(ALICE, list(DOMESTIC)), cdr("u1", seconds=900)],
     call(covered_minutes=10, charge="0.0950")),                                  # 5 × 0.0190
    ("contributor-added-later", [user_added(BOB), assigned(ALICE, list(DOMESTIC)), cdr("u1", seconds=900),
                                 assigned(BOB, list(DOMESTIC), at="2026-01-11T00:00:00Z"),
                                 cdr("u2", seconds=480, start="2026-01-12T00:00:00Z")],
     call("u1", covered_minutes=10) | call("u2", covered_minutes=8, charge="0.0000")   # 20 − 10 = 10 left
     | {ACME + "pools": {"2026-01": {"DOMESTIC/US": 18}}}),
    ("contributor-removed", [user_added(BOB), assigned([ALICE, BOB], list(DOMESTIC)), cdr("u1", seconds=900),
                             removed(BOB, list(DOMESTIC), at="2026-01-11T00:00:00Z"),
                             cdr("u2", seconds=300, start="2026-01-12T00:00:00Z")],
     call("u2", covered_minutes=0, pool="DOMESTIC/US", charge="0.0950")             # max(0, 10 − 15) = 0
     | {ACME + "pools": {"2026-01": {"DOMESTIC/US": 15}}}),
    ("other-location-does-not-contribute", [user_added(BOB, loc="CA"), assigned([ALICE, BOB], list(DOMESTIC)),
                                            cdr("u1", seconds=900)],
     call(covered_minutes=10, charge="0.0950")),
    ("international-plan-contributes-to-domestic", [user_added(BOB), assigned(ALICE, list(DOMESTIC)),
                                                    assigned(BOB, list(INTERNATIONAL)), cdr("u1", seconds=900)],
     call(covered_minutes=15)),
    ("domestic-plan-does-not-contribute-to-international",
     [user_added(BOB), assigned(ALICE, list(INTERNATIONAL)), assigned(BOB, list(DOMESTIC)),
      cdr("u1", dest=GB_NUMBER, seconds=480)],
     call(pool="INTERNATIONAL/US", covered_minutes=5, charge="0.0690")),          # 3 × 0.0230
    ("shared-pool", [user_added(BOB), assigned([ALICE, BOB], list(DOMESTIC)), cdr("u1", seconds=900),
                     cdr("u2", user=BOB, seconds=480, start="2026-01-11T00:00:00Z")],
     call("u2", covered_minutes=5, charge="0.0570")),                              # 20 − 15 = 5; 3 × 0.0190
    ("e5-and-ac-count-once", [assigned(ALICE, ["E5", "AUDIO_CONFERENCING"]), cdr("u1", call_type="conf_out",
                                                                                  seconds=900)],
     call(pool="DIALOUT/US", covered_minutes=10, charge="0.1000")),                # 5 × 0.0200
    ("e5-and-ac-users-count-twice", [user_added(BOB), assigned(ALICE, "E5"), assigned(BOB, "AUDIO_CONFERENCING"),
                                     cdr("u1", call_type="conf_out", seconds=900)],
     call(pool="DIALOUT/US", covered_minutes=15, charge="0.0000")),
    ("monthly-reset", [assigned(ALICE, list(DOMESTIC)), cdr("u1", seconds=600),
                       cdr("u2", seconds=300, start="2026-01-31T23:58:00Z"),     # starts in January: 0 left
                       cdr("u3", seconds=300, start="2026-02-01T00:00:00Z")],    # February: fresh 10
     call("u2", covered_minutes=0, charge="0.0950") | call("u3", covered_minutes=5, charge="0.0000")
     | {ACME + "pools": {"2026-01": {"DOMESTIC/US": 10}, "2026-02": {"DOMESTIC/US": 5}}}),
    ("month-in-utc", [assigned(ALICE, list(DOMESTIC)), cdr("u1", seconds=600),
                      cdr("u2", seconds=300, start="2026-02-01T00:30:00+01:00")],  # 2026-01-31T23:30Z
     call("u2", covered_minutes=0, charge="0.0950") | {ACME + "pools": {"2026-01": {"DOMESTIC/US": 10}}}),
    ("uncovered-call-leaves-no-pool-key", [assigned(ALICE, list(DOMESTIC)), cdr("u1", dest=GB_NUMBER)],
     {ACME + "pools": {}}),
]


@pytest.mark.parametrize("ops, expected",
                         [pytest.param(ops, expected, id=name) for name, ops, expected in POOL_SCENARIOS])
def test_s5_pool_capacity_and_usage(ops, expected):
    lines = [org_created(), user_added(), *legacy()[3:4], *ops]
    check(lines, expected, catalogue=SMALL)


@pytest.mark.parametrize("catalogue, line, pool, covered, charge", [
    # DOMESTIC table replaced by {"GB": 5}: US gets 0 (no "*"); 3 × 0.0190 = 0.0570
    ('{"minutes": {"DOMESTIC": {"GB": 5}}}', cdr("u1", seconds=180), "DOMESTIC/US", 0, "0.0570"),
    # …INTERNATIONAL keeps its default 600
    ('{"minutes": {"DOMESTIC": {"GB": 5}}}', cdr("u1", dest=GB_NUMBER, seconds=180), "INTERNATIONAL/US", 3,
     "0.0000"),
    # country entry beats "*"
    ('{"minutes": {"DOMESTIC": {"US": 2, "*": 100}}}', cdr("u1", seconds=180), "DOMESTIC/US", 2, "0.0190"),
    ('{"minutes": {"INTERNATIONAL": {"*": 0}}}', cdr("u1", dest=GB_NUMBER, seconds=180), "INTERNATIONAL/US", 0,
     "0.0690"),
])
def test_s5_custom_catalogue_replaces_a_kinds_table(catalogue, line, pool, covered, charge):
    # the pool is tried (and shown) even when its capacity is 0
    check([*legacy(*INTERNATIONAL), line], call(pool=pool, covered_minutes=covered, charge=charge),
          catalogue=catalogue)


@pytest.mark.parametrize("dest, pool, covered, charge", [
    (IN_NUMBER, "DIALOUT/US", 3, "0.0000"),       # IN now a dial-out country
    (US_NUMBER, None, 0, "0.0600"),               # US no longer one: 3 × 0.0200
])
def test_s5_custom_dial_out_countries(dest, pool, covered, charge):
    check([*legacy("E5"), cdr("u1", call_type="conf_out", dest=dest, seconds=180)],
          call(pool=pool, covered_minutes=covered, charge=charge),
          catalogue='{"dialout_countries": ["IN"]}')
