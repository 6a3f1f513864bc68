"""A Communications Credits order (SPEC §9): placed once per legacy organization."""

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.auto_recharge import AutoRechargeSettings
from domain.money import format_money
from domain.payments import PaymentMethod
from domain.timestamps import encode_timestamp


class Order(Aggregate):
    class OrderPlaced(Aggregate.Created):
        org: str
        order_id: str
        funds: str
        auto_recharge: dict[str, Any]
        payment: dict[str, Any]
        payment_reference: str | None
        at: str

    def __init__(self, org: str, order_id: str, funds: str, auto_recharge: dict[str, Any],
                 payment: dict[str, Any], payment_reference: str | None, at: str) -> None:
        self.org, self.order_id, self.funds = org, order_id, funds
        self.auto_recharge, self.payment = auto_recharge, payment
        self.payment_reference, self.placed_at = payment_reference, at
        self.quantity = 1

    @staticmethod
    def create_id(org: str, order_id: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"commcredits:order:{org}:{order_id}")

    @classmethod
    def place(cls, org: str, order_id: str, funds: Decimal, settings: AutoRechargeSettings,
              payment: PaymentMethod, payment_reference: str | None, at: datetime) -> "Order":
        return cls._create(cls.OrderPlaced, id=cls.create_id(org, order_id), org=org, order_id=order_id,
                           funds=format_money(funds), auto_recharge=settings.as_data(),
                           payment=payment.as_data(), payment_reference=payment_reference,
                           at=encode_timestamp(at))
