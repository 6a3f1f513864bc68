"""Funds expire at their time with no CDR arriving; a tick with nothing due stores nothing."""

from datetime import datetime, timezone

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from commcredits.simulate import Simulation, report_document
from consumers.expiry_scheduler import ExpiryScheduler
from domain.credit_account import CreditAccount
from tests.support import SPEC_RATES, as_lines

SETUP = [
    {"type": "organization.created", "at": "2024-02-29T10:00:00Z", "org": "acme", "name": "Acme", "country": "US",
     "currency": "USD", "commerce": "legacy", "agreements": ["EA-1"]},
    {"type": "order.placed", "at": "2024-02-29T10:00:00Z", "org": "acme", "order": "o-1", "funds": "40",
     "auto_recharge": {"enabled": True, "recharge_amount": "25", "trigger_amount": "10"},
     "payment": {"method": "enterprise_agreement", "agreement": "EA-1", "po": None}},
]


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def test_a_lot_expires_when_due_and_the_trigger_recharges_with_no_cdr(store):
    app = BillingApplication(env=store.env)
    simulation = Simulation(app, SPEC_RATES, load_catalog(None))
    simulation.run(as_lines(SETUP))
    times = iter([utc(2025, 1, 29, 9, 59, 59), utc(2025, 1, 29, 10, 0, 0),
                  utc(2025, 2, 28, 9, 59, 59), utc(2025, 2, 28, 10, 0, 0)])
    scheduler = ExpiryScheduler(simulation.service, now=lambda: next(times))

    # leap-day lot: expires 2025-02-28T10:00:00Z, announced 30 days before, 2025-01-29T10:00:00Z
    events_before = app.recorder.max_notification_id()
    assert scheduler.tick() is False  # one second before the notice: nothing is stored
    assert app.recorder.max_notification_id() == events_before
    assert scheduler.tick() is True
    topics = [notification.topic for notification in app.recorder.select_notifications(events_before + 1, 100)]
    assert [topic for topic in topics if "CreditAccount" in topic] == [
        "domain.credit_account:CreditAccount.ExpiryApproached"]
    assert app.repository.get(CreditAccount.create_id("acme")).lots[0].noticed

    events_before = app.recorder.max_notification_id()
    assert scheduler.tick() is False  # one second before the expiry
    assert app.recorder.max_notification_id() == events_before
    assert scheduler.tick() is True
    acme = report_document(app, simulation.log)["organizations"]["acme"]
    app.close()
    # 40 expired at 10:00:00; 0 < trigger 10 → one recharge of 25, dated at the expiry.
    assert acme["balance"] == "25.0000"
    assert acme["totals"]["expired"] == "40.0000"
    assert acme["depleted"] == 1
    assert acme["recharges"] == {"triggered": 1, "succeeded": 1, "failed": 0}
    assert acme["lots"][1]["added_at"] == "2025-02-28T10:00:00Z"
