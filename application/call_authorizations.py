"""The billing service's part of SPEC §13: deciding `call.authorize`, `call.released`, settling a
reservation by its CDR and expiring reservations in the expiry step.

A decision changes the organization's account (which holds the open reservation, and whose
version guards against a decision made on a stale balance) and writes the call's
`AuthorizationRecord` in the same transaction (the decision for ever, keyed by the call id in
`application.authorization_table`, so that a second writer deciding the same call at the same
moment conflicts instead of holding twice).
"""

from collections.abc import Iterable
from datetime import datetime

from application import commands
from application.commands import APPLIED, REPEATED
from application.authorization_table import record_of
from domain.authorization import CallRequest, Decision, Funds, decide, decision_fields
from domain.call_authorization import AuthorizationRecord
from domain.credit_account import CreditAccount
from domain.errors import UnknownAuthorization, UnknownUser
from domain.licence_registry import LicenceRegistry
from domain.pools import PoolKey, remaining_minutes
from domain.rating import Billing, Caller
from domain.reservations import EXPIRED, RELEASED
from domain.timestamps import encode_timestamp, month_key


class CallAuthorizationSteps:
    """Mixed into `BillingService`, whose unit of work, clock and caches it uses."""

    def _handle_AuthorizeCall(self, command: commands.AuthorizeCall) -> str:
        request = command.request
        account, registry = self.require_account(request.org), self._registry(request.org)
        caller = self._caller_of(registry, request.org, request.user)
        now = self._accept(request.at)
        if self.authorization(request.call_id) is not None:
            return REPEATED  # decided before, in this organization or another: the earlier decision stands
        decision = self._decide(request, caller, account, registry, now)
        fields = decision_fields(request, decision, now)  # as both events carry it
        account.record_authorization(request, fields, month_key(now))
        record = AuthorizationRecord.decided(request.org, fields)
        self._authorizations[request.call_id] = self._authorization_writes[request.call_id] = record
        self._changed(account)
        if decision.allowed:
            self._expiry_schedule.schedule_reservation(request.org, decision.expires_at,
                                                       self._creation_index[request.org])
        return APPLIED

    def _handle_ReleaseCall(self, command: commands.ReleaseCall) -> str:
        account = self.require_account(command.org)
        record = self.authorization(command.call_id)
        if record is None or record.org != command.org:
            raise UnknownAuthorization(f"organization {command.org!r} has no decision for call {command.call_id!r}")
        now = self._accept(command.at)
        if command.call_id not in account.reservations:
            return REPEATED  # settled, released, expired or denied already: nothing to release
        self._end_reservation(account, command.call_id, RELEASED, now)
        return APPLIED

    def authorization(self, call_id: str) -> AuthorizationRecord | None:
        """The decision made for `call_id` (in any organization), or None."""
        record = self._authorizations.get(call_id)
        if record is None and call_id not in self._undecided_call_ids:
            self.look_up_authorizations((call_id,))
            record = self._authorizations.get(call_id)
        return record

    def look_up_authorizations(self, call_ids: Iterable[str]) -> None:
        """Read in one round trip the decisions the store holds for a batch's call ids, so that
        deciding them asks the store nothing more. Holds until the next flush or discard: a
        decision another writer stores meanwhile makes our save conflict, never a second decision."""
        asked = list({call_id for call_id in call_ids
                      if call_id not in self._authorizations and call_id not in self._undecided_call_ids})
        if not asked:
            return
        found = self.app.recorder.authorization_rows(asked)
        for call_id in asked:
            row = found.get(call_id)
            if row is None:
                self._undecided_call_ids.add(call_id)
            else:
                self._authorizations[call_id] = record_of(call_id, row)

    def _decide(self, request: CallRequest, caller: Caller | None, account: CreditAccount,
                registry: LicenceRegistry, now: datetime) -> Decision:
        month = month_key(now)

        def available_minutes(pool: PoolKey) -> int:
            left = remaining_minutes(self.catalog, pool, registry.pool_contributors(pool), account.pool_used(month, pool))
            return max(0, left - account.held_minutes(month, pool))

        funds = Funds(account.balance, account.held_amount,
                      account.auto_recharge.enabled and not account.suspended)
        billing = Billing(account.currency, account.commerce, account.credits_active)
        return decide(request, caller, billing, available_minutes, funds, self.rate_card, self.catalog, now)

    def _caller_of(self, registry: LicenceRegistry, org: str, user: str | None) -> Caller | None:
        if user is None:
            return None
        if not registry.has_user(user):
            raise UnknownUser(f"user {user!r} does not exist in organization {org!r}")
        return registry.caller(user)

    def _settling(self, account: CreditAccount, call_id: str | None, line_time: datetime) -> str | None:
        """The CDR's reservation if it will still be open after the line's expiry step (SPEC §13.2)."""
        reservation = account.reservations.get(call_id) if call_id is not None else None
        return call_id if reservation is not None and reservation.expires_at > line_time else None

    def _expire_reservations(self, account: CreditAccount, now: datetime) -> None:
        ended = account.expire_reservations(now)
        for call_id in ended:
            self._record_end(call_id, EXPIRED, now)
        if ended:
            self._changed(account)

    def _end_reservation(self, account: CreditAccount, call_id: str, status: str, at: datetime,
                         usage_id: str | None = None) -> None:
        account.end_reservation(call_id, status, at, usage_id)
        self._record_end(call_id, status, at)
        self._changed(account)

    def _record_end(self, call_id: str, status: str, at: datetime) -> None:
        record = self.authorization(call_id)
        assert record is not None, f"an open reservation without its decision: {call_id}"
        record.end(status, encode_timestamp(at))
        self._authorization_writes[call_id] = record

    def _schedule_reservations(self, account: CreditAccount) -> None:
        for reservation in account.reservations.values():
            self._expiry_schedule.schedule_reservation(account.org, reservation.expires_at,
                                                       self._creation_index[account.org])
