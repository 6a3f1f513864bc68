"""Validation at the edge: JSON lines and CDR messages into commands (SPEC §2, §10, §11).

Frozen, strict pydantic models, one per wire format. Field rules live in `domain` (the parsers
raise `InvalidInput` with a precise message, which passes through pydantic untouched); pydantic
adds the structure: required fields, types, unknown fields ignored.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationError

from application import commands
from domain import codes, phone
from domain.authorization import DEFAULT_REQUESTED_SECONDS, MAX_REQUESTED_SECONDS, CallRequest
from domain.auto_recharge import AutoRechargeSettings, parse_auto_recharge
from domain.calls import CALL_TYPES, MAX_DURATION_SECONDS, Cdr, user_required
from domain.commerce import COMMERCE_KINDS
from domain.errors import InvalidInput, shown
from domain.licences import LICENCES
from domain.money import parse_money
from domain.payments import PaymentMethod, parse_payment_method
from domain.timestamps import parse_timestamp

MAX_DISPLAY_NAME_CHARS = 256
MAX_FREE_TEXT_CHARS = 256  # a CDR's number_type and conference_id: carried into reports as given


def _identifier(value: Any, info) -> str:
    return codes.parse_identifier(value, field=info.field_name)


def _optional_identifier(value: Any, info) -> str | None:
    return None if value is None else codes.parse_identifier(value, field=info.field_name)


def _display_name(value: Any, info) -> str:
    name = codes.parse_free_text(value, field=info.field_name, max_chars=MAX_DISPLAY_NAME_CHARS)
    if not name.strip():
        raise InvalidInput(f"{info.field_name} must not be empty")
    return name


def _optional_free_text(value: Any, info) -> str | None:
    return None if value is None else codes.parse_free_text(value, field=info.field_name,
                                                            max_chars=MAX_FREE_TEXT_CHARS)


def _timestamp(value: Any, info) -> datetime:
    return parse_timestamp(value, field=info.field_name)


def _identifiers(value: Any, info) -> list[str]:
    if not isinstance(value, list) or not value:
        raise InvalidInput(f"{info.field_name} must be a non-empty list of strings, got {shown(value)}")
    return [codes.parse_identifier(item, field=info.field_name) for item in value]


def _licences(value: Any, info) -> list[str]:
    names = _identifiers(value, info)
    unknown = [name for name in names if name not in LICENCES]
    if unknown:
        raise InvalidInput(f"unknown licence(s) {', '.join(map(repr, unknown))}; known: {', '.join(LICENCES)}")
    return names


def _agreements(value: Any, info) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidInput(f"agreements must be a list of strings, got {shown(value)}")
    return [codes.parse_identifier(item, field="agreements") for item in value]


def _strict_bool(value: Any, info) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{info.field_name} must be true or false, got {shown(value)}")
    return value


def _money_text(value: Any, info) -> Any:
    """Kept raw: amounts are parsed once the rules for the field are known (enabled, zero allowed)."""
    return value


Identifier = Annotated[str, PlainValidator(_identifier)]
DisplayName = Annotated[str, PlainValidator(_display_name)]
OptionalFreeText = Annotated[str | None, PlainValidator(_optional_free_text)]
OptionalIdentifier = Annotated[str | None, PlainValidator(_optional_identifier)]
Timestamp = Annotated[datetime, PlainValidator(_timestamp)]
Country = Annotated[str, PlainValidator(lambda value, info: codes.parse_country(value, field=info.field_name))]
Currency = Annotated[str, PlainValidator(lambda value, info: codes.parse_currency(value, field=info.field_name))]
Money = Annotated[Decimal, PlainValidator(lambda value, info: parse_money(value, field=info.field_name))]
MoneyOrZero = Annotated[Decimal, PlainValidator(lambda value, info: parse_money(value, field=info.field_name, allow_zero=True))]
Payment = Annotated[PaymentMethod, PlainValidator(lambda value, info: parse_payment_method(value))]
RawAmount = Annotated[Any, PlainValidator(_money_text)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class OrganizationCreated(_Wire):
    org: Identifier
    name: DisplayName
    country: Country
    currency: Currency
    commerce: Annotated[str, PlainValidator(lambda value, info: _one_of(value, info, COMMERCE_KINDS))]
    agreements: Annotated[list[str], PlainValidator(_agreements)] = []
    at: Timestamp

    def command(self) -> commands.CreateOrganization:
        return commands.CreateOrganization(self.org, self.name, self.country, self.currency, self.commerce,
                                           list(self.agreements), self.at)


class UserAdded(_Wire):
    org: Identifier
    user: Identifier
    usage_location: Country
    at: Timestamp

    def command(self) -> commands.AddUser:
        return commands.AddUser(self.org, self.user, self.usage_location, self.at)


class LicencesChanged(_Wire):
    org: Identifier
    users: Annotated[list[str], PlainValidator(_identifiers)]
    licences: Annotated[list[str], PlainValidator(_licences)]
    at: Timestamp

    def command(self, assign: bool) -> commands.ChangeLicences:
        return commands.ChangeLicences(self.org, list(self.users), list(self.licences), assign, self.at)


class AutoRechargeFields(_Wire):
    enabled: Annotated[bool, PlainValidator(_strict_bool)]
    recharge_amount: RawAmount = None
    trigger_amount: RawAmount = None

    def settings(self) -> AutoRechargeSettings:
        return parse_auto_recharge(self.enabled, self.recharge_amount, self.trigger_amount)


class OrderPlaced(_Wire):
    org: Identifier
    order: Identifier
    funds: MoneyOrZero
    auto_recharge: AutoRechargeFields
    payment: Payment
    at: Timestamp

    def command(self) -> commands.PlaceOrder:
        return commands.PlaceOrder(self.org, self.order, self.funds, self.auto_recharge.settings(), self.payment,
                                   self.at)


class FundsAdded(_Wire):
    org: Identifier
    amount: Money
    request_id: OptionalIdentifier = None
    at: Timestamp

    def command(self) -> commands.AddFunds:
        return commands.AddFunds(self.org, self.amount, self.request_id, self.at)


class AutoRechargeConfigured(AutoRechargeFields):
    org: Identifier
    at: Timestamp

    def command(self) -> commands.ConfigureAutoRecharge:
        return commands.ConfigureAutoRecharge(self.org, self.settings(), self.at)


class PaymentMethodUpdated(_Wire):
    org: Identifier
    payment: Payment
    at: Timestamp

    def command(self) -> commands.UpdatePaymentMethod:
        return commands.UpdatePaymentMethod(self.org, self.payment, self.at)


class ClockAdvanced(_Wire):
    at: Timestamp

    def command(self) -> commands.AdvanceClock:
        return commands.AdvanceClock(self.at)


def _duration(value: Any, info) -> int:
    if type(value) is not int or not 0 <= value <= MAX_DURATION_SECONDS:
        raise InvalidInput(f"duration_seconds must be a whole number 0-{MAX_DURATION_SECONDS}, got {shown(value)}")
    return value


def _call_type(value: Any, info) -> str:
    if not isinstance(value, str) or value not in CALL_TYPES:
        raise InvalidInput(f"call_type {shown(value)} is not one of {', '.join(sorted(CALL_TYPES))}")
    return value


class CdrRecord(_Wire):
    """A CDR as a call switch sends it (SPEC §10); unknown extra fields are ignored."""
    usage_id: Identifier
    org: Identifier
    user: OptionalIdentifier = None
    call_type: Annotated[str, PlainValidator(_call_type)]
    number_type: OptionalFreeText = None
    caller_number: Annotated[str, PlainValidator(lambda value, info: phone.parse_e164(value, field="caller_number"))]
    destination_number: Identifier
    start_time: Timestamp
    end_time: Timestamp
    duration_seconds: Annotated[int, PlainValidator(_duration)]
    call_id: OptionalIdentifier = None
    conference_id: OptionalFreeText = None

    def cdr(self) -> Cdr:
        destination = _destination(self.call_type, self.destination_number)
        if self.end_time < self.start_time:
            raise InvalidInput("end_time must not be before start_time")
        if self.user is None and user_required(self.call_type, self.number_type):
            raise InvalidInput(f"user is required for a {self.call_type} call")
        return Cdr(self.usage_id, self.org, self.user, self.call_type, self.number_type, self.caller_number,
                   destination, self.start_time, self.end_time, self.duration_seconds, self.call_id,
                   self.conference_id)

    def command(self) -> commands.RateCdr:
        return commands.RateCdr(self.cdr())


def _requested_seconds(value: Any, info) -> int:
    """SPEC §13.1: absent or null → the default; else a JSON integer of digits only, 1…86400."""
    if value is None:
        return DEFAULT_REQUESTED_SECONDS
    if type(value) is not int or not 1 <= value <= MAX_REQUESTED_SECONDS:
        raise InvalidInput(f"requested_seconds must be a whole number 1-{MAX_REQUESTED_SECONDS}, got {shown(value)}")
    return value


def _destination(call_type: str, text: str) -> str:
    if call_type == "emergency_out":
        return phone.parse_emergency_number(text, field="destination_number")
    return phone.parse_e164(text, field="destination_number")


class CallAuthorize(_Wire):
    """SPEC §13.1's fields; anything else on the line (a CDR's usage_id, ...) is ignored."""
    org: Identifier
    call_id: Identifier
    user: OptionalIdentifier = None
    call_type: Annotated[str, PlainValidator(_call_type)]
    number_type: OptionalFreeText = None
    caller_number: Annotated[str, PlainValidator(lambda value, info: phone.parse_e164(value, field="caller_number"))]
    destination_number: Identifier
    requested_seconds: Annotated[int, PlainValidator(_requested_seconds)] = DEFAULT_REQUESTED_SECONDS
    at: Timestamp

    def request(self) -> CallRequest:
        if self.user is None and user_required(self.call_type, self.number_type):
            raise InvalidInput(f"user is required for a {self.call_type} call")
        return CallRequest(self.org, self.call_id, self.call_type, self.number_type, self.user, self.caller_number,
                           _destination(self.call_type, self.destination_number), self.requested_seconds, self.at)

    def command(self) -> commands.AuthorizeCall:
        return commands.AuthorizeCall(self.request())


class CallReleased(_Wire):
    org: Identifier
    call_id: Identifier
    at: Timestamp

    def command(self) -> commands.ReleaseCall:
        return commands.ReleaseCall(self.org, self.call_id, self.at)


def _one_of(value: Any, info, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidInput(f"{info.field_name} must be one of {', '.join(allowed)}, got {shown(value)}")
    return value


LINE_MODELS: dict[str, tuple[type[_Wire], dict[str, Any]]] = {
    "organization.created": (OrganizationCreated, {}),
    "user.added": (UserAdded, {}),
    "licences.assigned": (LicencesChanged, {"assign": True}),
    "licences.removed": (LicencesChanged, {"assign": False}),
    "order.placed": (OrderPlaced, {}),
    "funds.added": (FundsAdded, {}),
    "auto_recharge.configured": (AutoRechargeConfigured, {}),
    "payment_method.updated": (PaymentMethodUpdated, {}),
    "clock": (ClockAdvanced, {}),
    "cdr": (CdrRecord, {}),
    "call.authorize": (CallAuthorize, {}),
    "call.released": (CallReleased, {}),
}


def decode_json_object(raw: bytes) -> dict[str, Any]:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidInput(f"not valid UTF-8 JSON: {error}") from None
    if not isinstance(document, dict):
        raise InvalidInput(f"a line must be a JSON object, got {type(document).__name__}")
    return document


def command_from_document(document: dict[str, Any]) -> commands.Command:
    line_type = document.get("type")
    if not isinstance(line_type, str) or line_type not in LINE_MODELS:
        raise InvalidInput(f"type must be one of {', '.join(LINE_MODELS)}, got {shown(line_type)}")
    model, options = LINE_MODELS[line_type]
    return validated(model, document).command(**options)


def cdr_from_document(document: dict[str, Any]) -> Cdr:
    return validated(CdrRecord, document).cdr()


def validated(model: type[_Wire], document: dict[str, Any]) -> Any:
    try:
        return model.model_validate(document)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or model.__name__
        problem = "is required" if first["type"] == "missing" else first["msg"]
        raise InvalidInput(f"{where} {problem}") from None
