"""SPEC §2, §3, §4, §10, §11 as tables: each row is a short scenario and its expected outcome.

Every expected value is worked out by hand from /work/shared/SPEC.md (the arithmetic is in the
comments); none was copied from the engine's output. The helpers here (line builders, `run`,
`pick`) are shared with test_spec_rules_calls.py and test_spec_rules_credits.py.

Unless a row says otherwise: organization `acme` (US, USD, legacy, agreement EA-1) created at
2026-01-01T00:00:00Z, user alice@acme.com in US, the rate card of the SPEC examples
(tests/fixtures/spec-examples/rates.csv), the default catalogue.
"""

import os
import re
import tempfile
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest

from application.billing_application import BillingApplication
from application.inputs import command_from_document, decode_json_object
from application.reference_data import load_catalog, load_rate_card
from application.settings import memory_store
from commcredits.simulate import Simulation
from domain.errors import DomainError
from tests.support import SPEC_RATES, simulate_commands

ORG = "acme"
ALICE = "alice@acme.com"
BOB = "bob@acme.com"
CAROL = "carol@acme.com"
GHOST = "ghost@acme.com"
T0 = "2026-01-01T00:00:00Z"
CARD = {"method": "card", "card": "visa-1", "expires": "2030-12"}
EA = {"method": "enterprise_agreement", "agreement": "EA-1", "po": None}
OFF = {"enabled": False}
US_NUMBER = "+12065550123"      # US (prefix 1: outbound 0.0190, dialout 0.0200, tollfree 0.0180)
ALICE_NUMBER = "+14255550100"
GB_NUMBER = "+442071234567"     # GB (prefix 44: outbound 0.0230, dialout 0.0350, tollfree 0.0400)
IN_NUMBER = "+919812345678"     # IN (prefix 91: outbound 0.0900, dialout 0.1200)
JP_NUMBER = "+819012345678"     # JP: no USD row at all
FR_NUMBER = "+33142685300"      # FR (prefix 33: outbound 0.0250, from 2026-03-01 0.0300)
TOLL_FREE = "+18005550199"
ACME = f"organizations.{ORG}."     # prefix of an organization's fields in `pick` paths
AMOUNT = re.compile(r"^\d+\.\d{4}$")
RATES_HEADER = "prefix,kind,rate_per_minute,connection_fee,currency,effective_from\n"


# --- line builders -----------------------------------------------------------------------------

def org_created(org=ORG, *, country="US", currency="USD", commerce="legacy", agreements=("EA-1",),
                at=T0, **extra):
    line = {"type": "organization.created", "at": at, "org": org, "name": org.title(),
            "country": country, "currency": currency, "commerce": commerce}
    if agreements is not None:
        line["agreements"] = list(agreements)
    return line | extra


def user_added(user=ALICE, *, loc="US", org=ORG, at=T0, **extra):
    return {"type": "user.added", "at": at, "org": org, "user": user, "usage_location": loc} | extra


def _licence_line(kind, users, licences, org, at, extra):
    users = [users] if isinstance(users, str) else list(users)
    licences = [licences] if isinstance(licences, str) else list(licences)
    return {"type": f"licences.{kind}", "at": at, "org": org, "users": users, "licences": licences} | extra


def assigned(users, licences, *, org=ORG, at=T0, **extra):
    return _licence_line("assigned", users, licences, org, at, extra)


def removed(users, licences, *, org=ORG, at=T0, **extra):
    return _licence_line("removed", users, licences, org, at, extra)


def auto(recharge, trigger):
    return {"enabled": True, "recharge_amount": recharge, "trigger_amount": trigger}


def order(funds="100", *, auto_recharge=OFF, payment=CARD, order_id="o-1", org=ORG, at=T0, **extra):
    return {"type": "order.placed", "at": at, "org": org, "order": order_id, "funds": funds,
            "auto_recharge": auto_recharge, "payment": payment} | extra


def funds(amount, *, at="2026-01-02T00:00:00Z", org=ORG, request_id=None, **extra):
    line = {"type": "funds.added", "at": at, "org": org, "amount": amount}
    if request_id is not None:
        line["request_id"] = request_id
    return line | extra


