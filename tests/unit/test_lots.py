"""SPEC §7 lots: debit order (expiry, then addition, then creation), partial debits, due lots."""

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from domain.lots import Lot, due_lots, expiry_of, plan_debit

UTC = timezone.utc


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def lot(number: int, remaining: str, added_at: datetime, expires_at: datetime | None = None) -> Lot:
    amount = Decimal(remaining)
    return Lot(number, "manual", amount, added_at, expires_at or expiry_of(added_at), amount, Decimal("0"))


def in_debit_order(lots: list[Lot]) -> list[Lot]:
    return sorted(lots, key=lambda each: each.debit_key)


def test_debit_key_orders_by_expiry_then_addition_then_creation():
    early_expiry = lot(3, "1", utc(2026, 3, 1), expires_at=utc(2026, 6, 1))  # added last, expires first
    a = lot(1, "1", utc(2026, 1, 1), expires_at=utc(2027, 1, 1))
    # same expiry as a, added later
    b = lot(2, "1", utc(2026, 2, 1), expires_at=utc(2027, 1, 1))
    # same expiry and addition time as b, created later
    c = lot(4, "1", utc(2026, 2, 1), expires_at=utc(2027, 1, 1))
    assert [each.number for each in in_debit_order([c, b, a, early_expiry])] == [3, 1, 2, 4]


def test_leap_day_and_next_day_lots_expire_in_that_order():
    # 2024-02-29 expires 2025-02-28; 2024-02-28 also expires 2025-02-28 but was added earlier
    leap = lot(1, "1", utc(2024, 2, 29))
    before = lot(2, "1", utc(2024, 2, 28))
    assert leap.expires_at == before.expires_at == utc(2025, 2, 28)
    assert [each.number for each in in_debit_order([leap, before])] == [2, 1]


def test_plan_debit_takes_oldest_first_with_partial_last_lot():
    lots = [lot(1, "10", utc(2026, 1, 1)), lot(2, "20", utc(2026, 2, 1)), lot(3, "5", utc(2026, 3, 1))]
    # 25 = 10 (lot 1, emptied) + 15 of lot 2's 20
    assert plan_debit(lots, Decimal("25")) == [(1, Decimal("10")), (2, Decimal("15"))]


def test_plan_debit_within_first_lot():
    lots = [lot(1, "10", utc(2026, 1, 1)), lot(2, "20", utc(2026, 2, 1))]
    assert plan_debit(lots, Decimal("0.0190")) == [(1, Decimal("0.0190"))]


def test_plan_debit_exactly_the_balance():
    lots = [lot(1, "10", utc(2026, 1, 1)), lot(2, "20.5", utc(2026, 2, 1))]
    # 30.5 = 10 + 20.5
    assert plan_debit(lots, Decimal("30.5")) == [(1, Decimal("10")), (2, Decimal("20.5"))]


def test_plan_debit_larger_than_balance_takes_everything():
    lots = [lot(1, "10", utc(2026, 1, 1)), lot(2, "2.5", utc(2026, 2, 1))]
    taken = plan_debit(lots, Decimal("100"))
    assert taken == [(1, Decimal("10")), (2, Decimal("2.5"))]
    # the remainder 100 - 12.5 = 87.5 is what the caller records as uncollected
    assert Decimal("100") - sum(amount for _, amount in taken) == Decimal("87.5")


def test_plan_debit_zero_or_no_lots_takes_nothing():
    assert plan_debit([lot(1, "10", utc(2026, 1, 1))], Decimal("0")) == []
    assert plan_debit([], Decimal("5")) == []


def test_plan_debit_does_not_mutate_lots():
    lots = [lot(1, "10", utc(2026, 1, 1))]
    plan_debit(lots, Decimal("4"))
    assert lots[0].remaining == Decimal("10")


def test_due_lots_includes_expiry_equal_to_now():
    lots = in_debit_order([lot(1, "10", utc(2025, 1, 31, 10)), lot(2, "5", utc(2025, 3, 1))])
    # lot 1 expires 2026-01-31T10:00:00Z
    assert due_lots(lots, utc(2026, 1, 31, 9, 59, 59)) == []
    assert [each.number for each in due_lots(lots, utc(2026, 1, 31, 10))] == [1]
    # both due by 2026-03-01
    assert [each.number for each in due_lots(lots, utc(2026, 3, 1))] == [1, 2]


def test_due_lots_in_debit_order():
    lots = in_debit_order([lot(2, "5", utc(2025, 2, 1)), lot(1, "10", utc(2025, 1, 1))])
    assert [each.number for each in due_lots(lots, utc(2030, 1, 1))] == [1, 2]


def test_lot_added_on_leap_day_is_due_on_28_feb_next_year():
    lots = [lot(1, "10", utc(2024, 2, 29, 12))]
    assert due_lots(lots, utc(2025, 2, 28, 11, 59, 59)) == []
    assert [each.number for each in due_lots(lots, utc(2025, 2, 28, 12))] == [1]


@pytest.mark.parametrize(
    ("added_at", "expires_at"),
    [
        (utc(2025, 1, 31, 8), utc(2026, 1, 31, 8)),
        (utc(2024, 2, 29, 23, 59, 59), utc(2025, 2, 28, 23, 59, 59)),
        (utc(2025, 12, 31), utc(2026, 12, 31)),
    ],
)
def test_expiry_of(added_at, expires_at):
    assert expiry_of(added_at) == expires_at
