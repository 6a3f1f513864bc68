"""A billing history that calls for every kind of alert, and what each organization must receive.

The expectations below are worked out by hand from the scenario (calls at $0.0190 a minute: a
user with Phone System and the pay-as-you-go plan, dialling the US), not taken from the code:

contoso (US, USD): order of $10, auto-recharge $20 below $5, on a card that expires 2026-02.
- 01-10, 300 min = $5.70: balance 4.30 < 5 → recharge (card still valid) → recharge_succeeded
- 03-01, 1000 min = $19.00: 5.30 left
- 03-02, 100 min = $1.90: 3.40 < 5 → recharge on the expired card → recharge_failed and
  auto_recharge_suspended (no below-trigger alert: the suspension says it)
- 03-03, 200 min = $3.80 with 3.40 left → balance_depleted, calls_uncollected (03-03)
- 03-03 again, 10 min: uncollected, same day → nothing
- 03-04, 10 min: uncollected, a new day → calls_uncollected (03-04)
- 03-05 a new card lifts the suspension; 03-06 $10 added by hand (lot 3, expires 2027-03-06)
- clock 2027-02-10: lot 3 expires within 30 days → funds_expiring (lot 3)
- clock 2027-03-07: lot 3 expires → funds_expired, balance_depleted; the balance (0) is below
  the trigger and auto-recharge works again → recharge_succeeded
northwind (DE, USD): order of $10, auto-recharge off with a $5 trigger.
- 300 min = $5.70: 4.30 < 5 while off → balance_below_trigger; 100 min more: still below →
  nothing; $10 by hand (12.40, above again); 400 min = $7.60: 4.80 → balance_below_trigger
- the clock jumps from 2026-03 to 2027-02-10, past the expiry of the hand-added lot (2027-01-12,
  4.80 left), with no event in its last 30 days → funds_expired and balance_depleted, no warning

Each line is saved on its own, as the admin CLI and the live engine's small batches do, so the
clock's move to 2027-02-10 is stored before the expiries it causes.
"""

from collections import Counter
from datetime import datetime

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from commcredits.contacts import set_contacts
from commcredits.simulate import Simulation
from tests.support import SPEC_RATES, as_lines

CONTOSO_EMAILS = ["billing@contoso.example", "finance@contoso.example"]
NORTHWIND_EMAILS = ["ap@northwind.example"]
EXPECTED_KINDS = {
    "contoso": Counter({"order_placed": 1, "recharge_succeeded": 2, "recharge_failed": 1,
                        "auto_recharge_suspended": 1, "balance_depleted": 2, "calls_uncollected": 2,
                        "funds_expiring": 1, "funds_expired": 1}),
    "northwind": Counter({"order_placed": 1, "balance_below_trigger": 2, "funds_expired": 1, "balance_depleted": 1}),
}


def _organization(org: str, name: str, country: str, user: str) -> list[dict]:
    at = "2026-01-02T08:00:00Z"
    return [
        {"type": "organization.created", "at": at, "org": org, "name": name, "country": country, "currency": "USD",
         "commerce": "legacy"},
        {"type": "user.added", "at": at, "org": org, "user": user, "usage_location": "US"},
        {"type": "licences.assigned", "at": at, "org": org, "users": [user], "licences": ["PHONE_SYSTEM", "CALLING_PLAN_PAYG"]},
    ]


def _order(org: str, user: str, auto_recharge: dict, card_expires: str) -> list[dict]:
    at = "2026-01-02T09:00:00Z"
    return [
        {"type": "order.placed", "at": at, "org": org, "order": f"o-{org}", "funds": "10",
         "auto_recharge": auto_recharge, "payment": {"method": "card", "card": f"visa-{org}", "expires": card_expires}},
        {"type": "licences.assigned", "at": at, "org": org, "users": [user], "licences": ["COMMUNICATIONS_CREDITS"]},
    ]


def _call(org: str, user: str, usage_id: str, start: str, minutes: int) -> dict:
    begin = datetime.fromisoformat(start.replace("Z", "+00:00"))
    end = datetime.fromtimestamp(begin.timestamp() + minutes * 60, begin.tzinfo)
    return {"type": "cdr", "usage_id": usage_id, "org": org, "user": user, "call_type": "user_out",
            "caller_number": "+12065550100", "destination_number": "+12065550123", "start_time": start,
            "end_time": end.strftime("%Y-%m-%dT%H:%M:%SZ"), "duration_seconds": minutes * 60}


