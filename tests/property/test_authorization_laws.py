"""SPEC §13.4 as laws over random interleavings of authorizations, releases, CDRs (some settling a
reservation), funds and time: read back from the event history, every decision held at most the
pool minutes `P` and (without live auto-recharge) the money `F` of its moment, and no call id was
decided twice.

The checks are `tests.authorization_history`'s, which the concurrency tests of `serve` share.
"""

from datetime import datetime, timedelta, timezone

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.billing_application import BillingApplication
from application.settings import memory_store
from domain.catalog import parse_catalog
from domain.credit_account import CreditAccount
from domain.money import format_money
from domain.reservations import held_amount, held_minutes
from tests.authorization_history import assert_every_decision_held_at_most_its_moments_p_and_f
from tests.support import simulate_lines

CATALOG = parse_catalog({"minutes": {"DOMESTIC": {"*": 10}, "INTERNATIONAL": {"*": 5}, "DIALOUT": {"*": 10}}})
START = datetime(2026, 1, 30, 22, 0, tzinfo=timezone.utc)  # months turn over during a scenario
USERS = {"alice@acme.com": ("US", ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC"]),
         "bob@acme.com": ("US", ["AUDIO_CONFERENCING"]),
         "carol@acme.com": ("GB", ["PHONE_SYSTEM", "CALLING_PLAN_INTERNATIONAL"])}
DESTINATIONS = ("+12065550123", "+442071234567", "+447400123456", "+33142685300", "+819012345678")
CALL_TYPES = ("user_out", "user_out", "conf_out", "ucap_out", "user_in")


def stamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@st.composite
def scenarios(draw) -> list[dict]:
    funds = draw(st.sampled_from(["0", "0.05", "0.5", "1", "3"]))
    recharge = draw(st.sampled_from([{"enabled": False}, {"enabled": True, "recharge_amount": "1", "trigger_amount": "0"}]))
    lines = [{"type": "organization.created", "at": stamp(START), "org": "acme", "name": "Acme", "country": "US",
              "currency": "USD", "commerce": "legacy", "agreements": ["EA-1"]}]
    for user, (location, licences) in USERS.items():
        lines += [{"type": "user.added", "at": stamp(START), "org": "acme", "user": user, "usage_location": location},
                  {"type": "licences.assigned", "at": stamp(START), "org": "acme", "users": [user], "licences": licences}]
    lines.append({"type": "order.placed", "at": stamp(START), "org": "acme", "order": "o-1", "funds": funds,
                  "auto_recharge": recharge, "payment": {"method": "enterprise_agreement", "agreement": "EA-1", "po": None}})
    credits_users = draw(st.lists(st.sampled_from(sorted(USERS)), unique=True))
    if credits_users:
        lines.append({"type": "licences.assigned", "at": stamp(START), "org": "acme", "users": credits_users,
                      "licences": ["COMMUNICATIONS_CREDITS"]})
    now, decided = START, []
    for step in range(draw(st.integers(1, 25))):
        now += timedelta(minutes=draw(st.integers(0, 90)), seconds=draw(st.integers(0, 59)))
        kind = draw(st.sampled_from(["authorize", "authorize", "authorize", "cdr", "release", "funds"]))
        if kind == "authorize":
            call_id = draw(st.sampled_from([f"c{step}", f"c{step}", *decided[-2:]]))
            decided.append(call_id)
            call_type = draw(st.sampled_from(CALL_TYPES))
            line = {"type": "call.authorize", "at": stamp(now), "org": "acme", "call_id": call_id,
                    "call_type": call_type, "caller_number": "+14255550100",
                    "destination_number": draw(st.sampled_from(DESTINATIONS)),
                    "requested_seconds": draw(st.sampled_from([60, 300, 1200, 14400]))}
            if call_type != "ucap_out":
                line["user"] = draw(st.sampled_from(sorted(USERS)))
            lines.append(line)
        elif kind == "cdr":
            seconds = draw(st.sampled_from([0, 60, 300, 1500]))
            cdr = {"type": "cdr", "usage_id": f"u{step}", "org": "acme", "user": draw(st.sampled_from(sorted(USERS))),
                   "call_type": "user_out", "caller_number": "+14255550100",
                   "destination_number": draw(st.sampled_from(DESTINATIONS[:4])),
                   "start_time": stamp(now), "end_time": stamp(now + timedelta(seconds=seconds)),
                   "duration_seconds": seconds}
            if decided and draw(st.booleans()):
                cdr["call_id"] = draw(st.sampled_from(decided))
            lines.append(cdr)
            now += timedelta(seconds=seconds)
        elif kind == "release" and decided:
            lines.append({"type": "call.released", "at": stamp(now), "org": "acme",
                          "call_id": draw(st.sampled_from(decided))})
        elif kind == "funds":
            lines.append({"type": "funds.added", "at": stamp(now), "org": "acme", "amount": "0.5"})
    return lines


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_no_decision_holds_more_than_the_minutes_and_money_of_its_moment(lines):
    app = BillingApplication(env=memory_store().env)
    report = simulate_lines([orjson.dumps(line) for line in lines], app=app, catalog=CATALOG)
    assert report["rejected"] == [] or all(entry["code"] == "unknown_authorization" for entry in report["rejected"])
    assert_every_decision_held_at_most_its_moments_p_and_f(app, "acme", CATALOG)
    account_id = CreditAccount.create_id("acme")
    assert report["organizations"]["acme"]["held"] == format_money(app.repository.get(account_id).held_amount)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(0, 40))
def test_the_kept_totals_of_open_reservations_are_their_sums(lines, cut):
    """At every version of the account, and for an account restored from a snapshot that has no
    totals yet (taken before they were kept), the totals a decision reads are the sums of the open
    reservations."""
    app = BillingApplication(env=memory_store().env)
    simulate_lines([orjson.dumps(line) for line in lines], app=app, catalog=CATALOG)
    account_id = CreditAccount.create_id("acme")
    last = app.repository.get(account_id).version
    for version in range(1, last + 1):
        assert_totals_are_sums(app.repository.get(account_id, version=version))
    old = app.repository.get(account_id, version=max(1, last - cut))
    vars(old).pop("held_total", None), vars(old).pop("held_pool_minutes", None)
    assert_totals_are_sums(old)
    for event in app.events.get(account_id, gt=old.version):
        event.mutate(old)
        assert_totals_are_sums(old)


def assert_totals_are_sums(account: CreditAccount) -> None:
    open_ones = list(account.reservations.values())
    assert account.held_amount == held_amount(open_ones)
    for month, pool in {(r.pool_month, r.pool) for r in open_ones if r.pool is not None} | {("2026-01", "DOMESTIC/US")}:
        assert account.held_minutes(month, pool) == held_minutes(open_ones, pool, month)
