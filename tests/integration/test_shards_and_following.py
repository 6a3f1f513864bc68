"""A live engine's billing service beside other writers: it owns a shard (the organizations of
one CDR partition) with a clock of its own, and it follows what the admin CLI stores while it
runs: new organizations, users, licences and funds."""

from datetime import datetime, timezone

import orjson
import pytest

from application.billing_application import BillingApplication
from application.commands import AdvanceClock, RateCdr
from application.inputs import cdr_from_document
from application.reference_data import load_catalog
from application.service import APPLIED, BillingService
from application.shard import Shard, partition_for_key
from commcredits.admin import Admin
from domain.errors import UnknownUser
from domain.payments import SimulatedGateway
from tests.support import SPEC_RATES

UTC = timezone.utc
TOPIC = "cdr.v1"


def org_created(org: str, at: str = "2026-01-01T00:00:00Z") -> dict:
    return {"type": "organization.created", "at": at, "org": org, "name": org.title(), "country": "US",
            "currency": "USD", "commerce": "legacy", "agreements": ["EA-1"]}


def user_added(org: str, user: str, at: str = "2026-01-01T00:00:00Z") -> dict:
    return {"type": "user.added", "at": at, "org": org, "user": user, "usage_location": "US"}


def licences(org: str, user: str, names: list[str], at: str = "2026-01-01T00:00:00Z") -> dict:
    return {"type": "licences.assigned", "at": at, "org": org, "users": [user], "licences": names}


def order(org: str, funds: str, at: str = "2026-01-02T00:00:00Z") -> dict:
    return {"type": "order.placed", "at": at, "org": org, "order": f"{org}-o1", "funds": funds,
            "auto_recharge": {"enabled": False},
            "payment": {"method": "enterprise_agreement", "agreement": "EA-1", "po": "PO-1"}}


def call(org: str, user: str, usage_id: str, end: str = "2026-01-05T10:05:00Z") -> RateCdr:
    return RateCdr(cdr_from_document({
        "usage_id": usage_id, "org": org, "user": user, "call_type": "user_out", "caller_number": "+14255550100",
        "destination_number": "+442071234567", "start_time": "2026-01-05T10:00:00Z", "end_time": end,
        "duration_seconds": 300}))


def engine(store, shard: Shard | None = None) -> BillingService:
    return BillingService(BillingApplication(env=store.env), SPEC_RATES, load_catalog(None), SimulatedGateway(),
                          shard=shard)


def admin_steps(store, *documents: dict) -> None:
    admin = Admin(store)
    try:
        for document in documents:
            admin.refresh()
            admin.run(orjson.loads(orjson.dumps(document)))
    finally:
        admin.close()


def orgs_on_two_partitions() -> tuple[str, str]:
    """Two organization names that Kafka's default partitioner puts on partitions 0 and 1 of 2."""
    names = [f"org-{n}" for n in range(50)]
    first = next(name for name in names if partition_for_key(name.encode(), 2) == 0)
    second = next(name for name in names if partition_for_key(name.encode(), 2) == 1)
    return first, second


def test_a_shard_loads_only_its_organizations_and_keeps_its_own_clock(store):
    mine, theirs = orgs_on_two_partitions()
    admin_steps(store, org_created(mine), org_created(theirs), order(mine, "10"), order(theirs, "10"))
    shard = Shard(TOPIC, 0, 2)
    service = engine(store, shard)
    try:
        assert service.organizations() == [mine]
        assert service.clock == datetime(2026, 1, 2, tzinfo=UTC)  # from the shared clock of the admin steps
        service.handle(AdvanceClock(datetime(2027, 1, 3, tzinfo=UTC)))  # past both lots' expiry
        service.flush()
        assert service.account(mine).balance == 0
    finally:
        service.app.close()
    other = engine(store, Shard(TOPIC, 1, 2))
    try:
        assert other.account(theirs).balance == 10  # another shard's clock did not expire it
        assert other.clock == datetime(2026, 1, 2, tzinfo=UTC)
    finally:
        other.app.close()
    admin = Admin(store)
    try:
        # the shared clock reads the latest of all clocks: the engine's time is the latest accepted command
        assert admin.service.clock == datetime(2027, 1, 3, tzinfo=UTC)
    finally:
        admin.close()


def test_an_organization_created_while_the_engine_runs_has_its_funds_scheduled_to_expire(store):
    admin_steps(store, org_created("first"))
    service = engine(store, Shard(TOPIC, 0, 1))
    try:
        assert service.next_expiry_at() is None
        admin_steps(store, org_created("late"), order("late", "30", at="2026-02-10T00:00:00Z"))
        assert service.next_expiry_at() is None  # not yet followed
        assert service.follow_store() == 1
        # the lot expires 2027-02-10; the scheduler first wakes 30 days before, to announce it
        assert service.next_expiry_at() == datetime(2027, 1, 11, tzinfo=UTC)
        assert service.organizations() == ["first", "late"]
        assert service.clock == datetime(2026, 2, 10, tzinfo=UTC)  # the admin's time, adopted
        assert service.follow_store() == 0  # nothing new
    finally:
        service.app.close()


def test_users_and_licences_added_while_the_engine_runs_are_used_for_the_next_calls(store):
    admin_steps(store, org_created("contoso"), user_added("contoso", "alice@contoso.com"),
                licences("contoso", "alice@contoso.com", ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC"]), order("contoso", "20"),
                licences("contoso", "alice@contoso.com", ["COMMUNICATIONS_CREDITS"], at="2026-01-02T00:00:00Z"))
    service = engine(store, Shard(TOPIC, 0, 1))
    try:
        assert service.handle(call("contoso", "alice@contoso.com", "u1")) == APPLIED
        service.flush()
        admin_steps(store, user_added("contoso", "bob@contoso.com", at="2026-01-05T11:00:00Z"),
                    licences("contoso", "bob@contoso.com", ["PHONE_SYSTEM", "CALLING_PLAN_DOMESTIC", "COMMUNICATIONS_CREDITS"],
                             at="2026-01-05T11:00:00Z"))
        with pytest.raises(UnknownUser):  # the engine has not looked at the store since
            service.handle(call("contoso", "bob@contoso.com", "u2", end="2026-01-05T12:00:00Z"))
        admin_steps(store, {"type": "funds.added", "at": "2026-01-05T11:30:00Z", "org": "contoso", "amount": "5"})
        assert service.follow_store() == 1
        assert service.handle(call("contoso", "bob@contoso.com", "u2", end="2026-01-05T12:00:00Z")) == APPLIED
        service.flush()  # no conflict: the account the admin changed was read again first
        assert service.account("contoso").funds_added == 25
    finally:
        service.app.close()