CONTOSO_USER, NORTHWIND_USER = "alice@contoso.example", "bob@northwind.example"
OPENINGS = _organization("contoso", "Contoso", "US", CONTOSO_USER) \
    + _organization("northwind", "Northwind <Traders>", "DE", NORTHWIND_USER)
HISTORY = [
    *_order("contoso", CONTOSO_USER, {"enabled": True, "recharge_amount": "20", "trigger_amount": "5"}, "2026-02"),
    *_order("northwind", NORTHWIND_USER, {"enabled": False, "recharge_amount": "20", "trigger_amount": "5"}, "2029-12"),
    _call("contoso", CONTOSO_USER, "c1", "2026-01-10T09:00:00Z", 300),
    _call("northwind", NORTHWIND_USER, "n1", "2026-01-10T10:00:00Z", 300),
    _call("northwind", NORTHWIND_USER, "n2", "2026-01-11T10:00:00Z", 100),
    {"type": "funds.added", "at": "2026-01-12T00:00:00Z", "org": "northwind", "amount": "10"},
    _call("northwind", NORTHWIND_USER, "n3", "2026-01-13T10:00:00Z", 400),
    _call("contoso", CONTOSO_USER, "c2", "2026-03-01T09:00:00Z", 1000),
    _call("contoso", CONTOSO_USER, "c3", "2026-03-02T09:00:00Z", 100),
    _call("contoso", CONTOSO_USER, "c4", "2026-03-03T09:00:00Z", 200),
    _call("contoso", CONTOSO_USER, "c5", "2026-03-03T20:00:00Z", 10),
    _call("contoso", CONTOSO_USER, "c6", "2026-03-04T09:00:00Z", 10),
    {"type": "payment_method.updated", "at": "2026-03-05T00:00:00Z", "org": "contoso",
     "payment": {"method": "card", "card": "visa-new", "expires": "2029-12"}},
    {"type": "funds.added", "at": "2026-03-06T00:00:00Z", "org": "contoso", "amount": "10"},
    {"type": "clock", "at": "2027-02-10T00:00:00Z"},
    {"type": "clock", "at": "2027-03-07T00:00:00Z"},
]


def write_history(store, *, contoso_webhooks: list[str] = (), northwind_webhooks: list[str] = (),
                  contoso_emails: list[str] = CONTOSO_EMAILS, northwind_emails: list[str] = NORTHWIND_EMAILS) -> int:
    """Store the scenario, with the billing contacts set right after the organizations were
    created; returns the store's last position."""
    app = BillingApplication(env=store.env)
    simulation = Simulation(app, SPEC_RATES, load_catalog(None))
    simulation.run(as_lines(OPENINGS))
    at = datetime.fromisoformat("2026-01-02T08:30:00+00:00")
    set_contacts(store, "contoso", list(contoso_emails), list(contoso_webhooks), None, at)
    set_contacts(store, "northwind", list(northwind_emails), list(northwind_webhooks), None, at)
    for line in as_lines(HISTORY):
        simulation.run([line])
    rejected = simulation.log.rejected
    last = app.recorder.max_notification_id() or 0
    app.close()
    assert not rejected, f"the scenario must apply cleanly: {rejected}"
    return last


def expected_emails(emails_by_org: dict[str, list[str]]) -> Counter:
    """(org, recipient, kind) → how many e-mails."""
    expected = Counter()
    for org, kinds in EXPECTED_KINDS.items():
        for recipient in emails_by_org.get(org, []):
            for kind, count in kinds.items():
                expected[(org, recipient, kind)] += count
    return expected


def database_url_of(store) -> str:
    """The COMMCREDITS_DATABASE_URL that selects `store` (for commands run as processes)."""
    env = store.env
    if env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
        return f"sqlite:///{env['SQLITE_DBNAME']}"
    schema = f"?schema={env['POSTGRES_SCHEMA']}" if env.get("POSTGRES_SCHEMA") else ""
    return (f"postgresql://{env['POSTGRES_USER']}@{env['POSTGRES_HOST']}:{env['POSTGRES_PORT']}/"
            f"{env['POSTGRES_DBNAME']}{schema}")
