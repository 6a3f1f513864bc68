"""A realistic synthetic month as SPEC §11 JSON Lines (for `make run`, `demo` and benchmarks).

Organizations of every flavour (legacy with card or Enterprise Agreement, one on NCE, and with
four or more one that tops up by hand, without auto-recharge, and runs out of money between
top-ups), users in several countries with a mix of licences, calls in office hours on weekdays,
orders with auto-recharge, a card that expires mid-month so a recharge fails, manual funds, a
duplicate CDR now and then, a malformed line, and a final clock line a year later so funds
expire. Lines are written as they are made, in time order: a 1,000,000-CDR file needs no more
memory than a 1,000-CDR one.

    python examples/generate_scenario.py --organizations 3 --users 120 --cdrs 20000 > month.jsonl
"""

import argparse
import random
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from domain.commerce import LEGACY, NCE

START = datetime(2026, 1, 15, tzinfo=timezone.utc)
COUNTRIES = [("US", "+1206555", 4), ("GB", "+44207946", 4), ("FR", "+3314268", 4), ("DE", "+4930123", 4)]
ABROAD = ["+91981234", "+3314268", "+49151123", "+1425555", "+44207123", "+819012345"]
CALL_MIX = [("user_out", None, 62), ("conf_out", None, 12), ("user_in", None, 12), ("conf_in", "toll_free", 6),
            ("ucap_out", None, 4), ("emergency_out", None, 1), ("user_out_transfer", None, 3)]
MONTH_DAYS = 30
OFFICE_OPENS, OFFICE_DAY_S = 8, 10 * 3600  # calls end on weekdays between 08:00 and 18:00 UTC
HAND_FUNDED_INDEX = 2  # the third organization (unless it is the last, on NCE) has no auto-recharge
HAND_FUNDS = "10"  # what it orders and adds at each top-up: less than its calls cost


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def number(prefix: str, rng: random.Random, digits: int = 4) -> str:
    return prefix + "".join(rng.choice("0123456789") for _ in range(digits))


def business_hours(first_day: datetime, days: int) -> list[datetime]:
    """The start of each office day (weekdays, OFFICE_OPENS UTC) among `days` days from `first_day`."""
    mornings = (first_day + timedelta(days=day, hours=OFFICE_OPENS) for day in range(days))
    return [morning for morning in mornings if morning.weekday() < 5]


def call_end(mornings: list[datetime], n: int, cdrs: int) -> datetime:
    """The n-th of `cdrs` calls ends at an even spacing through the office hours of the month."""
    assert mornings, "the month has an office day"
    position = len(mornings) * OFFICE_DAY_S * n // max(cdrs, 1)
    return mornings[position // OFFICE_DAY_S] + timedelta(seconds=position % OFFICE_DAY_S)


def generate(organizations: int, users: int, cdrs: int, seed: int,
             days: int = MONTH_DAYS) -> Iterator[dict[str, Any] | str]:
    rng = random.Random(seed)
    at = iso(START)
    people: list[tuple[str, str, str]] = []  # (org, user, country)
    for index in range(organizations):
        org = f"org-{index + 1:03d}"
        nce = organizations > 1 and index == organizations - 1
        by_hand = index == HAND_FUNDED_INDEX and not nce
        currency = "EUR" if nce else "USD"
        yield {"type": "organization.created", "at": at, "org": org, "name": f"Organization {index + 1}",
               "country": "US", "currency": currency, "commerce": NCE if nce else LEGACY,
               "agreements": [f"EA-{index + 1}"]}
        members = [f"user{n:05d}@{org}.example" for n in range(max(1, users // organizations))]
        for user in members:
            country = rng.choice(COUNTRIES)[0]
            people.append((org, user, country))
            yield {"type": "user.added", "at": at, "org": org, "user": user, "usage_location": country}
        plans = ["PHONE_SYSTEM", "CALLING_PLAN_INTERNATIONAL" if index % 2 else "CALLING_PLAN_DOMESTIC"]
        yield {"type": "licences.assigned", "at": at, "org": org, "users": members, "licences": plans}
        yield {"type": "licences.assigned", "at": at, "org": org, "users": members[::2], "licences": ["AUDIO_CONFERENCING"]}
        if not nce:
            payment = ({"method": "card", "card": f"visa-{index}", "expires": "2026-01"} if index == 0 else
                       {"method": "enterprise_agreement", "agreement": f"EA-{index + 1}", "po": f"PO-{index}"})
            auto_recharge = {"enabled": False} if by_hand else \
                {"enabled": True, "recharge_amount": "20", "trigger_amount": "5"}
            yield {"type": "order.placed", "at": at, "org": org, "order": f"order-{index + 1}",
                   "funds": HAND_FUNDS if by_hand else "25",
                   "auto_recharge": auto_recharge, "payment": payment}
            yield {"type": "licences.assigned", "at": at, "org": org, "users": members[: len(members) * 3 // 4],
                   "licences": ["COMMUNICATIONS_CREDITS"]}
    yield "this line is not JSON: it shows how rejected lines are reported"
    mornings = business_hours(START + timedelta(days=1), days)
    previous: dict[str, Any] | None = None
    for n in range(cdrs):
        end = call_end(mornings, n, cdrs)
        org, user, country = rng.choice(people)
        call_type, number_type, _ = rng.choices(CALL_MIX, weights=[w for *_, w in CALL_MIX])[0]
        duration = int(rng.expovariate(1 / 240)) % 7200
        home = next(prefix for code, prefix, _ in COUNTRIES if code == country)
        destination = number(home if rng.random() < 0.6 else rng.choice(ABROAD), rng)
        if call_type == "emergency_out":
            destination = "911" if country == "US" else "112"
        cdr = {"type": "cdr", "usage_id": f"call-{seed}-{n:08d}", "org": org, "call_type": call_type,
               "caller_number": number(home, rng), "destination_number": destination,
               "start_time": iso(end - timedelta(seconds=duration)), "end_time": iso(end),
               "duration_seconds": duration}
        if call_type not in ("ucap_out", "conf_in"):
            cdr["user"] = user
        if number_type:
            cdr["number_type"] = number_type
        yield cdr
        if previous is not None and n % 997 == 0:
            yield previous  # a switch retrying: a duplicate
        previous = cdr
        if n and n % (cdrs // 4 or 1) == 0:
            yield {"type": "funds.added", "at": iso(end), "org": people[0][0], "amount": "10",
                   "request_id": f"top-up-{n}"}
            if organizations > HAND_FUNDED_INDEX + 1:
                yield {"type": "funds.added", "at": iso(end), "org": f"org-{HAND_FUNDED_INDEX + 1:03d}",
                       "amount": HAND_FUNDS, "request_id": f"hand-top-up-{n}"}
        if n == cdrs * 3 // 4:  # the expired card is finally replaced: the suspension lifts
            yield {"type": "payment_method.updated", "at": iso(end), "org": people[0][0],
                   "payment": {"method": "card", "card": f"visa-renewed-{n}", "expires": "2030-12"}}
    yield {"type": "clock", "at": iso(START + timedelta(days=400))}


def encoded(line: dict[str, Any] | str) -> bytes:
    return line.encode() if isinstance(line, str) else orjson.dumps(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--organizations", type=int, default=3)
    parser.add_argument("--users", type=int, default=120)
    parser.add_argument("--cdrs", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--days", type=int, default=MONTH_DAYS)
    options = parser.parse_args()
    out = sys.stdout.buffer
    for line in generate(options.organizations, options.users, options.cdrs, options.seed, options.days):
        out.write(encoded(line))
        out.write(b"\n")