def configured(enabled=True, recharge=None, trigger=None, *, at="2026-01-02T00:00:00Z", org=ORG, **extra):
    line = {"type": "auto_recharge.configured", "at": at, "org": org, "enabled": enabled}
    if recharge is not None:
        line["recharge_amount"] = recharge
    if trigger is not None:
        line["trigger_amount"] = trigger
    return line | extra


def payment_updated(payment, *, at="2026-01-02T00:00:00Z", org=ORG, **extra):
    return {"type": "payment_method.updated", "at": at, "org": org, "payment": payment} | extra


def clock(at):
    return {"type": "clock", "at": at}


def cdr(usage_id, *, user=ALICE, call_type="user_out", dest=US_NUMBER, caller=ALICE_NUMBER,
        start="2026-01-10T10:00:00Z", seconds=60, end=None, org=ORG, **extra):
    """A CDR; `end_time` is `start + seconds` unless given. `user=None` leaves the field out."""
    if end is None:
        end = (datetime.fromisoformat(start) + timedelta(seconds=seconds)
               ).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = {"type": "cdr", "usage_id": usage_id, "org": org, "call_type": call_type,
            "caller_number": caller, "destination_number": dest, "start_time": start,
            "end_time": end, "duration_seconds": seconds}
    if user is not None:
        line["user"] = user
    return line | extra


def without(line, *fields):
    return {key: value for key, value in line.items() if key not in fields}


# --- preambles ---------------------------------------------------------------------------------

PAYG = ("PHONE_SYSTEM", "CALLING_PLAN_PAYG")     # a calling plan with no included minutes


def legacy(*licences, funds="100", auto_recharge=OFF, payment=CARD, credits_licence=True,
           users=(ALICE,), loc="US", country="US", currency="USD"):
    """Legacy organization with an order placed at T0 and the users holding `licences`
    (default PAYG: no pool) and, unless `credits_licence=False`, COMMUNICATIONS_CREDITS."""
    licences = licences or PAYG
    lines = [org_created(country=country, currency=currency)]
    lines += [user_added(user, loc=loc) for user in users]
    lines.append(assigned(list(users), list(licences)))
    lines.append(order(funds, auto_recharge=auto_recharge, payment=payment))
    if credits_licence:
        lines.append(assigned(list(users), "COMMUNICATIONS_CREDITS"))
    return lines


def inactive(*licences, users=(ALICE,), loc="US"):
    """Legacy organization that never placed an order: credits not active."""
    licences = licences or PAYG
    return [org_created(), *[user_added(user, loc=loc) for user in users], assigned(list(users), list(licences))]


def nce(*licences, users=(ALICE,), loc="US", country="US", currency="USD"):
    licences = licences or PAYG
    return [org_created(country=country, currency=currency, commerce="nce"),
            *[user_added(user, loc=loc) for user in users], assigned(list(users), list(licences))]


# --- running and reading -----------------------------------------------------------------------

@cache
def rate_card(rows: str):
    """A rate card from CSV rows (no header)."""
    return load_text(load_rate_card, RATES_HEADER + rows.strip() + "\n", ".csv")


@cache
def catalog(text: str):
    return load_text(load_catalog, text, ".json")


def load_text(loader, text: str, suffix: str):
    """`loader` applied to a temporary file holding `text` (removed afterwards)."""
    handle, name = tempfile.mkstemp(suffix=suffix, prefix="spec-rules-")
    with os.fdopen(handle, "w") as file:
        file.write(text)
    try:
        return loader(Path(name))
    finally:
        os.unlink(name)


def run(lines: Iterable[Any], *, rates: str | None = None, catalogue: str | None = None) -> dict:
    """The §11 report of `lines`, after checking the invariants every report must satisfy."""
    report = simulate_commands(list(lines), rate_card=rate_card(rates) if rates else SPEC_RATES,
                               catalog=catalog(catalogue) if catalogue else None)
    check_invariants(report)
    return report


