"""The commands the application accepts: validated values, ready for the service."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from domain.authorization import CallRequest
from domain.auto_recharge import AutoRechargeSettings
from domain.calls import Cdr
from domain.payments import PaymentMethod

# What handling a command came to (a rejection is an exception): applied, an idempotent repeat of
# an earlier command (SPEC §9, §13.1), or a duplicate CDR (SPEC §10).
APPLIED, REPEATED, DUPLICATE = "applied", "repeated", "duplicate"


@dataclass(frozen=True, slots=True)
class CreateOrganization:
    org: str
    name: str
    country: str
    currency: str
    commerce: str
    agreements: list[str]
    at: datetime


@dataclass(frozen=True, slots=True)
class AddUser:
    org: str
    user: str
    usage_location: str
    at: datetime


@dataclass(frozen=True, slots=True)
class ChangeLicences:
    org: str
    users: list[str]
    licences: list[str]
    assign: bool  # False: remove
    at: datetime


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    org: str
    order: str
    funds: Decimal
    auto_recharge: AutoRechargeSettings
    payment: PaymentMethod
    at: datetime


@dataclass(frozen=True, slots=True)
class AddFunds:
    org: str
    amount: Decimal
    request_id: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class ConfigureAutoRecharge:
    org: str
    auto_recharge: AutoRechargeSettings
    at: datetime


@dataclass(frozen=True, slots=True)
class UpdatePaymentMethod:
    org: str
    payment: PaymentMethod
    at: datetime


@dataclass(frozen=True, slots=True)
class AdvanceClock:
    at: datetime


@dataclass(frozen=True, slots=True)
class AuthorizeCall:
    request: CallRequest

    @property
    def at(self) -> datetime:
        return self.request.at


@dataclass(frozen=True, slots=True)
class ReleaseCall:
    org: str
    call_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class RateCdr:
    cdr: Cdr

    @property
    def at(self) -> datetime:
        return self.cdr.end_time


Command = (CreateOrganization | AddUser | ChangeLicences | PlaceOrder | AddFunds | ConfigureAutoRecharge
           | UpdatePaymentMethod | AdvanceClock | RateCdr | AuthorizeCall | ReleaseCall)
