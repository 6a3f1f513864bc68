"""One round trip tells which of many aggregates exist, on every store."""

from uuid import uuid4

import pytest
from eventsourcing.persistence import PersistenceError

from application.billing_application import BillingApplication
from application.existing_aggregates import SQLITE_IDS_PER_STATEMENT, existing_aggregates
from application.settings import memory_store
from domain.usage_claim import UsageClaim


def claims_stored(app: BillingApplication, usage_ids: list[str]) -> None:
    app.save(*(UsageClaim.claim(usage_id, "contoso") for usage_id in usage_ids))


@pytest.mark.parametrize("how_many_unknown", [0, 1, SQLITE_IDS_PER_STATEMENT + 7])
def test_it_finds_exactly_the_stored_aggregates(open_app, how_many_unknown):
    app = open_app()
    stored = [f"u-{n}" for n in range(SQLITE_IDS_PER_STATEMENT + 3)]  # spans two SQLite statements
    claims_stored(app, stored)
    unknown = [uuid4() for _ in range(how_many_unknown)]
    asked = [UsageClaim.create_id(usage_id) for usage_id in stored[::2]] + unknown
    assert existing_aggregates(app.recorder, asked) == {UsageClaim.create_id(u) for u in stored[::2]}
    assert existing_aggregates(app.recorder, []) == set()


def test_it_works_on_the_memory_store_too():
    app = BillingApplication(env=memory_store().env)
    claims_stored(app, ["a", "b"])
    asked = [UsageClaim.create_id("a"), UsageClaim.create_id("zz")]
    assert existing_aggregates(app.recorder, asked) == {UsageClaim.create_id("a")}


def test_a_failing_store_raises_the_librarys_persistence_error(open_app, monkeypatch):
    """The consumer redoes a batch on eventsourcing's PersistenceError: the driver's own error
    must not escape and stop it."""
    app = open_app()
    monkeypatch.setattr(app.recorder, "events_table_name", "no_such_table")
    with pytest.raises(PersistenceError, match="no_such_table"):
        existing_aggregates(app.recorder, [UsageClaim.create_id("u-1")])
