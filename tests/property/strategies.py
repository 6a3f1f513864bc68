"""Hypothesis strategies for whole `simulate` scenarios (SPEC §11 JSON Lines), and the helpers
that run them and read back what the store holds.

A scenario is a list of lines (dicts, or raw text for malformed lines) that is *valid-ish*: most
lines are accepted, some are rejected for a business reason (declined card, missing licence, no
rate, unknown user) and a few are malformed. Times mostly move forward, sometimes jump by months
(so lots expire and cards run out) and sometimes go backwards (the engine clock must not).
Destinations are chosen so the `SPEC_RATES` card (tests/fixtures/spec-examples/rates.csv) has a
row for most of them.
"""

import dataclasses
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from application.settings import memory_store
from commcredits.simulate import RunLog, Simulation, report_document
from domain.credit_account import CreditAccount
from domain.engine_clock import EngineClock
from domain.licence_registry import LicenceRegistry
from domain.usage_claim import UsageClaim
from tests.support import SPEC_RATES, as_lines

START = datetime(2026, 1, 1, 8, 0, tzinfo=timezone.utc)
# Month ends and a leap day: "12 calendar months later" must clamp the day (SPEC §7).
STARTS = (START, START, datetime(2026, 1, 31, 23, 30, tzinfo=timezone.utc),
          datetime(2028, 2, 29, 12, 0, tzinfo=timezone.utc))

# Numbers and the countries `phonenumbers` resolves them to; "+4477..." has no region.
NUMBERS = {
    "US": "+12065550123", "GB": "+442071234567", "FR": "+33142685300", "DE": "+4930123456",
    "IN": "+919812345678", "IT": "+390612345678", "JP": "+819012345678", "NONE": "+447700900123",
}
TOLL_FREE_NUMBERS = {"USD": "+18005550199", "EUR": "+33805123456"}
LOCATIONS = ("US", "GB", "FR", "DE", "IT")
LICENCE_SETS = (
    (), ("E5",), ("AUDIO_CONFERENCING",), ("PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC"),
    ("PHONE_SYSTEM", "CALLING_PLAN_INTERNATIONAL"), ("E5", "CALLING_PLAN_INTERNATIONAL"),
    ("PHONE_SYSTEM", "CALLING_PLAN_PAYG"), ("CALLING_PLAN_DOMESTIC",),  # the last lacks its prerequisite
)
AMOUNTS = ("0.5", "1", "2.5", "3.75", "5", "10.1234", "20", "0.0190")
RECHARGE_AMOUNTS = ("0.5", "1", "2", "5", "12.5")
TRIGGER_AMOUNTS = ("0", "0.25", "1", "3", "10")
DURATIONS = (0, 1, 59, 60, 61, 180, 600, 3540, 4200, 10800)
OUTBOUND_TYPES = ("user_out", "user_out_transfer", "fmc_out", "user_out_conf")
INBOUND_TYPES = ("user_in", "conf_in", "ucap_in", "unassigned_in", "fmc_in", "emergency_in")


def timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# How far the clock moves before a line: mostly minutes to days, sometimes months, rarely back.
time_steps = st.one_of(
    st.integers(0, 6 * 3600).map(lambda s: timedelta(seconds=s)),
    st.integers(1, 20).map(lambda d: timedelta(days=d)),
    st.integers(25, 200).map(lambda d: timedelta(days=d)),
    st.integers(1, 10 * 86400).map(lambda s: -timedelta(seconds=s)),
)
time_steps = st.one_of(  # weights: forward small steps are the common case
    time_steps, st.integers(0, 3 * 86400).map(lambda s: timedelta(seconds=s)),
    st.integers(0, 3 * 86400).map(lambda s: timedelta(seconds=s)),
)


def card(draw, now: datetime) -> dict[str, Any]:
    kind = draw(st.sampled_from(("good", "good", "soon", "expired", "decline")))
    if kind == "decline":
        return {"method": "card", "card": "decline-77", "expires": "2030-12"}
    if kind == "expired":
        return {"method": "card", "card": "visa-old", "expires": f"{now.year - 1}-12"}
    if kind == "soon":  # valid now, runs out within months: later recharges fail
        expiry = now + timedelta(days=draw(st.integers(0, 120)))
        return {"method": "card", "card": "visa-soon", "expires": f"{expiry.year}-{expiry.month:02d}"}
    return {"method": "card", "card": "visa-1", "expires": "2031-06"}


