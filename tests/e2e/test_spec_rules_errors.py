"""SPEC §10 (call-detail records) and §11 (the `simulate` contract) as tables: CDR validation,
duplicates, the clock, line handling, counts, reference files and the error-code precedence.

Expected values are worked out by hand from the SPEC; the helpers and the common preambles
come from test_spec_rules.py.
"""

import pytest

from application.reference_data import ReferenceDataError, load_catalog, load_rate_card
from tests.e2e.test_spec_rules import (
    ACME,
    ALICE,
    ALICE_NUMBER,
    BASE,
    BOB,
    CARD,
    FR_NUMBER,
    GHOST,
    IN_NUMBER,
    JP_NUMBER,
    LEGACY,
    ORG,
    PAYG,
    RATES_HEADER,
    US_NUMBER,
    assert_accepted,
    assert_changes_nothing,
    assert_fields,
    assert_rejected_last,
    assigned,
    cdr,
    clock,
    configured,
    funds,
    inactive,
    legacy,
    load_text,
    nce,
    order,
    org_created,
    payment_updated,
    removed,
    run,
    user_added,
    without,
)

# === §10 Call-detail records ====================================================================

def test_s10_duplicate_usage_id_is_counted_and_applies_nothing():
    # u1: 10 min × 0.0190 = 0.1900; its repeat (even with other values) changes nothing
    report = run([*LEGACY, cdr("u1", seconds=600), cdr("u1", seconds=6000, dest=IN_NUMBER)])
    assert report["rejected"] == []
    assert report["counts"] == {"rated": 1, "duplicates": 1, "rejected": 0}
    assert_fields(report, {"calls.u1.billed_minutes": 10, "calls.u1.charge": "0.1900", ACME + "balance": "99.8100"})


def test_s10_usage_ids_are_unique_across_organizations():
    lines = [*LEGACY, org_created("beta"), user_added(org="beta"),
             assigned(ALICE, list(PAYG), org="beta"),
             cdr("u1", seconds=600), cdr("u1", org="beta", seconds=120)]
    report = run(lines)
    assert report["rejected"] == []
    assert report["counts"] == {"rated": 1, "duplicates": 1, "rejected": 0}
    # only acme's call rated: 10 min × 0.0190 = 0.1900
    assert_fields(report, {"calls.u1.charge": "0.1900", "organizations.beta.totals.uncollected": "0.0000"})


def test_s10_rejected_cdr_does_not_reserve_its_usage_id():
    report = run([*LEGACY, cdr("u1", dest="2065550123"), cdr("u1", user=GHOST), cdr("u1", seconds=120)])
    assert report["rejected"] == [{"line": 6, "code": "invalid_input"}, {"line": 7, "code": "unknown_user"}]
    # 2 min × 0.0190 = 0.0380
    assert report["counts"] == {"rated": 1, "duplicates": 0, "rejected": 2}
    assert_fields(report, {"calls.u1.charge": "0.0380", ACME + "balance": "99.9620"})


def test_s10_no_rate_does_not_reserve_its_usage_id():
    report = run([*LEGACY, cdr("u1", dest=JP_NUMBER), cdr("u1")])
    assert report["rejected"] == [{"line": 6, "code": "no_rate"}]
    assert_fields(report, {"calls.u1.charge": "0.0190"})


def test_s10_duplicate_moves_the_clock():
    # the duplicate ends 2026-03-01T10:01:00Z; funds dated earlier are added at that time
    report = assert_accepted([*LEGACY, cdr("u1"), cdr("u1", start="2026-03-01T10:00:00Z"),
                              funds("5", at="2026-02-01T00:00:00Z")])
    assert_fields(report, {ACME + "lots.1.added_at": "2026-03-01T10:01:00Z",
                           ACME + "lots.1.expires_at": "2027-03-01T10:01:00Z"})