def check_invariants(report: dict) -> None:
    for usage_id, call in report["calls"].items():
        for key in ("charge", "debited", "uncollected", "overage"):
            assert AMOUNT.match(call[key]), (usage_id, key, call[key])
        # §11: charge = debited + uncollected + overage for every call
        assert Decimal(call["charge"]) == (Decimal(call["debited"]) + Decimal(call["uncollected"])
                                           + Decimal(call["overage"])), usage_id
    for org, summary in report["organizations"].items():
        totals = summary["totals"]
        for key, value in [*totals.items(), ("balance", summary["balance"])]:
            assert AMOUNT.match(value), (org, key, value)
        # §11: balance = funds_added − charged − expired always; never negative (§7)
        assert Decimal(summary["balance"]) == (Decimal(totals["funds_added"]) - Decimal(totals["charged"])
                                               - Decimal(totals["expired"])), org
        assert Decimal(summary["balance"]) >= 0, org
        assert sum(Decimal(lot["amount"]) for lot in summary["lots"]) == Decimal(totals["funds_added"])
        recharges = summary["recharges"]
        assert recharges["triggered"] == recharges["succeeded"] + recharges["failed"], org


def pick(report: dict, path: str) -> Any:
    """`report` at a dotted path: "calls.u1.charge", "organizations.acme.lots.0.expires_at"."""
    value: Any = report
    for key in path.split("."):
        value = value[int(key)] if isinstance(value, list) else value[key]
    return value


def assert_fields(report: dict, expected: dict[str, Any]) -> None:
    actual = {path: pick(report, path) for path in expected}
    assert actual == expected


def assert_rejected_last(lines: list, code: str, *, rates=None, catalogue=None) -> dict:
    """The last line, and only it, is rejected with `code`."""
    report = run(lines, rates=rates, catalogue=catalogue)
    assert report["rejected"] == [{"line": len(lines), "code": code}]
    return report


def assert_accepted(lines: list, **options) -> dict:
    report = run(lines, **options)
    assert report["rejected"] == []
    return report


def assert_changes_nothing(preamble: list, bad_line: Any, code: str, **options) -> None:
    """`bad_line` is rejected with `code` and the report is as if it had not been there."""
    before = run(preamble, **options)
    after = assert_rejected_last([*preamble, bad_line], code, **options)
    is_cdr = isinstance(bad_line, dict) and bad_line.get("type") == "cdr"
    assert after["counts"] == before["counts"] | {"rejected": before["counts"]["rejected"] + is_cdr}
    assert {key: after[key] for key in ("organizations", "calls")} == \
        {key: before[key] for key in ("organizations", "calls")}


def error_of(lines: list) -> DomainError:
    """The domain error of the last line (for its message), after applying the others."""
    app = BillingApplication(env=memory_store().env)
    simulation = Simulation(app, SPEC_RATES, load_catalog(None))
    *preamble, last = lines
    simulation.run(line if isinstance(line, bytes) else orjson.dumps(line) for line in preamble)
    assert simulation.log.rejected == []
    with pytest.raises(DomainError) as caught:
        simulation.service.handle(command_from_document(decode_json_object(orjson.dumps(last))))
    return caught.value


# === §2 Values ==================================================================================

LEGACY = legacy()   # 5 lines, balance 100.0000

BAD_MONEY = ["1.23456", ".5", "5.", "+5", "-5", "1e2", "1E2", "NaN", "nan", "Infinity", "-Infinity",
             "inf", "0", "0.0000", "1000000.0001", "1000001", "", " 5", "5 ", "1,5", "0x10", "5 USD"]


@pytest.mark.parametrize("amount", BAD_MONEY + [5, 5.5, None, ["5"], {"value": "5"}, True],
                         ids=lambda value: repr(value))
def test_s2_bad_money_is_invalid_input_and_changes_nothing(amount):
    assert_changes_nothing(LEGACY, funds(amount), "invalid_input")


@pytest.mark.parametrize("amount, balance, lot_amount", [
    ("12.5", "112.5000", "12.5000"),              # 100 + 12.5; written with 4 decimals
    ("0.0001", "100.0001", "0.0001"),             # smallest positive amount
    ("3.14", "103.1400", "3.1400"),
    ("1000000", "1000100.0000", "1000000.0000"),  # <= 1000000 allowed
    ("1000000.0000", "1000100.0000", "1000000.0000"),
    ("7", "107.0000", "7.0000"),
])
def test_s2_good_money_is_exact_and_written_with_4_decimals(amount, balance, lot_amount):
    report = assert_accepted([*LEGACY, funds(amount)])
    assert_fields(report, {ACME + "balance": balance, ACME + "lots.1.amount": lot_amount,
                           ACME + "lots.1.remaining": lot_amount})


