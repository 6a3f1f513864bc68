"""Auto-recharge settings (SPEC §8, §9)."""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from domain.errors import InvalidInput, shown
from domain.money import format_money, parse_money, to_money

MAX_RECHARGES_PER_CALL = 10


@dataclass(frozen=True, slots=True)
class AutoRechargeSettings:
    enabled: bool
    recharge_amount: Decimal | None
    trigger_amount: Decimal | None

    def as_data(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "recharge_amount": None if self.recharge_amount is None else format_money(self.recharge_amount),
            "trigger_amount": None if self.trigger_amount is None else format_money(self.trigger_amount),
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> "AutoRechargeSettings":
        def amount(key: str) -> Decimal | None:
            return None if data[key] is None else to_money(data[key])
        return cls(data["enabled"], amount("recharge_amount"), amount("trigger_amount"))


DISABLED = AutoRechargeSettings(False, None, None)


def parse_auto_recharge(enabled: object, recharge_amount: object, trigger_amount: object) -> AutoRechargeSettings:
    """When enabled both amounts are required; when disabled they may be omitted (None) or given,
    and then are validated and kept."""
    if not isinstance(enabled, bool):
        raise InvalidInput(f"auto_recharge.enabled must be true or false, got {shown(enabled)}")
    if enabled and (recharge_amount is None or trigger_amount is None):
        raise InvalidInput("auto_recharge needs recharge_amount and trigger_amount when enabled")
    recharge = None if recharge_amount is None else parse_money(recharge_amount, field="recharge_amount")
    trigger = None if trigger_amount is None else parse_money(trigger_amount, field="trigger_amount", allow_zero=True)
    return AutoRechargeSettings(enabled, recharge, trigger)
