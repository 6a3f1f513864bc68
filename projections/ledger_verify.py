"""`commcredits audit verify`: recompute the ledger from the events and check it line by line.

Checks, in one pass over the events and the entries (both in store order, bounded memory):
1. entries are numbered 1, 2, 3 ... and each one's `previous_hash` is the hash of the one before;
2. each entry's hash matches its contents, and its lines balance;
3. each money event has exactly its entry: same position, type, organization and lines, and the
   event's digest is the one recorded (an event changed after it was journaled is caught here);
   no entry points at an event the store does not hold;
4. each organization's credit balance is the same in the ledger, the balance view and the
   account aggregate rebuilt from its events.
The first problem found is named first; all are listed (up to `MAX_PROBLEMS`).
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import orjson

from application.billing_application import BillingApplication
from domain.credit_account import CreditAccount
from domain.money import ZERO, format_money
from projections.balance_queries import organization_report, organizations
from projections.balance_view import BalanceView
from projections.ledger import Ledger, ledger_entries
from projections.ledger_rules import (
    GENESIS_HASH,
    MONEY_EVENTS,
    PREPAID,
    entry_hash,
    event_digest,
    is_balanced,
    journal_lines,
)
from projections.sources import StoreLog
from projections.view_database import ViewDatabase

PAGE_SIZE = 1000
MAX_PROBLEMS = 100


@dataclass
class Findings:
    """What a verification found wrong: the first `MAX_PROBLEMS`, each named."""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def found(self, problem: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


@dataclass
class Verification(Findings):
    entries: int = 0
    events: int = 0
    organizations: int = 0


@dataclass(frozen=True)
class _Expected:
    position: int
    event_type: str
    digest: str
    org: str
    lines: list


def verify_ledger(app: BillingApplication, database: ViewDatabase, ledger: Ledger,
                  balances: BalanceView) -> Verification:
    result = Verification()
    prepaid: dict[str, Decimal] = {}
    expected_events = _expected_entries(app, result)
    pending = next(expected_events, None)
    previous_hash, number = GENESIS_HASH, 0
    for row in ledger_entries(database, ledger):
        number += 1
        result.entries += 1
        entry_number, position, org, event_type, digest, lines_json, row_previous, row_hash = row
        lines = orjson.loads(lines_json)
        where = f"entry {entry_number} (event {position}, {event_type})"
        while pending is not None and pending.position < position:
            result.found(f"event {pending.position} ({pending.event_type}) moves money but has no ledger entry")
            pending = next(expected_events, None)
        if entry_number != number:
            result.found(f"{where}: expected entry number {number}: an entry is missing or inserted")
            number = entry_number
        if row_previous != previous_hash:
            result.found(f"{where}: previous_hash does not match the hash of the entry before: the chain is broken")
        if entry_hash(entry_number, position, event_type, digest, org, lines, row_previous) != row_hash:
            result.found(f"{where}: its hash does not match its contents: the entry was changed")
        if not is_balanced(lines):
            result.found(f"{where}: debits and credits do not balance")
        previous_hash = row_hash
        if pending is None or pending.position != position:
            result.found(f"{where}: the store holds no money event at position {position}")
            continue
        if pending.digest != digest:
            result.found(f"event {position} ({event_type}): its stored contents changed after it was journaled "
                         f"in entry {entry_number}")
        elif pending.lines != lines or pending.org != org or pending.event_type != event_type:
            result.found(f"{where}: its lines are not what the event posts")
        for line in lines:
            if line["account"] == PREPAID:
                prepaid[org] = prepaid.get(org, ZERO) + Decimal(line["credit"]) - Decimal(line["debit"])
        pending = next(expected_events, None)
    while pending is not None:
        result.found(f"event {pending.position} ({pending.event_type}) moves money but has no ledger entry")
        pending = next(expected_events, None)
    _check_balances(app, database, balances, prepaid, result)
    return result


def _expected_entries(app: BillingApplication, result: Verification) -> Iterator[_Expected]:
    log, org_of = StoreLog(app), {}
    end, after = log.end(), 0
    while True:
        records = log.read(after, PAGE_SIZE, end, MONEY_EVENTS | {"CreditAccount.Opened"})
        for record in records:
            if record.type == "CreditAccount.Opened":
                org_of[record.aggregate_id] = record.data["org"]
                continue
            result.events += 1
            lines = journal_lines(record)
            if lines:
                yield _Expected(record.position, record.type, event_digest(record),
                                org_of.get(record.aggregate_id, "?"), lines)
        if len(records) < PAGE_SIZE:
            return
        after = records[-1].position


def _check_balances(app: BillingApplication, database: ViewDatabase, balances: BalanceView,
                    prepaid: dict[str, Decimal], result: Verification) -> None:
    for org in organizations(database, balances):
        result.organizations += 1
        in_ledger = format_money(prepaid.get(org, ZERO))
        in_view = organization_report(database, balances, org)["balance"]
        try:
            in_account = format_money(app.repository.get(CreditAccount.create_id(org)).balance)
        except Exception as error:  # a changed event can make the history impossible to replay
            in_account = f"unreadable ({type(error).__name__}: {error})"
        if not in_ledger == in_view == in_account:
            result.found(f"organization {org}: credit balance {in_ledger} in the ledger, {in_view} in the balance "
                         f"view, {in_account} in the account")