def payment(draw, now: datetime, agreements: list[str]) -> dict[str, Any]:
    if draw(st.integers(0, 3)) == 0:
        agreement = draw(st.sampled_from(agreements + ["EA-404"]))
        return {"method": "enterprise_agreement", "agreement": agreement, "po": draw(st.sampled_from((None, "PO-1")))}
    return card(draw, now)


def auto_recharge(draw) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"enabled": True, "recharge_amount": draw(st.sampled_from(RECHARGE_AMOUNTS)),
                "trigger_amount": draw(st.sampled_from(TRIGGER_AMOUNTS))}
    return {"enabled": False}


class _Builder:
    """Draws lines one at a time, keeping what later lines may refer to."""

    def __init__(self, draw) -> None:
        self.draw = draw
        self.start = draw(st.sampled_from(STARTS))
        self.now = self.start
        self.lines: list[dict[str, Any] | str] = []
        self.orgs: list[dict[str, Any]] = []
        self.cdrs: list[dict[str, Any]] = []
        self.usage_numbers = 0

    def stamp(self, moment: datetime) -> str:
        """Mostly `...Z`; sometimes another UTC offset or a fraction of a second (SPEC §2)."""
        form = self.draw(st.sampled_from(("Z",) * 6 + ("offset", "fraction")))
        if form == "offset":
            offset = self.draw(st.sampled_from((timedelta(hours=5, minutes=30), timedelta(hours=-8),
                                                timedelta(hours=14))))
            return moment.astimezone(timezone(offset)).isoformat()
        if form == "fraction":
            fraction = self.draw(st.sampled_from((".5Z", ".000001Z", ".999999999Z")))
            return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction
        return timestamp(moment)

    def tick(self) -> datetime:
        self.now = max(self.start - timedelta(days=30), self.now + self.draw(time_steps))
        return self.now

    def org(self) -> dict[str, Any]:
        return self.draw(st.sampled_from(self.orgs))

    def setup(self) -> None:
        count = self.draw(st.integers(1, 2))
        for index in range(count):
            commerce = self.draw(st.sampled_from(("legacy", "legacy", "nce")))
            currency = self.draw(st.sampled_from(("USD", "USD", "EUR")))
            org = {"org": f"org{index}", "commerce": commerce, "currency": currency, "agreements": ["EA-1"],
                   "users": [f"user{n}@org{index}.example" for n in range(self.draw(st.integers(1, 3)))]}
            self.orgs.append(org)
            self.lines.append({"type": "organization.created", "at": self.stamp(self.tick()), "org": org["org"],
                               "name": f"Org {index}", "country": "US", "currency": currency, "commerce": commerce,
                               "agreements": org["agreements"]})
            for user in org["users"]:
                self.lines.append({"type": "user.added", "at": self.stamp(self.tick()), "org": org["org"],
                                   "user": user, "usage_location": self.draw(st.sampled_from(LOCATIONS))})
                licences = self.draw(st.sampled_from(LICENCE_SETS + LICENCE_SETS[1:6]))
                if licences:
                    self.lines.append({"type": "licences.assigned", "at": self.stamp(self.tick()), "org": org["org"],
                                       "users": [user], "licences": list(licences)})
            if self.draw(st.integers(0, 4)):
                self.order(org, good_payment=self.draw(st.integers(0, 3)) > 0)
            self.credits_licences(org)

    def order(self, org: dict[str, Any], good_payment: bool = False) -> None:
        at = self.tick()
        method = {"method": "card", "card": "visa-1", "expires": "2031-06"} if good_payment else payment(
            self.draw, at, org["agreements"])
        self.lines.append({"type": "order.placed", "at": self.stamp(at), "org": org["org"],
                           "order": self.draw(st.sampled_from(("o-1", "o-1", "o-2"))),
                           "funds": self.draw(st.sampled_from(("0", "3.5", "20", "100", "0.0001"))),
                           "auto_recharge": auto_recharge(self.draw),
                           "payment": method})

    def credits_licences(self, org: dict[str, Any]) -> None:
        users = self.draw(st.lists(st.sampled_from(org["users"]), min_size=1, max_size=3))
        self.lines.append({"type": "licences.assigned", "at": self.stamp(self.tick()), "org": org["org"],
                           "users": users, "licences": ["COMMUNICATIONS_CREDITS"]})

    def body_line(self) -> None:
        action = self.draw(st.sampled_from(
            ("cdr",) * 8 + ("duplicate",) * 2 + ("funds", "funds", "recharge", "payment", "clock", "order",
                                                 "licences", "invalid")))
        getattr(self, f"_{action}")()

    def _cdr(self) -> None:
        org = self.org()
        end = self.tick()
        duration = self.draw(st.one_of(st.sampled_from(DURATIONS), st.integers(0, 7200)))
        call_type = self.draw(st.sampled_from(OUTBOUND_TYPES[:2] + ("conf_out", "conf_out", "ucap_out")
                                              + INBOUND_TYPES[:3] + ("emergency_out",)))
        user = self.draw(st.sampled_from(org["users"] + ["ghost@nowhere.example"] * (len(org["users"]) > 2)))
        destination = NUMBERS[self.draw(st.sampled_from(sorted(NUMBERS) + ["US", "GB", "FR", "DE", "IN"] * 2))]
        caller = NUMBERS[self.draw(st.sampled_from(("US", "GB", "FR", "DE")))]
        record: dict[str, Any] = {"type": "cdr", "usage_id": self._usage_id(), "org": org["org"],
                                  "call_type": call_type, "caller_number": caller,
                                  "destination_number": destination,
                                  "start_time": self.stamp(end - timedelta(seconds=duration)),
                                  "end_time": self.stamp(end), "duration_seconds": duration}
        if call_type == "emergency_out":
            record["destination_number"] = self.draw(st.sampled_from(("112", "911")))
        if call_type in INBOUND_TYPES and self.draw(st.booleans()):
            record["number_type"] = "toll_free"
            record["destination_number"] = TOLL_FREE_NUMBERS[org["currency"]]
        if call_type not in ("ucap_out", "conf_in", "ucap_in") or self.draw(st.booleans()):
            record["user"] = user
        self.cdrs.append(record)
        self.lines.append(record)

    def _usage_id(self) -> str:
        if self.cdrs and self.draw(st.integers(0, 9)) == 0:  # same id, possibly different content
            return self.draw(st.sampled_from(self.cdrs))["usage_id"]
        self.usage_numbers += 1
        return f"u{self.usage_numbers}"

    def _duplicate(self) -> None:
        if not self.cdrs:
            return self._cdr()
        self.lines.append(dict(self.draw(st.sampled_from(self.cdrs))))

    def _funds(self) -> None:
        org = self.org()
        line = {"type": "funds.added", "at": self.stamp(self.tick()), "org": org["org"],
                "amount": self.draw(st.sampled_from(AMOUNTS))}
        request = self.draw(st.sampled_from((None, None, "r-1", "r-2", "r-3")))
        if request is not None:
            line["request_id"] = request
        self.lines.append(line)

    def _recharge(self) -> None:
        org = self.org()
        line = {"type": "auto_recharge.configured", "at": self.stamp(self.tick()), "org": org["org"]}
        settings = auto_recharge(self.draw)
        line.update(settings if settings["enabled"] else {"enabled": False, "recharge_amount": None,
                                                          "trigger_amount": None})
        self.lines.append(line)

    def _payment(self) -> None:
        org = self.org()
        at = self.tick()
        self.lines.append({"type": "payment_method.updated", "at": self.stamp(at), "org": org["org"],
                           "payment": payment(self.draw, at, org["agreements"])})

    def _clock(self) -> None:
        self.now += timedelta(days=self.draw(st.integers(1, 400)))
        self.lines.append({"type": "clock", "at": self.stamp(self.now)})

    def _order(self) -> None:
        self.order(self.org())

    def _licences(self) -> None:
        org = self.org()
        if self.draw(st.booleans()):
            return self.credits_licences(org)
        self.lines.append({"type": self.draw(st.sampled_from(("licences.assigned", "licences.removed"))),
                           "at": self.stamp(self.tick()), "org": org["org"],
                           "users": [self.draw(st.sampled_from(org["users"]))],
                           "licences": list(self.draw(st.sampled_from(LICENCE_SETS[1:])))})

    def _invalid(self) -> None:
        at = self.stamp(self.tick())
        org = self.org()["org"]
        self.lines.append(self.draw(st.sampled_from((
            "this is not json",
            "",
            "[1, 2, 3]",
            '{"type": "teleport", "at": "%s"}' % at,
            '{"type": "funds.added", "at": "%s", "org": "%s", "amount": "1.23456"}' % (at, org),
            '{"type": "funds.added", "at": "2026-01-01T00:00:00", "org": "%s", "amount": "1"}' % org,
            '{"type": "clock", "at": "1999-12-31T23:59:59Z"}',
            '{"type": "cdr", "usage_id": "bad", "org": "%s"}' % org,
            '{"type": "funds.added", "at": "%s", "org": "nobody", "amount": "1"}' % at,
        ))))


