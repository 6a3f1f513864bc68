"""Two administrators changing the same organization at once: one wins, the other is told to
retry and nothing of its step is stored (optimistic concurrency of the event store)."""

import pytest

from commcredits.admin import Admin, ConcurrentUpdate

ORG = "contoso"


def setup_organization(store) -> None:
    admin = Admin(store)
    admin.run({"type": "organization.created", "org": ORG, "name": "Contoso", "country": "US", "currency": "USD",
               "commerce": "legacy", "agreements": ["EA-1"], "at": "2026-01-01T00:00:00Z"})
    admin.run({"type": "order.placed", "org": ORG, "order": "o-1", "funds": "100",
               "auto_recharge": {"enabled": False},
               "payment": {"method": "enterprise_agreement", "agreement": "EA-1", "po": None},
               "at": "2026-01-01T00:00:00Z"})
    admin.close()


def funds(amount: str, request_id: str) -> dict:
    return {"type": "funds.added", "org": ORG, "amount": amount, "request_id": request_id,
            "at": "2026-01-02T00:00:00Z"}


def test_the_second_of_two_concurrent_steps_is_refused_and_leaves_nothing(store):
    setup_organization(store)
    first, second = Admin(store), Admin(store)  # both have read the account at the same version
    first.run(funds("10", "a"))
    with pytest.raises(ConcurrentUpdate, match="run the command again"):
        second.run(funds("20", "b"))
    first.close()
    second.close()

    fresh = Admin(store)
    account = fresh.account(ORG)
    assert account.balance == 110  # 100 + 10; the refused 20 is not there
    assert account.request_ids == {"a"}
    # Retried after the refusal, the step goes through.
    fresh.run(funds("20", "b"))
    assert fresh.account(ORG).balance == 130
    fresh.close()
