"""One result per rated call (SPEC §11's `calls`), from `CallRated` events."""

from typing import Any

from domain.credit_account import CreditAccount

EVENT_CLASSES = (CreditAccount.CallRated,)


def call_result(event: CreditAccount.CallRated) -> dict[str, Any]:
    return {
        "kind": event.kind, "billed_minutes": event.billed_minutes, "covered_minutes": event.covered_minutes,
        "pool": event.pool, "charge": event.charge, "debited": event.debited, "uncollected": event.uncollected,
        "overage": event.overage, "reason": event.reason,
    }
