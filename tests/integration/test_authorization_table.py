"""SPEC §13's decisions in the authorizations table, on every store: read back as made, ended in
place, decided once for ever, and carried over from a store whose decisions are
`CallAuthorization` aggregates."""

from datetime import datetime, timedelta, timezone

import pytest
from eventsourcing.persistence import IntegrityError

from application.authorization_table import record_of, row_of, table_name
from application.billing_application import BillingApplication
from application.side_tables import SQLITE_IDS_PER_STATEMENT
from application.reference_data import load_catalog
from application.service import BillingService
from application.settings import memory_store
from domain.call_authorization import AuthorizationRecord, CallAuthorization
from domain.credit_account import CreditAccount
from domain.payments import SimulatedGateway
from domain.reservations import DENIED, EXPIRED, OPEN, SETTLED
from domain.timestamps import encode_timestamp
from tests.support import SPEC_RATES, drop_table

AT = datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=timezone.utc)  # a leap day's last microsecond


def fields(call_id: str, *, allowed: bool = True) -> dict:
    """A decision as `decision_fields` makes it."""
    return {"call_id": call_id, "decision": "allowed" if allowed else DENIED,
            "code": None if allowed else "insufficient_funds", "max_seconds": 600 if allowed else 0,
            "pool": "US:CALLING_PLAN_DOMESTIC" if allowed else None, "held_minutes": 10 if allowed else 0,
            "held_amount": "0.3400" if allowed else "0", "at": encode_timestamp(AT),
            "expires_at": encode_timestamp(AT + timedelta(seconds=900)) if allowed else None}


def opened() -> CreditAccount:
    return CreditAccount.open("contoso", "Contoso", "US", "USD", "legacy", ["EA-1"],
                              datetime(2026, 1, 1, tzinfo=timezone.utc))


def read(app: BillingApplication, *call_ids: str) -> dict[str, dict]:
    return {call_id: record_of(call_id, row).as_record()
            for call_id, row in app.recorder.authorization_rows(list(call_ids)).items()}


def test_a_decision_reads_back_as_made_and_its_end_is_written_in_place(open_app):
    app = open_app()
    allowed, denied = AuthorizationRecord.decided("contoso", fields("c-1")), \
        AuthorizationRecord.decided("contoso", fields("c-2", allowed=False))
    app.save(authorizations=[row_of(allowed), row_of(denied)])
    assert read(open_app(), "c-1", "c-2", "c-3") == {"c-1": allowed.as_record(), "c-2": denied.as_record()}
    assert read(open_app(), "c-1")["c-1"]["expires_at"] == "2024-03-01T00:14:59Z"  # cut to whole seconds
    assert [allowed.status, denied.status] == [OPEN, DENIED]

    stored = record_of("c-1", open_app().recorder.authorization_rows(["c-1"])["c-1"])
    stored.end(SETTLED, encode_timestamp(AT))
    app.save(authorizations=[row_of(stored)])
    assert read(open_app(), "c-1")["c-1"] == {**allowed.as_record(), "status": SETTLED}
    assert open_app().recorder.authorization_rows(["c-1"])["c-1"][2] == encode_timestamp(AT)


def test_a_decision_and_its_end_in_one_save_store_the_end(open_app):
    record = AuthorizationRecord.decided("contoso", fields("c-1"))
    record.end(EXPIRED, encode_timestamp(AT))
    open_app().save(authorizations=[row_of(record)])
    assert read(open_app(), "c-1")["c-1"]["status"] == EXPIRED


def test_it_finds_exactly_the_decided_call_ids(open_app):
    decided = [f"c-{n}" for n in range(SQLITE_IDS_PER_STATEMENT + 3)]  # spans two SQLite statements
    open_app().save(authorizations=[row_of(AuthorizationRecord.decided("contoso", fields(call_id)))
                                    for call_id in decided])
    asked = decided[::2] + [f"unknown-{n}" for n in range(SQLITE_IDS_PER_STATEMENT + 7)]
    assert set(open_app().recorder.authorization_rows(asked)) == set(decided[::2])


@pytest.mark.parametrize("second", [["c-1"], ["c-2", "c-2"]], ids=["decided-before", "twice-in-one-save"])
def test_a_call_id_is_decided_once_and_a_second_decision_stores_nothing(open_app, second):
    app = open_app()
    app.save(authorizations=[row_of(AuthorizationRecord.decided("contoso", fields("c-1")))])
    account = opened()
    with pytest.raises(IntegrityError):
        app.save(account, authorizations=[row_of(AuthorizationRecord.decided("fabrikam", fields(call_id)))
                                          for call_id in second])
    observer = open_app()
    assert observer.recorder.select_events(account.id) == []  # the events of the save are not stored either
    assert read(observer, "c-1", "c-2") == {"c-1": AuthorizationRecord.decided("contoso", fields("c-1")).as_record()}


def test_an_end_in_a_save_that_fails_is_not_stored(open_app):
    app = open_app()
    app.save(opened(), authorizations=[row_of(AuthorizationRecord.decided("contoso", fields("c-1")))])
    ended = record_of("c-1", app.recorder.authorization_rows(["c-1"])["c-1"])
    ended.end(SETTLED, encode_timestamp(AT))
    with pytest.raises(IntegrityError):
        app.save(opened(), authorizations=[row_of(ended)])  # the account's first version again: a conflict
    assert read(open_app(), "c-1")["c-1"]["status"] == OPEN


def test_the_memory_store_keeps_decisions_too():
    app = BillingApplication(env=memory_store().env)
    record = AuthorizationRecord.decided("contoso", fields("c-1"))
    app.save(authorizations=[row_of(record)])
    assert read(app, "c-1", "zz") == {"c-1": record.as_record()}
    with pytest.raises(IntegrityError):
        app.save(opened(), authorizations=[row_of(record)])
    assert app.recorder.select_events(opened().id) == []


def test_the_decisions_of_a_store_from_before_the_table_are_carried_over(open_app):
    """A store written by the previous version holds a `CallAuthorization` aggregate per call id
    (`Decided`, then `Ended` once its reservation ended) and no table: opening it creates the
    table with their decisions and statuses, so a retry finds them and an open one can end."""
    app = open_app()
    settled, still_open = CallAuthorization.record("contoso", fields("old-settled")), \
        CallAuthorization.record("contoso", fields("old-open"))
    denied = CallAuthorization.record("fabrikam", fields('$odd "id"', allowed=False))
    settled.end(SETTLED, encode_timestamp(AT))
    app.save(settled, still_open, denied)
    app.save(authorizations=[row_of(AuthorizationRecord.decided("contoso", fields("new-1")))])
    drop_table(app, table_name(app.recorder.events_table_name))

    reopened = open_app()
    assert read(reopened, "old-settled", "old-open", '$odd "id"', "new-1") == {
        "old-settled": settled.as_record(), "old-open": still_open.as_record(), '$odd "id"': denied.as_record()}
    assert [settled.status, still_open.status, denied.status] == [SETTLED, OPEN, DENIED]
    assert reopened.recorder.authorization_rows(["old-settled"])["old-settled"][2] == encode_timestamp(AT)

    service = BillingService(reopened, SPEC_RATES, load_catalog(None), SimulatedGateway())
    assert service.authorization("old-open").as_record() == still_open.as_record()
    assert service.authorization("new-1") is None