@st.composite
def scenarios(draw, min_body: int = 5, max_body: int = 40) -> list[dict[str, Any] | str]:
    """A scenario as a list of commands (dicts) and raw text lines; feed it to `as_lines`."""
    builder = _Builder(draw)
    builder.setup()
    for _ in range(draw(st.integers(min_body, max_body))):
        builder.body_line()
    if draw(st.booleans()):  # make sure more than 12 months pass, so every early lot expires
        builder.now = max(builder.now, builder.start) + timedelta(days=draw(st.integers(366, 500)))
        builder.lines.append({"type": "clock", "at": timestamp(builder.now)})
    return builder.lines


def scenario_lines(min_body: int = 5, max_body: int = 40) -> st.SearchStrategy[list[bytes]]:
    return scenarios(min_body, max_body).map(as_lines)


# ----- running scenarios and reading back the store ---------------------------------------------

CATALOG = load_catalog(None)
LIBRARY_INTERNALS = {"_pending_events"}


class FrequentSnapshots(BillingApplication):
    """The real application with tiny snapshot intervals, so a short scenario takes many
    snapshots at awkward points (mid-scenario, between two flushes)."""
    snapshotting_intervals = {CreditAccount: 3, LicenceRegistry: 2, EngineClock: 2, UsageClaim: 1}


