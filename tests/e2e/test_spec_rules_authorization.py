"""SPEC §13 (call authorization) as tables: every rule of §13.1, the holds, repeats and the
fields' validation; §13.2's settlement, held pool minutes, release and expiry. Expected values
are worked out by hand from the SPEC (arithmetic in the comments); rates as in
test_spec_rules_calls (USD outbound 1: 0.0190, 447: 0.1500 + 0.0500 fee, JP: no row; tollfree
1: 0.0180; dialout 44: 0.0350).
"""

import pytest

from tests.e2e.test_spec_rules import (
    ALICE,
    ALICE_NUMBER,
    GB_NUMBER,
    JP_NUMBER,
    ORG,
    PAYG,
    TOLL_FREE,
    US_NUMBER,
    assert_accepted,
    assigned,
    auto,
    cdr,
    clock,
    inactive,
    legacy,
    nce,
    org_created,
    run,
    user_added,
)

AT = "2026-01-05T10:00:00Z"
GB_MOBILE = "+447400123456"
DOMESTIC = ("PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC")
SMALL = '{"minutes": {"DOMESTIC": {"*": 10}, "INTERNATIONAL": {"*": 5}, "DIALOUT": {"*": 10}}}'
DECLINING = {"method": "card", "card": "decline-1", "expires": "2030-12"}


def authorize(call_id="c1", *, at=AT, user=ALICE, call_type="user_out", dest=US_NUMBER, caller=ALICE_NUMBER,
              seconds=None, org=ORG, **extra):
    line = {"type": "call.authorize", "at": at, "org": org, "call_id": call_id, "call_type": call_type,
            "caller_number": caller, "destination_number": dest} | extra
    if user is not None:
        line["user"] = user
    if seconds is not None:
        line["requested_seconds"] = seconds
    return line


def released(call_id="c1", *, at="2026-01-05T10:30:00Z", org=ORG):
    return {"type": "call.released", "at": at, "org": org, "call_id": call_id}


def allowed(max_seconds, *, pool=None, minutes=0, amount="0.0000", expires, status="open"):
    return {"org": ORG, "decision": "allowed", "code": None, "max_seconds": max_seconds, "pool": pool,
            "held_minutes": minutes, "held_amount": amount, "status": status, "expires_at": expires}


def denied(code, *, pool=None):
    return {"org": ORG, "decision": "denied", "code": code, "max_seconds": 0, "pool": pool, "held_minutes": 0,
            "held_amount": "0.0000", "status": "denied", "expires_at": None}