def test_s10_duplicate_runs_the_expiry_step():
    # the order's lot (100) expires 2027-01-01T00:00:00Z; the duplicate ends after that
    report = assert_accepted([*LEGACY, cdr("u1"), cdr("u1", start="2027-01-05T10:00:00Z")])
    # 100 − 0.0190 = 99.9810 expired
    assert_fields(report, {ACME + "balance": "0.0000", ACME + "lots.0.expired": "99.9810", ACME + "depleted": 1})


@pytest.mark.parametrize("change", [
    {"end_time": "2026-01-10T09:59:59Z"},             # before start_time
    {"duration_seconds": -1},
    {"duration_seconds": 86401},
    {"duration_seconds": "60"},
    {"duration_seconds": 60.5},
    {"duration_seconds": True},
    {"duration_seconds": None},
    {"usage_id": ""},
    {"usage_id": "x" * 129},
    {"usage_id": "é" * 129},
    {"call_type": "user_outbound"},
    {"call_type": "USER_OUT"},
    {"call_type": "voicemail"},
    {"number_type": 5},
    {"call_id": 5},
    {"conference_id": ["c-1"]},
    {"start_time": "2026-01-10T10:00:00"},
    {"end_time": "2026-01-10 10:01:00"},
], ids=["end-before-start", "duration-negative", "duration-over-86400", "duration-string",
        "duration-fraction", "duration-bool", "duration-null", "usage-id-empty", "usage-id-129-chars",
        "usage-id-129-non-ascii-chars",
        "call-type-unknown", "call-type-upper", "call-type-other", "number-type-number", "call-id-number",
        "conference-id-list",
        "start-no-offset", "end-no-offset"])
def test_s10_bad_cdr_fields_are_invalid_input(change):
    assert_changes_nothing(LEGACY, cdr("u1") | change, "invalid_input")


@pytest.mark.parametrize("field", ["usage_id", "org", "call_type", "caller_number", "destination_number",
                                   "start_time", "end_time", "duration_seconds"])
def test_s10_missing_cdr_field_is_invalid_input(field):
    assert_changes_nothing(LEGACY, without(cdr("u1"), field), "invalid_input")


@pytest.mark.parametrize("change, minutes, charge", [
    ({"duration_seconds": 86400, "start_time": "2026-01-10T00:00:00Z", "end_time": "2026-01-11T00:00:00Z"},
     1440, "27.3600"),                                   # 1440 × 0.0190
    ({"usage_id": "x" * 128}, 1, "0.0190"),              # 128 chars is allowed
    ({"usage_id": "é" * 128}, 1, "0.0190"),              # characters, not bytes
    ({"end_time": "2026-01-10T10:00:00Z", "duration_seconds": 0}, 0, "0.0000"),   # end = start
    ({"foo": "bar", "at": "2026-01-10T10:01:00Z", "extra": {"nested": [1]}}, 1, "0.0190"),  # ignored
    ({"call_id": "c-1", "conference_id": "conf-1"}, 1, "0.0190"),
    ({"number_type": "geographic"}, 1, "0.0190"),
], ids=["duration-86400", "usage-id-128-chars", "usage-id-128-non-ascii", "end-equals-start", "unknown-fields-ignored",
        "call-and-conference-ids", "number-type-geographic"])
def test_s10_acceptable_cdr_variants(change, minutes, charge):
    line = cdr("u1") | change
    report = assert_accepted([*LEGACY, line])
    usage_id = line["usage_id"]
    assert report["calls"][usage_id]["billed_minutes"] == minutes
    assert report["calls"][usage_id]["charge"] == charge


# === §11 The simulate contract ==================================================================

def test_s11_clock_never_goes_backwards():
    # funds at March, then funds dated February: the second lot is dated March too
    report = assert_accepted([*LEGACY, funds("1", at="2026-03-01T00:00:00Z"), funds("2", at="2026-02-01T00:00:00Z")])
    assert_fields(report, {ACME + "lots.2.added_at": "2026-03-01T00:00:00Z",
                           ACME + "lots.2.expires_at": "2027-03-01T00:00:00Z"})


