"""SPEC §10's rated usage ids in the claims table, on every store: found in one round trip,
claimed once for ever, and carried over from a store whose claims are `UsageClaimed` events."""

from datetime import datetime, timezone

import pytest
from eventsourcing.persistence import IntegrityError

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from application.service import BillingService
from application.settings import memory_store
from application.usage_claims import SQLITE_IDS_PER_STATEMENT, claims_table_name
from domain.credit_account import CreditAccount
from domain.payments import SimulatedGateway
from domain.usage_claim import UsageClaim
from tests.support import SPEC_RATES, drop_table


def opened() -> CreditAccount:
    return CreditAccount.open("contoso", "Contoso", "US", "USD", "legacy", ["EA-1"],
                              datetime(2026, 1, 1, tzinfo=timezone.utc))


def test_it_finds_exactly_the_claimed_usage_ids(open_app):
    app = open_app()
    claimed = [f"u-{n}" for n in range(SQLITE_IDS_PER_STATEMENT + 3)]  # spans two SQLite statements
    app.save(usage_claims=[(usage_id, "contoso") for usage_id in claimed])
    asked = claimed[::2] + [f"unknown-{n}" for n in range(SQLITE_IDS_PER_STATEMENT + 7)]
    assert open_app().recorder.claimed_usage_ids(asked) == set(claimed[::2])
    assert app.recorder.claimed_usage_ids([]) == set()


@pytest.mark.parametrize("second", [[("u-1", "fabrikam")], [("u-2", "contoso"), ("u-2", "contoso")]],
                         ids=["claimed-before", "twice-in-one-save"])
def test_a_usage_id_is_claimed_once_and_a_second_claim_stores_nothing(open_app, second):
    app = open_app()
    app.save(usage_claims=[("u-1", "contoso")])
    account = opened()
    with pytest.raises(IntegrityError):
        app.save(account, usage_claims=second)
    observer = open_app()
    assert observer.recorder.select_events(account.id) == []  # the events of the save are not stored either
    assert observer.recorder.claimed_usage_ids(["u-1", "u-2"]) == {"u-1"}


def test_the_memory_store_keeps_claims_too():
    app = BillingApplication(env=memory_store().env)
    app.save(usage_claims=[("a", "contoso")])
    assert app.recorder.claimed_usage_ids(["a", "zz"]) == {"a"}
    account = opened()
    with pytest.raises(IntegrityError):
        app.save(account, usage_claims=[("a", "contoso")])
    assert app.recorder.select_events(account.id) == []


def test_the_claims_of_a_store_from_before_the_table_are_carried_over(open_app, store):
    """A store written by the previous version holds a `UsageClaimed` event per rated CDR and no
    claims table: opening it creates the table with those usage ids, so they stay duplicates."""
    app = open_app()
    app.save(*(UsageClaim.claim(usage_id, "contoso") for usage_id in ["old-1", "old-2", "$odd \"id\""]))
    app.save(usage_claims=[("new-1", "contoso")])
    drop_table(app, claims_table_name(app.recorder.events_table_name))
    reopened = open_app()
    assert reopened.recorder.claimed_usage_ids(["old-1", "old-2", "$odd \"id\"", "new-1", "x"]) == \
        {"old-1", "old-2", "$odd \"id\""}
    service = BillingService(reopened, SPEC_RATES, load_catalog(None), SimulatedGateway())
    assert service.is_rated("old-2") and not service.is_rated("new-1")


def test_the_services_batch_look_up_agrees_with_asking_one_by_one(open_app):
    open_app().save(usage_claims=[("rated-1", "contoso"), ("rated-2", "contoso")])
    service = BillingService(open_app(), SPEC_RATES, load_catalog(None), SimulatedGateway())
    asked = ["rated-1", "new-1", "rated-2", "new-2", "new-1"]
    one_by_one = [service.is_rated(usage_id) for usage_id in asked]
    service.look_up_usage_ids(asked)
    assert [service.is_rated(usage_id) for usage_id in asked] == one_by_one == [True, False, True, False, False]
    open_app().save(usage_claims=[("new-1", "contoso")])  # another writer claims it after our look-up
    service.flush()  # a batch ends: what was learnt is forgotten
    assert service.is_rated("new-1")