# (name, lines, expected record of c1, options): each row one decision of §13.1
DECISIONS = [
    # rule 1: free kinds, whatever the payer; the default request is 14400 s
    ("inbound", [*inactive(), authorize(call_type="user_in", dest=ALICE_NUMBER, caller=US_NUMBER)],
     allowed(14400, expires="2026-01-05T15:00:00Z"), {}),
    ("emergency", [*inactive(), authorize(call_type="emergency_out", dest="911", seconds=600)],
     allowed(600, expires="2026-01-05T11:10:00Z"), {}),
    # rule 3: no rate; only the pool can pay
    ("no-rate-no-pool", [*legacy(), authorize(dest=JP_NUMBER)], denied("no_rate"), {}),
    ("no-rate-pool-pays", [*legacy(*DOMESTIC), authorize(seconds=3600)],  # SMALL: 10 min → 600 s
     allowed(600, pool="DOMESTIC/US", minutes=10, expires="2026-01-05T11:10:00Z"),
     {"rates": "44,outbound,0.0230,0,USD,2025-01-01T00:00:00Z", "catalogue": SMALL}),
    # rule 4: a zero rate and fee costs nothing, even with no funds
    ("free-rate", [*legacy(funds="0"), authorize(seconds=600)], allowed(600, expires="2026-01-05T11:10:00Z"),
     {"rates": "1,outbound,0,0,USD,2025-01-01T00:00:00Z"}),
    # rule 5: blocked payers; only the pool can pay
    ("credits-not-active", [*inactive(), authorize()], denied("credits_not_active"), {}),
    ("credits-not-active-pool", [*inactive(*DOMESTIC), authorize(seconds=600)],
     allowed(600, pool="DOMESTIC/US", minutes=10, expires="2026-01-05T11:10:00Z"), {}),
    ("credits-not-active-pool-small", [*inactive(*DOMESTIC), authorize(seconds=3600)],
     allowed(600, pool="DOMESTIC/US", minutes=10, expires="2026-01-05T11:10:00Z"), {"catalogue": SMALL}),
    ("no-credits-licence", [*legacy(credits_licence=False), authorize()], denied("no_credits_licence"), {}),
    ("app-outbound-inactive", [*inactive(), authorize(user=None, call_type="ucap_out")],
     denied("credits_not_active"), {}),
    ("tollfree-inactive", [*inactive(), authorize(call_type="user_in", number_type="toll_free", dest=TOLL_FREE,
                                                  caller=US_NUMBER)], denied("credits_not_active"), {}),
    # app outbound needs no user licence: credits pay (600 s → 10 min × 0.0190 = 0.1900)
    ("app-outbound-no-licence", [*legacy(credits_licence=False), authorize(user=None, call_type="ucap_out",
                                                                           seconds=600)],
     allowed(600, amount="0.1900", expires="2026-01-05T11:10:00Z"), {}),
    # rule 6: NCE is never blocked
    ("nce", [*nce(), authorize(seconds=7200)], {**allowed(7200, expires="2026-01-05T13:00:00Z")}, {}),
    ("nce-pool", [*nce(*DOMESTIC), authorize(seconds=600)],
     allowed(600, pool="DOMESTIC/US", minutes=10, expires="2026-01-05T11:10:00Z"), {}),
    # rule 7 without auto-recharge: F = 1 → floor(1 / 0.0190) = 52 min = 3120 s, 52 × 0.0190 = 0.9880
    ("funds-bound", [*legacy(funds="1"), authorize()], allowed(3120, amount="0.9880",
                                                                expires="2026-01-05T11:52:00Z"), {}),
    # with a fee: floor((1 − 0.05) / 0.15) = 6 min; 6 × 0.15 + 0.05 = 0.9500
    ("fee", [*legacy(funds="1"), authorize(dest=GB_MOBILE)], allowed(360, amount="0.9500",
                                                                    expires="2026-01-05T11:06:00Z"), {}),
    ("fee-above-funds", [*legacy(funds="0.04"), authorize(dest=GB_MOBILE)], denied("insufficient_funds"), {}),
    ("no-funds", [*legacy(funds="0"), authorize()], denied("insufficient_funds"), {}),
    # a zero rate with a fee: unlimited once the fee is covered; holds the fee
    ("fee-only", [*legacy(funds="1"), authorize(seconds=600)], allowed(600, amount="0.1000",
                                                                      expires="2026-01-05T11:10:00Z"),
     {"rates": "1,outbound,0,0.10,USD,2025-01-01T00:00:00Z"}),
    # pool and money: P = 10, paid_max = 52 → (10 + 52) × 60 = 3720 s; 10 min held, 52 × 0.0190 = 0.9880
    ("pool-and-money", [*legacy(*DOMESTIC, funds="1"), authorize()],
     allowed(3720, pool="DOMESTIC/US", minutes=10, amount="0.9880", expires="2026-01-05T12:02:00Z"),
     {"catalogue": SMALL}),
    # rule 7 under auto-recharge: the whole request; money held = min(F, 240 × 0.0190 = 4.56) = 1
    ("auto-recharge", [*legacy(funds="1", auto_recharge=auto("10", "0")), authorize()],
     allowed(14400, amount="1.0000", expires="2026-01-05T15:00:00Z"), {}),
    # a suspended auto-recharge (the recharge for u1 was declined) does not pay: F = 0
    ("auto-recharge-suspended", [*legacy(funds="0", auto_recharge=auto("10", "5"), payment=DECLINING),
                                 cdr("u1", start="2026-01-05T09:00:00Z"), authorize()],
     denied("insufficient_funds"), {}),
]


@pytest.mark.parametrize("name, lines, expected, options", DECISIONS, ids=[row[0] for row in DECISIONS])
def test_s13_1_decisions(name, lines, expected, options):
    report = assert_accepted(lines, **options)
    assert report["authorizations"]["c1"] == expected
    held = expected["held_amount"] if expected["decision"] == "allowed" else "0.0000"
    assert report["organizations"][ORG]["held"] == held


def test_s13_1_holds_bound_later_decisions():
    # funds 1: c1 600 s holds 0.1900; F = 0.8100 → floor(0.81 / 0.019) = 42 min (0.7980); F = 0.012 < 0.019
    report = assert_accepted([*legacy(funds="1"), authorize("c1", seconds=600), authorize("c2"), authorize("c3")])
    auths = report["authorizations"]
    assert (auths["c1"]["held_amount"], auths["c2"]["max_seconds"], auths["c2"]["held_amount"]) == (
        "0.1900", 2520, "0.7980")
    assert auths["c3"] == denied("insufficient_funds")
    assert report["organizations"][ORG]["held"] == "0.9880"


