"""Payment methods (SPEC §9) and the gateway port the engine charges them through."""

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from domain.codes import parse_identifier
from domain.errors import InvalidInput, shown
from domain.money import format_money
from domain.timestamps import EARLIEST_YEAR, LATEST_YEAR, first_instant_after_month

CARD, ENTERPRISE_AGREEMENT = "card", "enterprise_agreement"
_CARD_EXPIRY_TEXT = re.compile(r"([0-9]{4})-([0-9]{2})")


@dataclass(frozen=True, slots=True)
class CardPayment:
    card: str
    expires: str  # YYYY-MM: valid through the last instant of that month

    def valid_until(self) -> datetime:
        """The first instant at which the card is no longer valid."""
        year, month = (int(part) for part in self.expires.split("-"))
        return first_instant_after_month(year, month)

    def as_data(self) -> dict[str, Any]:
        return {"method": CARD, "card": self.card, "expires": self.expires}


@dataclass(frozen=True, slots=True)
class AgreementPayment:
    agreement: str
    po: str | None

    def as_data(self) -> dict[str, Any]:
        return {"method": ENTERPRISE_AGREEMENT, "agreement": self.agreement, "po": self.po}


PaymentMethod = CardPayment | AgreementPayment


def parse_payment_method(data: object) -> PaymentMethod:
    """Strict reading of a payment object; extra keys are ignored."""
    if not isinstance(data, dict):
        raise InvalidInput(f"payment must be an object, got {shown(data)}")
    method = data.get("method")
    if method == CARD:
        card = parse_identifier(data.get("card"), field="payment.card")
        return CardPayment(card=card, expires=_parse_card_expiry(data.get("expires")))
    if method == ENTERPRISE_AGREEMENT:
        agreement = parse_identifier(data.get("agreement"), field="payment.agreement")
        po = data.get("po")
        if po is not None:
            po = parse_identifier(po, field="payment.po")
        return AgreementPayment(agreement=agreement, po=po)
    raise InvalidInput(f"payment.method must be 'card' or 'enterprise_agreement', got {shown(method)}")


def payment_from_data(data: dict[str, Any]) -> PaymentMethod:
    """Rebuild a payment method this system stored itself."""
    if data["method"] == CARD:
        return CardPayment(card=data["card"], expires=data["expires"])
    return AgreementPayment(agreement=data["agreement"], po=data["po"])


def _parse_card_expiry(text: object) -> str:
    match = _CARD_EXPIRY_TEXT.fullmatch(text) if isinstance(text, str) else None
    if not match or not 1 <= int(match[2]) <= 12 or not EARLIEST_YEAR <= int(match[1]) <= LATEST_YEAR:
        raise InvalidInput(f"payment.expires must be YYYY-MM (month 01-12), got {shown(text)}")
    return text  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class PaymentOutcome:
    approved: bool
    reference: str
    decline_reason: str | None = None


class PaymentGateway(Protocol):
    """The port through which the engine takes money. `reference` is the idempotency key of the
    charge: a gateway that sees the same reference twice must not charge twice."""

    def charge(self, method: PaymentMethod, amount: Decimal, currency: str, at: datetime,
               reference: str) -> PaymentOutcome: ...


class SimulatedGateway:
    """SPEC §9's gateway: declines an expired card or a card id starting with `decline`;
    always accepts an enterprise agreement (invoiced later)."""

    def charge(self, method: PaymentMethod, amount: Decimal, currency: str, at: datetime,
               reference: str) -> PaymentOutcome:
        assert amount > 0, f"a charge must be positive, got {format_money(amount)}"
        if isinstance(method, CardPayment):
            if method.card.startswith("decline"):
                return PaymentOutcome(False, reference, "card_declined")
            if at >= method.valid_until():
                return PaymentOutcome(False, reference, "card_expired")
        return PaymentOutcome(True, reference)