def test_s11_a_cdr_time_is_its_end_time():
    # call 2026-03-01T10:00:00Z .. 10:30:00Z; funds dated before it are added at its end
    report = assert_accepted([*LEGACY, cdr("u1", start="2026-03-01T10:00:00Z", seconds=1800),
                              funds("1", at="2026-03-01T10:10:00Z")])
    assert_fields(report, {ACME + "lots.1.added_at": "2026-03-01T10:30:00Z"})


@pytest.mark.parametrize("bad", [
    funds("1.00001", at="2027-06-01T00:00:00Z"),                  # invalid_input
    funds("1", at="2027-06-01T00:00:00Z", org="nowhere"),         # unknown_organization
    cdr("x", user=GHOST, start="2027-06-01T00:00:00Z"),           # unknown_user
    cdr("x", dest=JP_NUMBER, start="2027-06-01T00:00:00Z"),       # no_rate
    order("5", order_id="o-2", at="2027-06-01T00:00:00Z"),        # already_configured
], ids=["invalid-input", "unknown-org", "unknown-user", "no-rate", "already-configured"])
def test_s11_rejected_line_does_not_move_the_clock_nor_expire(bad):
    # the order's lot expires 2027-01-01; a rejected line dated after that expires nothing and
    # the next funds keep their own (earlier) time
    report = run([*LEGACY, bad, funds("1", at="2026-02-01T00:00:00Z")])
    assert len(report["rejected"]) == 1 and report["rejected"][0]["line"] == 6
    assert_fields(report, {ACME + "lots.0.expired": "0.0000", ACME + "balance": "101.0000",
                           ACME + "lots.1.added_at": "2026-02-01T00:00:00Z"})


def test_s11_blank_lines_count_for_line_numbers():
    lines = ["", org_created(), "", "", funds("5"), ""]
    report = run(lines)
    assert report["rejected"] == [{"line": 5, "code": "credits_not_active"}]


@pytest.mark.parametrize("raw", [
    b"\xff\xfe{}",
    b'{"type":"clock","at":"2026-02-01T00:00:00Z","note":"\xe9"}',   # Latin-1 byte: not UTF-8
    "not json",
    "{",
    '{"type":"clock","at":"2026-02-01T00:00:00Z"',
    "[1, 2]",
    '"clock"',
    "null",
    "42",
    '{"type":"clock","at":"2026-02-01T00:00:00Z"} {"type":"clock"}',
], ids=["bad-utf8", "latin1-byte", "text", "open-brace", "unterminated", "array", "string", "null",
        "number", "two-objects"])
def test_s11_undecodable_lines_are_invalid_input(raw):
    assert_changes_nothing(LEGACY, raw, "invalid_input")


@pytest.mark.parametrize("line", [
    {"type": "funds.removed", "at": "2026-02-01T00:00:00Z", "org": ORG, "amount": "5"},
    {"type": "CLOCK", "at": "2026-02-01T00:00:00Z"},
    {"type": 5, "at": "2026-02-01T00:00:00Z"},
    {"at": "2026-02-01T00:00:00Z", "org": ORG, "amount": "5"},
    without(funds("5"), "at"),
    {"type": "clock"},
    without(org_created("beta"), "at"),
    without(user_added(BOB), "usage_location"),
    without(funds("5"), "amount"),
    without(order(order_id="o-2"), "payment"),
    without(order(order_id="o-2"), "auto_recharge"),
    without(order(order_id="o-2"), "order"),
    without(assigned(ALICE, "E5"), "licences"),
    without(org_created("beta"), "currency"),
    without(payment_updated(CARD), "payment"),
    without(configured(True, "5", "1"), "enabled"),
], ids=["unknown-type", "type-upper", "type-number", "no-type", "no-at", "clock-no-at", "org-no-at",
        "user-no-location", "funds-no-amount", "order-no-payment", "order-no-settings", "order-no-id",
        "assign-no-licences", "org-no-currency", "payment-no-payment", "configure-no-enabled"])