def test_s13_1_held_pool_minutes_bound_later_decisions():
    # SMALL: 10 domestic minutes, no funds: c1 holds 5, c2 gets the other 5, c3 nothing
    lines = [*legacy(*DOMESTIC, funds="0"), authorize("c1", seconds=300), authorize("c2", seconds=600),
             authorize("c3", seconds=60)]
    auths = assert_accepted(lines, catalogue=SMALL)["authorizations"]
    assert [(auths[c]["max_seconds"], auths[c]["held_minutes"]) for c in ("c1", "c2")] == [(300, 5), (300, 5)]
    assert auths["c3"] == denied("insufficient_funds", pool="DOMESTIC/US")


def test_s13_1_a_repeat_records_nothing_and_the_first_decision_stands():
    lines = [*legacy(funds="1"), org_created("other"), user_added(ALICE, org="other"),
             authorize("c1", seconds=60), authorize("c1", seconds=600),
             authorize("c1", org="other", at="2026-01-05T10:01:00Z"), released("c1"), authorize("c1", seconds=6000)]
    report = assert_accepted(lines)
    assert list(report["authorizations"]) == ["c1"]
    assert report["authorizations"]["c1"] == allowed(60, amount="0.0190", expires="2026-01-05T11:01:00Z",
                                                     status="released")


@pytest.mark.parametrize("seconds, accepted", [
    (1, True), (86400, True), (None, True), (0, False), (86401, False), (-60, False), ("60", False), (60.0, False),
    (6e1, False), (True, False), ([60], False),
])
def test_s13_1_requested_seconds(seconds, accepted):
    line = authorize() | {"requested_seconds": seconds}
    report = run([*legacy(), line])
    if accepted:
        assert report["rejected"] == [] and report["authorizations"]["c1"]["max_seconds"] == (seconds or 14400)
    else:
        assert report["rejected"] == [{"line": len(legacy()) + 1, "code": "invalid_input"}]


@pytest.mark.parametrize("change, code", [
    ({"call_id": ""}, "invalid_input"), ({"call_id": 7}, "invalid_input"), ({"org": None}, "invalid_input"),
    ({"destination_number": "12065550123"}, "invalid_input"), ({"call_type": "telepathy"}, "invalid_input"),
    ({"at": "2026-01-05T10:00:00"}, "invalid_input"), ({"user": None}, "invalid_input"),  # user_out needs one
    ({"org": "nowhere"}, "unknown_organization"), ({"user": "ghost@acme.com"}, "unknown_user"),
    ({"org": "nowhere", "call_id": ""}, "invalid_input"), ({"org": "nowhere", "user": "ghost@x"}, "unknown_organization"),
])
def test_s13_1_rejected_lines_decide_nothing_and_move_no_clock(change, code):
    line = {key: value for key, value in (authorize(at="2027-06-01T00:00:00Z") | change).items() if value is not None}
    report = run([*legacy(), line, authorize("c2")])
    assert report["rejected"] == [{"line": len(legacy()) + 1, "code": code}]
    assert list(report["authorizations"]) == ["c2"]
    assert report["authorizations"]["c2"]["expires_at"] == "2026-01-05T15:00:00Z"  # decided at AT, not in 2027


def test_s13_1_other_fields_are_ignored():
    report = assert_accepted([*legacy(), authorize(usage_id=[1], duration_seconds="x", start_time=None)])
    assert report["authorizations"]["c1"]["decision"] == "allowed"


# ----- §13.2 -------------------------------------------------------------------------------------

@pytest.mark.parametrize("settling_cdr", [
    cdr("u1", start="2026-01-05T10:00:05Z", seconds=120, call_id="c1"),
    cdr("u1", start="2026-01-05T10:00:05Z", seconds=0, call_id="c1"),  # a 0-second CDR settles too
    cdr("u1", call_type="user_in", dest=ALICE_NUMBER, caller=US_NUMBER, start="2026-01-05T10:00:05Z", call_id="c1"),
])
def test_s13_2_the_cdr_settles_its_reservation_whatever_its_kind(settling_cdr):
    report = assert_accepted([*legacy(), authorize(seconds=600), settling_cdr])
    assert report["authorizations"]["c1"]["status"] == "settled"
    assert report["authorizations"]["c1"]["held_amount"] == "0.1900"  # kept after the end
    assert report["organizations"][ORG]["held"] == "0.0000"


@pytest.mark.parametrize("name, later", [
    ("duplicate", [cdr("u1", start="2026-01-05T09:00:00Z"), cdr("u1", start="2026-01-05T09:00:00Z", call_id="c1")]),
    ("rejected", [cdr("u2", dest=JP_NUMBER, call_id="c1")]),
    ("another-call", [cdr("u3", start="2026-01-05T10:00:05Z", call_id="c9")]),
])
def test_s13_2_a_duplicate_or_rejected_cdr_settles_nothing(name, later):
    report = run([*legacy(), authorize(seconds=600), *later])
    assert report["authorizations"]["c1"]["status"] == "open"
    assert report["organizations"][ORG]["held"] == "0.1900"