def test_s2_decimal_arithmetic_is_exact():
    # 0.1 + 0.2 (binary floats would give 0.30000000000000004); order of 0.1 then funds 0.2
    report = assert_accepted(legacy(funds="0.1") + [funds("0.2")])
    assert_fields(report, {ACME + "balance": "0.3000", ACME + "totals.funds_added": "0.3000"})


@pytest.mark.parametrize("at", [
    "2026-02-01T00:00:00",            # no offset
    "2026-02-01",                     # a date, no time, no offset
    "2026-02-01 00:00:00",            # no offset
    "1999-12-31T23:59:59Z",           # year before 2000
    "2200-01-01T00:00:00Z",           # year after 2199
    "2026-02-30T00:00:00Z",           # no such day
    "2026-02-01T24:30:00Z",
    "yesterday",
    "",
    1769904000,                       # a number, not a string
    None,
], ids=repr)
def test_s2_bad_timestamp_is_invalid_input(at):
    assert_changes_nothing(LEGACY, funds("5", at=at), "invalid_input")


@pytest.mark.parametrize("at, added_at, expires_at", [
    ("2026-02-01T01:30:00+01:30", "2026-02-01T00:00:00Z", "2027-02-01T00:00:00Z"),   # −1:30
    ("2026-02-01T00:30:00-02:00", "2026-02-01T02:30:00Z", "2027-02-01T02:30:00Z"),   # +2:00
    ("2026-03-01T05:00:00+14:00", "2026-02-28T15:00:00Z", "2027-02-28T15:00:00Z"),   # previous day
    ("2026-02-01T00:00:00.25Z", "2026-02-01T00:00:00Z", "2027-02-01T00:00:00Z"),     # fraction
    ("2026-02-01T10:00:00+00:00", "2026-02-01T10:00:00Z", "2027-02-01T10:00:00Z"),
], ids=["plus-01:30", "minus-02:00", "plus-14:00-previous-day", "fractional", "plus-00:00"])
def test_s2_timestamps_are_normalised_to_utc(at, added_at, expires_at):
    report = assert_accepted([*LEGACY, funds("5", at=at)])
    assert_fields(report, {ACME + "lots.1.added_at": added_at, ACME + "lots.1.expires_at": expires_at})


def test_s2_years_2000_to_2199_are_in_range():
    # an organization created in 2000 and one whose clock line is in 2199
    report = assert_accepted([org_created(at="2000-01-01T00:00:00Z"), clock("2199-12-31T00:00:00Z")])
    assert report["organizations"][ORG]["credits_active"] is False


@pytest.mark.parametrize("line", [
    org_created("beta", country="us"),
    org_created("beta", currency="usd"),
    org_created("beta", country="Us"),
    org_created("beta", country="USA"),          # alpha-3
    org_created("beta", country="XX"),           # not a country
    org_created("beta", currency="ABC"),         # not a currency
    org_created("beta", currency="US$"),
    org_created("beta", commerce="LEGACY"),
    org_created("beta", commerce="enterprise"),
    org_created("beta") | {"agreements": "EA-1"},   # a string, not a list
    org_created("beta", agreements=[1]),
    org_created("beta", name=7),
    user_added(BOB, loc="us"),
    user_added(BOB, loc="ZZ"),
    user_added(BOB, loc=840),
], ids=["country-lower", "currency-lower", "country-mixed", "country-alpha3", "country-unknown",
        "currency-unknown", "currency-symbol", "commerce-upper", "commerce-other", "agreements-string",
        "agreements-number", "name-number", "usage-location-lower", "usage-location-unknown",
        "usage-location-number"])
def test_s2_codes_must_be_upper_case_iso(line):
    assert_changes_nothing(LEGACY, line, "invalid_input")


