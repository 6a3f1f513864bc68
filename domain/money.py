"""Exact money (SPEC §2): decimal strings in, `Decimal` inside, 4-decimal strings out."""

import re
from decimal import Decimal

from domain.errors import InvalidInput, shown

MONEY_SCALE = Decimal("0.0001")
MAX_AMOUNT = Decimal("1000000")
ZERO = Decimal("0.0000")
_MONEY_TEXT = re.compile(r"[0-9]+(?:\.[0-9]{1,4})?")


def parse_money(text: object, *, field: str = "amount", allow_zero: bool = False) -> Decimal:
    """Read a money string strictly; every input amount is <= 1,000,000 and > 0 unless
    `allow_zero` (funds of an order, rates, the trigger)."""
    if not isinstance(text, str) or not _MONEY_TEXT.fullmatch(text):
        raise InvalidInput(f"{field} must be a decimal string with at most 4 decimals, got {shown(text)}")
    amount = Decimal(text)
    if amount > MAX_AMOUNT:  # before quantize(), which fails beyond the context's 28 digits
        raise InvalidInput(f"{field} must be at most 1000000, got {shown(text)}")
    amount = amount.quantize(MONEY_SCALE)
    if amount == 0 and not allow_zero:
        raise InvalidInput(f"{field} must be greater than 0, got {shown(text)}")
    return amount


def format_money(amount: Decimal) -> str:
    return str(amount.quantize(MONEY_SCALE))


def to_money(text: str) -> Decimal:
    """Read an amount this system wrote itself (an event field): trusted, so no range checks."""
    return Decimal(text).quantize(MONEY_SCALE)