def test_s13_2_a_cdr_does_not_settle_another_organizations_reservation():
    lines = [*legacy(), org_created("other"), user_added(ALICE, org="other"), assigned(ALICE, list(PAYG), org="other"),
             authorize("c1", seconds=600), cdr("u1", org="other", start="2026-01-05T10:00:05Z", call_id="c1")]
    report = assert_accepted(lines)
    assert report["authorizations"]["c1"]["status"] == "open"


def test_s13_2_a_call_does_not_take_minutes_held_for_another():
    # SMALL: 10 minutes; c1 holds all 10. u1 (no call_id, 5 min) finds 0 left: 5 × 0.0190 = 0.0950.
    # u2 settles c1 first, then finds the 10 minutes (less none used) and covers its 5.
    lines = [*legacy(*DOMESTIC), authorize("c1", seconds=600),
             cdr("u1", start="2026-01-05T10:01:00Z", seconds=300),
             cdr("u2", start="2026-01-05T10:02:00Z", seconds=300, call_id="c1")]
    report = assert_accepted(lines, catalogue=SMALL)
    assert (report["calls"]["u1"]["covered_minutes"], report["calls"]["u1"]["charge"]) == (0, "0.0950")
    assert (report["calls"]["u2"]["covered_minutes"], report["calls"]["u2"]["charge"]) == (5, "0.0000")


def test_s13_2_minutes_held_in_one_month_do_not_limit_the_next():
    # c1 holds January's 10 minutes (and money for 10 more) until 00:20; u1 in February takes 10
    lines = [*legacy(*DOMESTIC), authorize("c1", at="2026-01-31T23:00:00Z", seconds=1200),
             cdr("u1", start="2026-02-01T00:00:00Z", seconds=600)]
    report = assert_accepted(lines, catalogue=SMALL)
    assert report["calls"]["u1"]["covered_minutes"] == 10
    assert report["authorizations"]["c1"]["status"] == "open"


def test_s13_2_release():
    lines = [*legacy(), authorize("c1", seconds=600), authorize("c2", seconds=600), authorize("c3", dest=JP_NUMBER),
             released("c1"), released("c1"), cdr("u1", start="2026-01-05T10:00:05Z", call_id="c2"),
             released("c2"), released("c3")]
    report = assert_accepted(lines)
    statuses = {call_id: record["status"] for call_id, record in report["authorizations"].items()}
    assert statuses == {"c1": "released", "c2": "settled", "c3": "denied"}
    assert report["organizations"][ORG]["held"] == "0.0000"


@pytest.mark.parametrize("line", [released("never"), released("c1", org="other")])
def test_s13_2_releasing_what_the_organization_never_decided_is_unknown_authorization(line):
    lines = [*legacy(), org_created("other"), authorize("c1"), line]
    assert run(lines)["rejected"] == [{"line": len(lines), "code": "unknown_authorization"}]


def test_s13_2_expiry_keeps_full_precision():
    # decided at 09:00:00.6 for 60 s: expires at 10:01:00.6, shown as 10:01:00
    lines = [*legacy(), authorize("c1", at="2026-01-05T09:00:00.6Z", seconds=60), clock("2026-01-05T10:01:00Z")]
    report = assert_accepted(lines)
    assert report["authorizations"]["c1"]["expires_at"] == "2026-01-05T10:01:00Z"
    assert report["authorizations"]["c1"]["status"] == "open"
    later = assert_accepted([*lines, clock("2026-01-05T10:01:01Z")])
    assert later["authorizations"]["c1"]["status"] == "expired"
    assert later["organizations"][ORG]["held"] == "0.0000"


def test_s13_2_a_cdr_after_its_reservation_expired_settles_nothing():
    lines = [*legacy(), authorize("c1", seconds=60), cdr("u1", start="2026-01-05T11:00:30Z", seconds=60, call_id="c1")]
    report = assert_accepted(lines)
    assert report["authorizations"]["c1"]["status"] == "expired"
    assert report["calls"]["u1"]["charge"] == "0.0190"


def test_s13_held_amounts_change_no_balance_total_or_pool():
    plain = assert_accepted([*legacy(*DOMESTIC), clock(AT)])["organizations"][ORG]
    holding = assert_accepted([*legacy(*DOMESTIC), authorize("c1"), authorize("c2", dest=GB_NUMBER)])
    holding = holding["organizations"][ORG]
    assert holding["held"] == "5.5200"  # c1: 240 pool minutes; c2: 240 × 0.0230 to the UK
    assert {key: value for key, value in holding.items() if key != "held"} == {
        key: value for key, value in plain.items() if key != "held"}