@pytest.mark.parametrize("line", [
    funds("5", org=5),
    funds("5", org=""),
    funds("5", org=["acme"]),
    funds("5", org={"id": "acme"}),
    funds("5", org=None),
    funds("5", request_id=9),
    funds("5", request_id=""),
    user_added(7),
    user_added(""),
    assigned([ALICE, 3], "E5"),
    assigned(ALICE, "E5") | {"users": ALICE},    # a string where a list is expected
    order(order_id=1, org=ORG),
    '{"type":"funds.added","at":"2026-01-02T00:00:00Z","org":NaN,"amount":"5"}',
    '{"type":"funds.added","at":"2026-01-02T00:00:00Z","org":"acme","amount":NaN}',
    cdr("u1") | {"usage_id": 42},
    cdr("u1") | {"user": 1},
], ids=["org-number", "org-empty", "org-list", "org-object", "org-null", "request-id-number",
        "request-id-empty", "user-number", "user-empty", "users-item-number", "users-string",
        "order-id-number", "org-NaN", "amount-NaN", "usage-id-number", "cdr-user-number"])
def test_s2_identifiers_must_be_non_empty_strings(line):
    assert_changes_nothing(LEGACY, line, "invalid_input")


@pytest.mark.parametrize("field, number", [
    ("destination_number", "12065550123"),          # no +
    ("destination_number", "+1 206 555 0123"),      # spaces
    ("destination_number", "+1-206-555-0123"),      # punctuation
    ("destination_number", "+(1)2065550123"),
    ("destination_number", "+02065550123"),         # first digit 0
    ("destination_number", "+1206555012345678"),    # 16 digits
    ("destination_number", "+1"),                   # 1 digit
    ("destination_number", "+999123456"),           # not a possible number (no such country code)
    ("destination_number", "+١٢٠٦٥٥٥٠١٢٣"),         # non-ASCII digits
    ("destination_number", "+12065550123 "),
    ("destination_number", 12065550123),
    ("destination_number", ""),
    ("caller_number", "00442071234567"),
    ("caller_number", "+44 20 7123 4567"),
    ("caller_number", None),
])
def test_s2_phone_numbers_are_strict_e164(field, number):
    assert_changes_nothing(LEGACY, cdr("u1", **{field: number}), "invalid_input")


@pytest.mark.parametrize("dest", ["112", "911", "+911", "999", "000000000000000"])
def test_s10_emergency_destination_may_be_any_2_to_15_digits(dest):
    report = assert_accepted([*LEGACY, cdr("e1", call_type="emergency_out", dest=dest)])
    assert_fields(report, {"calls.e1.kind": "emergency", "calls.e1.charge": "0.0000"})


@pytest.mark.parametrize("dest", ["1", "11a", "", "+", "1234567890123456", "1 12"])
def test_s10_bad_emergency_destination_is_invalid_input(dest):
    assert_changes_nothing(LEGACY, cdr("e1", call_type="emergency_out", dest=dest), "invalid_input")


# === §3 Organizations and users =================================================================

@pytest.mark.parametrize("lines, code", [
    ([org_created(), org_created()], "duplicate_organization"),
    ([org_created(), org_created(country="GB", currency="GBP", commerce="nce")], "duplicate_organization"),
    ([org_created(), user_added(), user_added()], "duplicate_user"),
    ([org_created(), user_added(), user_added(loc="GB")], "duplicate_user"),
    ([org_created(), user_added(org="nowhere")], "unknown_organization"),
    ([org_created(), user_added(), assigned(GHOST, "E5")], "unknown_user"),
    ([org_created(), user_added(), removed(GHOST, "E5")], "unknown_user"),
    ([*LEGACY, cdr("u1", user=GHOST)], "unknown_user"),
    ([*LEGACY, cdr("u1", org="nowhere")], "unknown_organization"),
    ([*LEGACY, funds("5", org="nowhere")], "unknown_organization"),
], ids=["duplicate-org", "duplicate-org-other-fields", "duplicate-user", "duplicate-user-other-location",
        "user-unknown-org", "assign-unknown-user", "remove-unknown-user", "cdr-unknown-user",
        "cdr-unknown-org", "funds-unknown-org"])