def test_s11_missing_fields_and_unknown_types_are_invalid_input(line):
    assert_changes_nothing(LEGACY, line, "invalid_input")


def test_s11_counts_and_rejected_list():
    lines = [
        *LEGACY,                                        # 1–5
        cdr("u1"),                                      # 6 rated
        cdr("u1"),                                      # 7 duplicate
        "not json",                                     # 8 invalid_input (not a cdr)
        cdr("u2", user=GHOST),                          # 9 unknown_user (cdr)
        funds("0"),                                     # 10 invalid_input (command)
        cdr("u3", call_type="user_in", dest=ALICE_NUMBER, caller=US_NUMBER),   # 11 rated (free)
        cdr("u4", dest=JP_NUMBER),                      # 12 no_rate (cdr)
        "",                                             # 13 blank
        cdr("u5", seconds=0),                           # 14 rated
        order("1", order_id="o-2"),                     # 15 already_configured
    ]
    report = run(lines)
    assert report["counts"] == {"rated": 3, "duplicates": 1, "rejected": 2}
    assert report["rejected"] == [
        {"line": 8, "code": "invalid_input"}, {"line": 9, "code": "unknown_user"},
        {"line": 10, "code": "invalid_input"}, {"line": 12, "code": "no_rate"},
        {"line": 15, "code": "already_configured"},
    ]
    assert set(report["calls"]) == {"u1", "u3", "u5"}


def test_s11_report_shape_for_a_call():
    report = assert_accepted([*LEGACY, cdr("u1", seconds=420)])
    # 7 min × 0.0190 + 0 = 0.1330
    assert report["calls"]["u1"] == {
        "kind": "outbound", "billed_minutes": 7, "covered_minutes": 0, "pool": None, "charge": "0.1330",
        "debited": "0.1330", "uncollected": "0.0000", "overage": "0.0000", "reason": None,
    }
    assert set(report) == {"organizations", "calls", "counts", "rejected", "authorizations"}


# --- §11 error precedence: lines with two problems ---------------------------------------------

NCE_ORG = nce()
INACTIVE = inactive()
DECLINE = {"method": "card", "card": "decline-9", "expires": "2030-12"}
EXPIRED = {"method": "card", "card": "visa-9", "expires": "2025-12"}
UNKNOWN_EA = {"method": "enterprise_agreement", "agreement": "EA-404", "po": None}

