"""SPEC §13.4 read back from an event history: what the concurrency and property tests assert.

The moment of a decision is the account as it stood just before its `CallAuthorized` event (the
expiry step of the same line included). With several writers this is still the state the
decision was made on: the save of a decision made on an older version of the account conflicts
and is decided again. Pool capacity comes from the licence registry, whose licences do not change
after the tests' set-up.
"""

from decimal import Decimal

from application.billing_application import BillingApplication
from domain.catalog import Catalog
from domain.credit_account import CreditAccount
from domain.licence_registry import LicenceRegistry
from domain.money import ZERO, to_money
from domain.pools import PoolKey, pool_capacity


def decisions_of(app: BillingApplication, org: str) -> list[CreditAccount.CallAuthorized]:
    return [event for event in app.events.get(CreditAccount.create_id(org))
            if isinstance(event, CreditAccount.CallAuthorized)]


def assert_every_decision_held_at_most_its_moments_p_and_f(app: BillingApplication, org: str,
                                                         catalog: Catalog) -> list[CreditAccount.CallAuthorized]:
    """No call id decided twice; every allowed decision held at most the pool minutes `P` and
    (without live auto-recharge) the money `F` of its moment. Returns the decisions."""
    account_id = CreditAccount.create_id(org)
    registry = app.repository.get(LicenceRegistry.create_id(org))
    decisions = decisions_of(app, org)
    call_ids = [event.call_id for event in decisions]
    assert len(set(call_ids)) == len(call_ids), "a call id decided twice"
    for event in decisions:
        if event.decision != "allowed":
            continue
        before = app.repository.get(account_id, version=event.originator_version - 1)
        if event.pool is not None:
            pool = PoolKey.parse(event.pool)
            capacity = pool_capacity(catalog, pool, registry.pool_contributors(pool))
            available = capacity - before.pool_used(event.pool_month, pool) - before.held_minutes(event.pool_month, pool)
            assert event.held_minutes <= max(0, available), (event.call_id, event.held_minutes, available)
        else:
            assert event.held_minutes == 0, event.call_id
        live = before.auto_recharge.enabled and not before.suspended
        funds = max(ZERO, before.balance - before.held_amount)
        if not live:
            assert to_money(event.held_amount) <= funds, (event.call_id, event.held_amount, funds)
        assert to_money(event.held_amount) >= Decimal(0)
    return decisions
