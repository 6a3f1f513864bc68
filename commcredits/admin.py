"""The administrator's steps (create organization, users, licences, order, funds, settings) on a
persistent event store.

Every step goes through the same path as a line of `simulate`: a JSON document validated by the
wire models of `application.inputs` (so the errors and their SPEC codes are the same), then the
billing service (decide → accept → apply). A step that spans several commands (importing many
users) is all or nothing: every command is decided first, and the changes are saved in one
transaction only when none was rejected.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import IntegrityError, PersistenceError

from application.future_guard import FutureGuard
from application.inputs import command_from_document
from application.reference_data import load_catalog, load_rate_card
from application.settings import StoreSettings
from commcredits.composition import billing_service, open_application
from domain.credit_account import CreditAccount
from domain.errors import DomainError
from domain.payments import PaymentGateway


class ConcurrentUpdate(Exception):
    """Another process changed the same organization between our read and our save."""


class StoreUnavailable(Exception):
    """The event store cannot be opened or written (configuration or infrastructure)."""


@dataclass(frozen=True)
class RowRejected:
    """One failing command of a bulk step: which row and why."""
    row: int
    error: DomainError


class BulkRejected(DomainError):
    """A bulk step where some rows were rejected: nothing was applied. The code is the first
    failing row's (as a bulk licence change reports its first failing user, SPEC §4)."""

    def __init__(self, failures: list[RowRejected], what: str) -> None:
        lines = "; ".join(f"row {failure.row}: {failure.error}" for failure in failures)
        super().__init__(f"{len(failures)} of the {what} rejected, nothing applied: {lines}")
        self.code = failures[0].error.code
        self.failures = failures


class Admin:
    """Runs administrator steps against the store; one instance per CLI invocation."""

    def __init__(self, store: StoreSettings, gateway: PaymentGateway | None = None,
                 future_guard: FutureGuard | None = None) -> None:
        self.store = store
        try:
            self.app = open_application(store)
            self.service = billing_service(self.app, load_rate_card(None), load_catalog(None), gateway=gateway,
                                           future_guard=future_guard)
        except PersistenceError as error:
            raise StoreUnavailable(f"{store.description}: {error}") from None

    def close(self) -> None:
        self.app.close()

    def run(self, document: dict[str, Any]) -> str:
        """Apply one step (a SPEC §11 line as a document) and save it; returns the service's outcome."""
        outcome = self.service.handle(command_from_document(document))
        self._save()
        return outcome

    def run_all(self, documents: Iterable[tuple[int, dict[str, Any]]], what: str) -> int:
        """Apply every (row, document) or none: all rejections are reported together."""
        failures, applied = [], 0
        for row, document in documents:
            try:
                self.service.handle(command_from_document(document))
                applied += 1
            except DomainError as error:
                failures.append(RowRejected(row, error))
        if failures:
            self.service.discard()
            raise BulkRejected(failures, what)
        self._save()
        return applied

    def refresh(self) -> None:
        """Forget what this instance read: another writer (the live consumer) may have moved on."""
        self.service.discard()

    def account(self, org: str) -> CreditAccount:
        return self.service.require_account(org)

    def _save(self) -> None:
        try:
            self.service.flush()
        except IntegrityError:
            raise ConcurrentUpdate("another process changed this organization at the same time; "
                                   "nothing was saved, run the command again") from None
        except PersistenceError as error:
            raise StoreUnavailable(str(error)) from None