def test_s3_organizations_and_users(lines, code):
    assert_rejected_last(lines, code)


def test_s3_same_user_name_in_two_organizations_is_fine():
    report = assert_accepted([org_created(), org_created("beta"), user_added(), user_added(org="beta")])
    assert set(report["organizations"]) == {ORG, "beta"}


def test_s3_organization_output_before_an_order():
    report = assert_accepted([org_created(currency="EUR")])
    assert report["organizations"][ORG] == {
        "currency": "EUR", "balance": "0.0000", "credits_active": False,
        "auto_recharge": {"enabled": False, "recharge_amount": None, "trigger_amount": None, "suspended": False},
        "lots": [], "pools": {},
        "totals": {"funds_added": "0.0000", "charged": "0.0000", "expired": "0.0000",
                   "uncollected": "0.0000", "overage": "0.0000"},
        "recharges": {"triggered": 0, "succeeded": 0, "failed": 0},
        "depleted": 0, "held": "0.0000",
    }


# === §4 Licences ================================================================================
# Preamble: org active (order at T0), alice and bob (US) with no licences yet; then the rows' lines.

BASE = [org_created(), user_added(ALICE), user_added(BOB), order("10")]     # 4 lines

LICENCE_REJECTIONS = [
    ("plan-without-phone-system", [assigned(ALICE, "CALLING_PLAN_DOMESTIC")], "licence_prerequisite"),
    ("intl-plan-without-phone-system", [assigned(ALICE, "CALLING_PLAN_INTERNATIONAL")], "licence_prerequisite"),
    ("payg-without-phone-system", [assigned(ALICE, "CALLING_PLAN_PAYG")], "licence_prerequisite"),
    ("second-plan", [assigned(ALICE, ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC"]),
                     assigned(ALICE, "CALLING_PLAN_INTERNATIONAL")], "licence_conflict"),
    ("two-plans-at-once", [assigned(ALICE, ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC", "CALLING_PLAN_PAYG"])],
     "licence_conflict"),
    # both a conflict and a missing prerequisite: conflict comes first
    ("conflict-before-prerequisite", [assigned(ALICE, ["CALLING_PLAN_DOMESTIC", "CALLING_PLAN_PAYG"])],
     "licence_conflict"),
    ("remove-not-held", [removed(ALICE, "E5")], "licence_not_held"),
    # removing a held and a not-held licence, the held one leaving a plan without prerequisite:
    # licence_not_held comes first
    ("not-held-before-prerequisite", [assigned(ALICE, ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC"]),
                                      removed(ALICE, ["PHONE_SYSTEM", "AUDIO_CONFERENCING"])],
     "licence_not_held"),
    ("remove-phone-system-under-plan", [assigned(ALICE, ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC"]),
                                        removed(ALICE, "PHONE_SYSTEM")], "licence_prerequisite"),
    ("remove-e5-under-plan", [assigned(ALICE, ["E5", "CALLING_PLAN_INTERNATIONAL"]), removed(ALICE, "E5")],
     "licence_prerequisite"),
    ("remove-last-credits-prerequisite-ac", [assigned(ALICE, ["AUDIO_CONFERENCING", "COMMUNICATIONS_CREDITS"]),
                                             removed(ALICE, "AUDIO_CONFERENCING")], "licence_prerequisite"),
    ("remove-last-credits-prerequisite-e5", [assigned(ALICE, ["E5", "COMMUNICATIONS_CREDITS"]),
                                             removed(ALICE, "E5")], "licence_prerequisite"),
    ("remove-last-credits-prerequisite-plan", [assigned(ALICE, ["PHONE_SYSTEM", "CALLING_PLAN_PAYG",
                                                                "COMMUNICATIONS_CREDITS"]),
                                               removed(ALICE, ["PHONE_SYSTEM", "CALLING_PLAN_PAYG"])],
     "licence_prerequisite"),
    ("credits-with-phone-system-only", [assigned(ALICE, ["PHONE_SYSTEM", "COMMUNICATIONS_CREDITS"])],
     "licence_prerequisite"),
    ("credits-alone", [assigned(ALICE, "COMMUNICATIONS_CREDITS")], "licence_prerequisite"),
    ("unknown-licence", [assigned(ALICE, "E3")], "invalid_input"),
    ("lower-case-licence", [assigned(ALICE, "e5")], "invalid_input"),
    ("unknown-licence-removal", [removed(ALICE, "TEAMS_PHONE")], "invalid_input"),
    ("unknown-licence-and-unknown-user", [assigned(GHOST, ["E5", "E3"])], "invalid_input"),
    # bulk: code of the first failing user in list order
    ("bulk-first-failing-is-prerequisite", [assigned([ALICE, GHOST, BOB], ["CALLING_PLAN_DOMESTIC"])],
     "licence_prerequisite"),
    ("bulk-unknown-user-first", [assigned([GHOST, ALICE], ["CALLING_PLAN_DOMESTIC"])], "unknown_user"),
]


@pytest.mark.parametrize("ops, code", [pytest.param(ops, code, id=name) for name, ops, code in LICENCE_REJECTIONS])
def test_s4_licence_rejections(ops, code):
    assert_rejected_last([*BASE, *ops], code)


@pytest.mark.parametrize("ops", [
    pytest.param([assigned(ALICE, ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC"])], id="phone-system-and-plan-together"),
    pytest.param([assigned(ALICE, ["CALLING_PLAN_INTERNATIONAL", "PHONE_SYSTEM"])], id="plan-listed-first"),
    pytest.param([assigned(ALICE, ["E5", "CALLING_PLAN_INTERNATIONAL"])], id="e5-is-phone-system"),
    pytest.param([assigned(ALICE, ["E5", "AUDIO_CONFERENCING", "PHONE_SYSTEM"])], id="e5-with-its-parts"),
    pytest.param([assigned(ALICE, "E5"), assigned(ALICE, "E5")], id="assign-held-is-no-op"),
    pytest.param([assigned(ALICE, ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC"]),
                  assigned(ALICE, ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC"])], id="assign-held-plan-again"),
    pytest.param([assigned(ALICE, ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC"]),
                  removed(ALICE, ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC"])], id="remove-plan-and-prerequisite"),
    pytest.param([assigned(ALICE, ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC"]),
                  removed(ALICE, "CALLING_PLAN_DOMESTIC"),
                  assigned(ALICE, "CALLING_PLAN_INTERNATIONAL")], id="switch-plan-by-removing"),
    pytest.param([assigned(ALICE, ["E5", "PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC"]), removed(ALICE, "E5")],
                 id="remove-e5-phone-system-still-held"),
    pytest.param([assigned(ALICE, ["AUDIO_CONFERENCING", "COMMUNICATIONS_CREDITS"])], id="credits-with-ac"),
    pytest.param([assigned(ALICE, ["E5", "COMMUNICATIONS_CREDITS"])], id="credits-with-e5"),
    pytest.param([assigned(ALICE, ["PHONE_SYSTEM", "CALLING_PLAN_PAYG", "COMMUNICATIONS_CREDITS"])],
                 id="credits-with-payg-plan"),
    pytest.param([assigned(ALICE, ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC", "AUDIO_CONFERENCING",
                                   "COMMUNICATIONS_CREDITS"]), removed(ALICE, "AUDIO_CONFERENCING")],
                 id="remove-ac-plan-still-qualifies"),
    pytest.param([assigned([ALICE, BOB], ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC"])], id="bulk-two-users"),
    pytest.param([assigned(ALICE, ["AUDIO_CONFERENCING", "COMMUNICATIONS_CREDITS"]),
                  removed(ALICE, ["COMMUNICATIONS_CREDITS", "AUDIO_CONFERENCING"])],
                 id="remove-credits-with-prerequisite"),
    pytest.param([assigned(ALICE, ["E5", "PHONE_SYSTEM", "CALLING_PLAN_PAYG"]), removed(ALICE, "PHONE_SYSTEM")],
                 id="remove-phone-system-e5-still-held"),
])
def test_s4_licence_changes_accepted(ops):
    assert_accepted([*BASE, *ops])


def test_s4_bulk_is_atomic():
    # alice would be fine, ghost is unknown: nothing changes for alice either, so removing
    # PHONE_SYSTEM from her afterwards is licence_not_held.
    report = run([*BASE, assigned([ALICE, GHOST], ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC"]),
                  removed(ALICE, "PHONE_SYSTEM")])
    assert report["rejected"] == [{"line": 5, "code": "unknown_user"}, {"line": 6, "code": "licence_not_held"}]


def test_s4_bulk_is_atomic_for_removal_too():
    # alice may drop AUDIO_CONFERENCING, bob may not (it is his last credits prerequisite)
    report = run([*BASE, assigned([ALICE, BOB], ["AUDIO_CONFERENCING", "COMMUNICATIONS_CREDITS"]),
                  assigned(ALICE, ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC"]),
                  removed([ALICE, BOB], "AUDIO_CONFERENCING"),
                  removed(ALICE, "AUDIO_CONFERENCING")])       # still held: accepted
    assert report["rejected"] == [{"line": 7, "code": "licence_prerequisite"}]


def test_s4_bulk_pool_unchanged_after_failed_bulk():
    # alice's failed bulk assignment of a domestic plan must not give her included minutes:
    # her call is not covered → 1 min × 0.0190 = 0.0190 charged (she has COMMUNICATIONS_CREDITS via AC)
    report = run([*BASE, assigned(ALICE, ["AUDIO_CONFERENCING", "COMMUNICATIONS_CREDITS"]),
                  assigned([ALICE, GHOST], ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC"]), cdr("u1")])
    assert report["rejected"] == [{"line": 6, "code": "unknown_user"}]
    assert_fields(report, {"calls.u1.pool": None, "calls.u1.covered_minutes": 0, "calls.u1.debited": "0.0190"})


@pytest.mark.parametrize("ops, code, failing, fine", [
    # alice: prerequisite; ghost and carol: unknown; bob holds E5: fine
    ([assigned(BOB, "E5"), assigned([ALICE, GHOST, BOB, CAROL], ["CALLING_PLAN_DOMESTIC"])], "licence_prerequisite",
     {ALICE: "licence_prerequisite", GHOST: "unknown_user", CAROL: "unknown_user"}, [BOB]),
    # alice: a second plan (conflict); bob: no PHONE_SYSTEM (prerequisite)
    ([assigned(ALICE, ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC"]), assigned([ALICE, BOB], ["CALLING_PLAN_PAYG"])],
     "licence_conflict", {ALICE: "licence_conflict", BOB: "licence_prerequisite"}, []),
], ids=["prerequisite-and-unknown", "conflict-and-prerequisite"])
def test_s4_bulk_message_names_every_failing_user_with_its_reason(ops, code, failing, fine):
    error = error_of([*BASE, *ops])
    assert error.code == code
    message = str(error)
    for user, reason in failing.items():
        assert user in message and reason in message, (user, reason, message)
    for user in fine:
        assert user not in message


@pytest.mark.parametrize("lines, code", [
    pytest.param([*inactive(), assigned(ALICE, "COMMUNICATIONS_CREDITS")], "credits_not_active", id="no-order"),
    pytest.param([*nce(), assigned(ALICE, "COMMUNICATIONS_CREDITS")], "nce_not_eligible", id="nce"),
    pytest.param([*inactive(), assigned(GHOST, "COMMUNICATIONS_CREDITS")], "credits_not_active",
                 id="no-order-before-unknown-user"),
    pytest.param([*nce(), assigned([GHOST], ["COMMUNICATIONS_CREDITS"])], "nce_not_eligible",
                 id="nce-before-unknown-user"),
    pytest.param([*inactive(), assigned(ALICE, ["AUDIO_CONFERENCING", "COMMUNICATIONS_CREDITS"])],
                 "credits_not_active", id="no-order-even-with-prerequisite"),
    pytest.param([*legacy(payment={"method": "card", "card": "decline-1", "expires": "2030-12"}, funds="5",
                          credits_licence=False), assigned(ALICE, "COMMUNICATIONS_CREDITS")],
                 "credits_not_active", id="declined-order-does-not-activate"),
])
def test_s4_communications_credits_need_active_credits(lines, code):
    report = run(lines)
    assert report["rejected"][-1] == {"line": len(lines), "code": code}