PRECEDENCE = [
    # invalid_input beats every other code
    ("invalid-beats-unknown-org", [*LEGACY, funds("-1", org="nowhere")], "invalid_input"),
    ("invalid-beats-nce", [*NCE_ORG, funds("1.000001")], "invalid_input"),
    ("invalid-beats-credits-not-active", [*INACTIVE, funds("abc")], "invalid_input"),
    ("invalid-beats-already-configured", [*LEGACY, order("-5", order_id="o-2")], "invalid_input"),
    ("invalid-beats-duplicate-org", [*LEGACY, org_created(country="us")], "invalid_input"),
    ("invalid-beats-duplicate-user", [*LEGACY, user_added(loc="us")], "invalid_input"),
    ("invalid-beats-unknown-user", [*LEGACY, cdr("u9", user=GHOST, dest="12065550123")], "invalid_input"),
    ("invalid-beats-licence-code", [*LEGACY, assigned(ALICE, ["CALLING_PLAN_DOMESTIC", "BOGUS"])], "invalid_input"),
    ("invalid-beats-unknown-agreement", [*LEGACY, payment_updated(UNKNOWN_EA | {"po": 5})], "invalid_input"),
    ("invalid-beats-no-rate", [*LEGACY, cdr("u9", dest=JP_NUMBER, duration_seconds=-5)], "invalid_input"),
    ("invalid-beats-unknown-org-cdr", [*LEGACY, without(cdr("u9", org="nowhere"), "user")], "invalid_input"),
    ("invalid-beats-duplicate-cdr", [*LEGACY, cdr("u1"), cdr("u1", end="2026-01-10T09:00:00Z")], "invalid_input"),
    ("invalid-beats-repeated-request", [*LEGACY, funds("5", request_id="r-1"), funds("5", request_id="r-1",
                                                                                   at="2026-01-02")],
     "invalid_input"),
    # unknown_organization next
    ("unknown-org-beats-unknown-user", [*LEGACY, user_added(GHOST, org="nowhere"),
                                        ], "unknown_organization"),
    ("unknown-org-cdr-beats-unknown-user", [*LEGACY, cdr("u9", org="nowhere", user=GHOST)], "unknown_organization"),
    ("unknown-org-assign", [*LEGACY, assigned(GHOST, "CALLING_PLAN_DOMESTIC", org="nowhere")], "unknown_organization"),
    ("unknown-org-order", [*LEGACY, order(org="nowhere", payment=UNKNOWN_EA)], "unknown_organization"),
    # nce_not_eligible before credits_not_active and everything after it
    ("nce-beats-credits-not-active", [*NCE_ORG, funds("5")], "nce_not_eligible"),
    ("nce-beats-unknown-agreement", [*NCE_ORG, order(payment=UNKNOWN_EA)], "nce_not_eligible"),
    ("nce-beats-payment-declined", [*NCE_ORG, order(payment=DECLINE)], "nce_not_eligible"),
    ("nce-configure", [*NCE_ORG, configured(True, "5", "1")], "nce_not_eligible"),
    ("nce-payment-method", [*NCE_ORG, payment_updated(UNKNOWN_EA)], "nce_not_eligible"),
    ("nce-beats-licence-prerequisite", [*NCE_ORG, user_added(BOB), assigned(BOB, "COMMUNICATIONS_CREDITS")],
     "nce_not_eligible"),
    # credits_not_active before unknown_user / unknown_agreement / payment
    ("credits-not-active-funds", [*INACTIVE, funds("5")], "credits_not_active"),
    ("credits-not-active-configure", [*INACTIVE, configured(False)], "credits_not_active"),
    ("credits-not-active-beats-unknown-agreement", [*INACTIVE, payment_updated(UNKNOWN_EA)], "credits_not_active"),
    ("credits-not-active-beats-unknown-user", [*INACTIVE, assigned([GHOST, ALICE], "COMMUNICATIONS_CREDITS")],
     "credits_not_active"),
    # already_configured before unknown_agreement and payment_declined
    ("already-configured-beats-unknown-agreement", [*LEGACY, order(order_id="o-2", payment=UNKNOWN_EA)],
     "already_configured"),
    ("already-configured-beats-declined", [*LEGACY, order(order_id="o-2", payment=DECLINE)], "already_configured"),
    ("already-configured-beats-expired-card", [*LEGACY, order(order_id="o-2", payment=EXPIRED)], "already_configured"),
    # unknown_user before the licence codes and before a duplicate CDR and no_rate
    ("unknown-user-beats-duplicate-cdr", [*LEGACY, cdr("u1"), cdr("u1", user=GHOST)], "unknown_user"),
    ("unknown-user-beats-no-rate", [*LEGACY, cdr("u9", user=GHOST, dest=JP_NUMBER)], "unknown_user"),
    ("unknown-user-optional-user", [*LEGACY, cdr("u9", user=GHOST, call_type="ucap_out")], "unknown_user"),
    # unknown_agreement before payment_declined: an EA is never declined, so pair it with the
    # duplicate_user-free path of an order on a fresh organization
    ("unknown-agreement-order", [*INACTIVE, order(payment=UNKNOWN_EA)], "unknown_agreement"),
    ("unknown-agreement-payment-method", [*LEGACY, payment_updated(UNKNOWN_EA)], "unknown_agreement"),
    # licence codes before payment_declined, payment_declined before no_rate: no line can carry
    # both; payment_declined alone:
    ("payment-declined-order", [*INACTIVE, order(payment=DECLINE)], "payment_declined"),
    ("payment-declined-funds", [*legacy(funds="0", payment=DECLINE), funds("5")], "payment_declined"),
    ("no-rate", [*LEGACY, cdr("u9", dest=JP_NUMBER)], "no_rate"),
]


