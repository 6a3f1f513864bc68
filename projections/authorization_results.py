"""Every call authorization decision and how its reservation ended (SPEC §13.3's
`authorizations`), from the accounts' `CallAuthorized` and `ReservationEnded` events."""

from typing import Any

from domain.credit_account import CreditAccount
from domain.reservations import DENIED, OPEN
from domain.timestamps import decode_timestamp, format_timestamp

EVENT_CLASSES = (CreditAccount.Opened, CreditAccount.CallAuthorized, CreditAccount.ReservationEnded)


class AuthorizationResults:
    def __init__(self) -> None:
        self._org_of: dict[Any, str] = {}
        self._results: dict[str, dict[str, Any]] = {}

    def apply(self, event: Any) -> None:
        if isinstance(event, CreditAccount.Opened):
            self._org_of[event.originator_id] = event.org
        elif isinstance(event, CreditAccount.CallAuthorized):
            self._results[event.call_id] = decision_record(self._org_of[event.originator_id], event)
        elif isinstance(event, CreditAccount.ReservationEnded):
            self._results[event.call_id]["status"] = event.status

    def document(self) -> dict[str, dict[str, Any]]:
        return self._results


def decision_record(org: str, decision: Any) -> dict[str, Any]:
    """SPEC §13.3's record of a decision (an account's `CallAuthorized`): instants cut to whole seconds."""
    expires_at = decision.expires_at
    return {"org": org, "decision": decision.decision, "code": decision.code, "max_seconds": decision.max_seconds,
            "pool": decision.pool, "held_minutes": decision.held_minutes, "held_amount": decision.held_amount,
            "status": DENIED if expires_at is None else OPEN,
            "expires_at": None if expires_at is None else format_timestamp(decode_timestamp(expires_at))}