def new_simulation(app: BillingApplication | None = None, **options: Any) -> Simulation:
    return Simulation(app or BillingApplication(env=memory_store().env), SPEC_RATES, CATALOG, **options)


def run_line_by_line(simulation: Simulation, lines: list[bytes], first_line_number: int = 1) -> None:
    """Flush after every line, as a consumer does: many small transactions, many snapshots."""
    for offset, line in enumerate(lines):
        simulation.run([line], first_line_number=first_line_number + offset)


def merged_log(*logs: RunLog) -> RunLog:
    """The log of one run made of several runs one after the other (a restart in between)."""
    merged = RunLog()
    for log in logs:
        merged.rejected.extend(log.rejected)
        merged.rejected_cdrs += log.rejected_cdrs
        merged.duplicates += log.duplicates
        merged.lines += log.lines
    return merged


def report(simulation: Simulation) -> dict[str, Any]:
    return report_document(simulation.app, simulation.log)


def canonical(value: Any) -> Any:
    """A comparable picture of a value that keeps what `==` forgets: a Decimal's exponent, a
    datetime's offset, str vs datetime, set vs list, dataclass type."""
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    if isinstance(value, datetime):
        return ("datetime", value.isoformat())
    if isinstance(value, UUID):
        return ("UUID", str(value))
    if isinstance(value, (set, frozenset)):
        return ("set", sorted(canonical(item) for item in value))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, {f.name: canonical(getattr(value, f.name)) for f in dataclasses.fields(value)})
    if isinstance(value, dict):
        return {key: canonical(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(item) for item in value]
    return value


def aggregate_state(aggregate: Any) -> dict[str, Any]:
    return canonical({key: value for key, value in vars(aggregate).items() if key not in LIBRARY_INTERNALS})


def live_aggregates(simulation: Simulation) -> list[Any]:
    """The aggregates the running service holds in memory (all saved: run() ends with a flush)."""
    service = simulation.service
    live: list[Any] = []
    for org in service.organizations():
        live += [service.account(org), service.registry(org)]
    return live


def stored_events(app: BillingApplication, aggregate_id: UUID) -> list[Any]:
    return list(app.events.get(aggregate_id))


def as_text(lines: Iterable[bytes]) -> str:
    return "\n".join(line.decode(errors="replace") for line in lines)