@pytest.mark.parametrize("lines, code", [pytest.param(lines, code, id=name) for name, lines, code in PRECEDENCE])
def test_s11_error_precedence(lines, code):
    assert_rejected_last(lines, code)


@pytest.mark.parametrize("lines, balance", [
    # a duplicate CDR is recognised before no_rate: accepted, counted as duplicate;
    # only the first u1 is charged: 100 − 1 min × 0.0190 = 99.9810
    pytest.param([*LEGACY, cdr("u1"), cdr("u1", dest=JP_NUMBER)], "99.9810", id="duplicate-before-no-rate"),
    # an order repeated with the same id is a no-op even with an unknown agreement / declined card
    pytest.param([*LEGACY, order(payment=UNKNOWN_EA)], "100.0000", id="same-order-id-before-unknown-agreement"),
    pytest.param([*LEGACY, order("7", payment=DECLINE)], "100.0000", id="same-order-id-before-declined"),
])
def test_s11_idempotent_repeats_win_over_later_codes(lines, balance):
    report = assert_accepted(lines)
    assert_fields(report, {ACME + "balance": balance, ACME + "lots.0.amount": "100.0000"})
    assert len(report["organizations"][ORG]["lots"]) == 1


@pytest.mark.parametrize("lines, code", [
    # bulk removal: alice does not hold E5 (licence_not_held), ghost is unknown: alice comes first
    pytest.param([*BASE, removed([ALICE, GHOST], "E5")], "licence_not_held", id="bulk-remove-not-held-first"),
    pytest.param([*BASE, removed([GHOST, ALICE], "E5")], "unknown_user", id="bulk-remove-unknown-first"),
    # a duplicate usage_id in an unknown organization: unknown_organization
    pytest.param([*LEGACY, cdr("u1"), cdr("u1", org="nowhere")], "unknown_organization", id="cdr-dup-unknown-org"),
])
def test_s11_more_precedence(lines, code):
    assert_rejected_last(lines, code)


def test_s11_every_organization_runs_its_expiry_step_on_any_accepted_line():
    # beta's lot (order at 2026-02-01, expires 2027-02-01) expires on a line that is about acme
    beta = [org_created("beta", at="2026-02-01T00:00:00Z"),
            order("7", org="beta", order_id="o-b", at="2026-02-01T00:00:00Z")]
    report = assert_accepted([*LEGACY, *beta, funds("1", at="2027-03-01T00:00:00Z")])
    assert_fields(report, {"organizations.beta.lots.0.expired": "7.0000", "organizations.beta.balance": "0.0000",
                           "organizations.beta.depleted": 1, ACME + "lots.0.expired": "100.0000",
                           ACME + "balance": "1.0000", ACME + "depleted": 1})


# --- §11 reference files: rates and catalogue that do not load -----------------------------------

GOOD_ROW = "1,outbound,0.0190,0,USD,2025-01-01T00:00:00Z"


