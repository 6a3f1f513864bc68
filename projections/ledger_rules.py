"""The audit ledger's rules: which journal lines each money event posts, and how entries are
chained. Pure functions of the event records, so the ledger can always be recomputed from the
events and compared with what was recorded (`projections.ledger_verify`).

Accounts (per organization):
- `customer_prepaid_credit`: what the organization has prepaid and not yet used or lost
  (a liability); its balance is the organization's credit balance.
- `payments_receivable`: what its payment method (card, Enterprise Agreement) owes for funds added.
- `call_revenue`: every call's charge.
- `expiry_breakage`: prepaid funds that expired unused (SPEC §7).
- `overage_receivable`: overage of NCE organizations, invoiced after use (SPEC §9).
- `uncollected_charges`: charges that neither credit nor overage covered (SPEC §8).

Postings: funds added (order, manual, auto-recharge) debit payments receivable and credit
prepaid credit; a call debits prepaid credit by what it took from the lots, overage receivable
by its overage and uncollected charges by its uncollected part, and credits call revenue with
the whole charge; an expiry debits prepaid credit and credits breakage. Every entry balances.

Chain: each entry's hash is SHA-256 over its canonical JSON (its number, the event's position,
type and digest, the organization, the lines) and the previous entry's hash, in event-store
order. The event digest is SHA-256 of the event's canonical document, so a stored event changed
after it was journaled no longer matches its entry.
"""

import hashlib
from decimal import Decimal
from typing import Any

import orjson

from domain.money import ZERO, format_money, to_money
from projections.records import EventRecord

GENESIS_HASH = "0" * 64
PREPAID, RECEIVABLE, REVENUE = "customer_prepaid_credit", "payments_receivable", "call_revenue"
BREAKAGE, OVERAGE, UNCOLLECTED = "expiry_breakage", "overage_receivable", "uncollected_charges"
ACCOUNTS = (PREPAID, RECEIVABLE, REVENUE, BREAKAGE, OVERAGE, UNCOLLECTED)
MONEY_EVENTS = frozenset({"CreditAccount.FundsAdded", "CreditAccount.CallRated", "CreditAccount.FundsExpired"})


def journal_lines(record: EventRecord) -> list[dict[str, str]]:
    """The lines an event posts (empty: it moves no money)."""
    data = record.data
    if record.type == "CreditAccount.FundsAdded":
        amount = to_money(data["amount"])
        return [_line(RECEIVABLE, debit=amount), _line(PREPAID, credit=amount)]
    if record.type == "CreditAccount.FundsExpired":
        amount = to_money(data["amount"])
        return [_line(PREPAID, debit=amount), _line(BREAKAGE, credit=amount)]
    if record.type == "CreditAccount.CallRated":
        parts = [(PREPAID, to_money(data["debited"])), (OVERAGE, to_money(data["overage"])),
                 (UNCOLLECTED, to_money(data["uncollected"]))]
        lines = [_line(account, debit=amount) for account, amount in parts if amount > 0]
        total = sum((amount for _, amount in parts), ZERO)
        return lines + [_line(REVENUE, credit=total)] if total > 0 else []
    return []


def is_balanced(lines: list[dict[str, str]]) -> bool:
    return sum((Decimal(line["debit"]) for line in lines), ZERO) == sum((Decimal(line["credit"]) for line in lines), ZERO)


def event_digest(record: EventRecord) -> str:
    document = {"type": record.type, "version": record.version, "aggregate_id": record.aggregate_id,
                "aggregate_version": record.aggregate_version, "timestamp": record.timestamp,
                "position": record.position, "data": record.data}
    return hashlib.sha256(orjson.dumps(document, option=orjson.OPT_SORT_KEYS)).hexdigest()


def entry_hash(number: int, position: int, event_type: str, digest: str, org: str,
               lines: list[dict[str, str]], previous_hash: str) -> str:
    body = {"number": number, "position": position, "type": event_type, "event_digest": digest, "org": org,
            "lines": lines, "previous_hash": previous_hash}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _line(account: str, *, debit: Decimal = ZERO, credit: Decimal = ZERO) -> dict[str, str]:
    return {"account": account, "debit": format_money(debit), "credit": format_money(credit)}


def lines_text(lines: list[dict[str, Any]]) -> str:
    return orjson.dumps(lines, option=orjson.OPT_SORT_KEYS).decode()