@pytest.mark.parametrize("rows", [
    GOOD_ROW + "\n" + GOOD_ROW,                                    # same prefix, kind, currency, effective_from
    GOOD_ROW.replace("0.0190", "0.0200") + "\n" + GOOD_ROW,        # …even with another rate
    "1,mobile,0.0190,0,USD,2025-01-01T00:00:00Z",                  # unknown kind
    "1,Outbound,0.0190,0,USD,2025-01-01T00:00:00Z",
    "+1,outbound,0.0190,0,USD,2025-01-01T00:00:00Z",               # prefix not digits
    "1a,outbound,0.0190,0,USD,2025-01-01T00:00:00Z",
    ",outbound,0.0190,0,USD,2025-01-01T00:00:00Z",
    "1234567890123456,outbound,0.0190,0,USD,2025-01-01T00:00:00Z",  # 16 digits
    "1,outbound,-0.0190,0,USD,2025-01-01T00:00:00Z",               # amounts are money
    "1,outbound,0.01901,0,USD,2025-01-01T00:00:00Z",
    "1,outbound,1e-2,0,USD,2025-01-01T00:00:00Z",
    "1,outbound,NaN,0,USD,2025-01-01T00:00:00Z",
    "1,outbound,0.0190,-1,USD,2025-01-01T00:00:00Z",
    "1,outbound,0.0190,0,usd,2025-01-01T00:00:00Z",                # currency
    "1,outbound,0.0190,0,ABC,2025-01-01T00:00:00Z",
    "1,outbound,0.0190,0,USD,2025-01-01T00:00:00",                 # timestamp without offset
    "1,outbound,0.0190,0,USD,1999-01-01T00:00:00Z",
    "1,outbound,0.0190,0,USD",                                     # missing column
])
def test_s11_rate_card_that_does_not_load(rows):
    with pytest.raises(ReferenceDataError):
        load_text(load_rate_card, RATES_HEADER + rows + "\n", ".csv")


@pytest.mark.parametrize("rows", [
    GOOD_ROW + "\n" + GOOD_ROW.replace("2025-01-01", "2025-02-01"),   # same prefix, other effective_from
    GOOD_ROW + "\n" + GOOD_ROW.replace("outbound", "dialout"),        # other kind
    GOOD_ROW + "\n" + GOOD_ROW.replace("USD", "EUR"),                 # other currency
    "1,outbound,0,0,USD,2025-01-01T00:00:00Z",                        # amounts may be 0
    "123456789012345,tollfree,1000000,0.0001,USD,2025-01-01T00:00:00+02:00",
])
def test_s11_rate_card_that_loads(rows):
    load_text(load_rate_card, RATES_HEADER + rows + "\n", ".csv")


@pytest.mark.parametrize("text", [
    '{"minutes": {"DOMESTIC": {"us": 3000}}}',
    '{"minutes": {"DOMESTIC": {"XX": 3000}}}',
    '{"minutes": {"DOMESTIC": {"US": "3000"}}}',
    '{"minutes": {"DOMESTIC": {"US": 3000.5}}}',
    '{"minutes": {"DOMESTIC": {"US": -1}}}',
    '{"minutes": {"DOMESTIC": {"US": true}}}',
    '{"minutes": {"DOMESTIC": [3000]}}',
    '{"minutes": {"LOCAL": {"*": 1}}}',
    '{"minutes": []}',
    '{"dialout_countries": ["us"]}',
    '{"dialout_countries": "US"}',
    '{"dialout_countries": [1]}',
    '{"other": 1}',
    '[]',
    'not json',
])
def test_s11_catalogue_that_does_not_load(text):
    with pytest.raises(ReferenceDataError):
        load_text(load_catalog, text, ".json")


def test_s11_a_cdrs_own_at_field_is_ignored_its_time_is_end_time():
    # an "at" far in the future on a CDR neither moves the clock nor expires the order's lot
    report = assert_accepted([*LEGACY, cdr("u1", at="2027-06-01T00:00:00Z"), funds("1", at="2026-02-01T00:00:00Z")])
    assert_fields(report, {ACME + "lots.0.expired": "0.0000", ACME + "lots.1.added_at": "2026-02-01T00:00:00Z"})


def test_s11_late_cdr_is_rated_at_its_start_time_and_dated_at_the_clock():
    # clock at 2026-03-05; a CDR that started 2026-02-10 is rated with February's FR rate
    # (20 min × 0.0250 = 0.5000, not 0.0300) and its line time is the clock
    report = assert_accepted([*LEGACY, clock("2026-03-05T00:00:00Z"),
                              cdr("u1", dest=FR_NUMBER, start="2026-02-10T10:00:00Z", seconds=1200),
                              funds("1", at="2026-03-01T00:00:00Z")])
    assert_fields(report, {"calls.u1.charge": "0.5000", ACME + "lots.1.added_at": "2026-03-05T00:00:00Z"})
