"""The recommendation's formulas (application/recommendation.py, docs/recommend.md) on crafted
histories; every expected figure is worked out by hand in the comments."""

import ast
import sys
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from application import recommendation
from application.recommendation import NoSpend, Recommendation, Window, daily_spend, nearest_rank, recommend

D = Decimal
JAN_TO_MAR_2026 = Window(date(2026, 1, 1), date(2026, 4, 1))  # 31 + 28 + 31 = 90 days, 3 months
JANUARY_2026 = Window(date(2026, 1, 1), date(2026, 2, 1))  # 31 days, 1 month


def every_day(window: Window, amount: str) -> list[tuple[date, Decimal]]:
    return [(window.start + timedelta(days=offset), D(amount)) for offset in range(window.days)]


def figures(answer: Recommendation) -> dict[str, Decimal]:
    return {"p50": answer.percentiles[50], "p90": answer.percentiles[90], "p99": answer.percentiles[99],
            "largest": answer.largest_day_spend, "average_month": answer.average_monthly_spend,
            "trigger": answer.trigger_amount, "recharge": answer.recharge_amount, "initial": answer.initial_funds}


def test_a_window_counts_its_calendar_months_and_days():
    assert (JAN_TO_MAR_2026.months, JAN_TO_MAR_2026.days) == (3, 90)
    assert (JANUARY_2026.months, JANUARY_2026.days) == (1, 31)
    across_new_year = Window(date(2024, 12, 1), date(2025, 3, 1))  # 31 + 31 + 28
    assert (across_new_year.months, across_new_year.days) == (3, 90)


def test_constant_spend():
    answer = recommend(every_day(JAN_TO_MAR_2026, "2.5000"), JAN_TO_MAR_2026, D("0.20"))
    # total 90 × 2.5 = 225; average month 225 / 3 = 75; every percentile and the largest day are 2.5
    # trigger  = ceil(2.5 × 1.2 = 3.0) = 3
    # recharge = max(ceil(2.5 × 30 × 1.2 = 90), 3) = 90
    # initial  = ceil(75 × 1.2 = 90) = 90
    assert figures(answer) == {"p50": D("2.5"), "p90": D("2.5"), "p99": D("2.5"), "largest": D("2.5"),
                               "average_month": D("75"), "trigger": D("3"), "recharge": D("90"),
                               "initial": D("90")}
    assert (answer.days, answer.active_days, answer.total_spend) == (90, 90, D("225"))
    # a year at the average rate U = 75 × 12 = 900; naive N = ceil(900 × 1.2 = 1080) = 1080, N − U = 180
    # held at most H = max(90, 3 + 90) = 93 <= 900: nothing expires; avoided 180 − 0 = 180
    assert (answer.yearly_use, answer.naive_purchase, answer.naive_expiry) == (D("900"), D("1080"), D("180"))
    assert (answer.largest_holding, answer.plan_expiry, answer.expiry_waste_avoided) == (D("93"), D("0"), D("180"))


def test_one_spike_day():
    spend = every_day(JANUARY_2026, "1.0000")
    spend[14] = (date(2026, 1, 15), D("40.0000"))
    answer = recommend(spend, JANUARY_2026, D("0.20"))
    # 30 days of 1 and one of 40, n = 31; total 70, average month 70 / 1 = 70
    # p50 rank ceil(0.50 × 31 = 15.5) = 16 -> 1; p90 rank ceil(27.9) = 28 -> 1; p99 rank ceil(30.69) = 31 -> 40
    # trigger  = ceil(40 × 1.2 = 48) = 48
    # recharge = max(ceil(1 × 30 × 1.2 = 36), 48) = 48: never below the trigger
    # initial  = ceil(70 × 1.2 = 84) = 84
    assert figures(answer) == {"p50": D("1"), "p90": D("1"), "p99": D("40"), "largest": D("40"),
                               "average_month": D("70"), "trigger": D("48"), "recharge": D("48"),
                               "initial": D("84")}
    assert answer.largest_day == date(2026, 1, 15)
    # U = 840; N = ceil(1008) = 1008, N − U = 168; H = max(84, 48 + 48) = 96 <= 840; avoided 168
    assert (answer.naive_expiry, answer.largest_holding, answer.expiry_waste_avoided) == (D("168"), D("96"), D("168"))


def test_days_without_calls_count_as_zero_in_the_percentiles():
    spend = [(date(2026, 1, 2), D("5.0000")), (date(2026, 1, 3), D("1.5000")), (date(2026, 1, 3), D("1.5000")),
             (date(2026, 1, 4), D("4.0000"))]
    answer = recommend(spend, JANUARY_2026, D("0.20"))
    # days: 2 Jan 5, 3 Jan 1.5 + 1.5 = 3, 4 Jan 4, and 28 days of 0; sorted: 0 × 28, 3, 4, 5
    # p50 rank 16 -> 0 (over the 3 active days alone it would be 4); p90 rank 28 -> 0; p99 rank 31 -> 5
    # trigger = ceil(5 × 1.2 = 6) = 6; recharge = max(ceil(0 × 30 × 1.2) = 0, 6) = 6
    # total 12, average month 12; initial = ceil(12 × 1.2 = 14.4) = 15
    assert figures(answer) == {"p50": D("0"), "p90": D("0"), "p99": D("5"), "largest": D("5"),
                               "average_month": D("12"), "trigger": D("6"), "recharge": D("6"),
                               "initial": D("15")}
    assert (answer.days, answer.active_days) == (31, 3)
    daily = daily_spend(spend, JANUARY_2026)
    assert len(daily.by_day) == 31 and daily.by_day[date(2026, 1, 3)] == D("3") and daily.by_day[date(2026, 1, 31)] == 0


def test_amounts_are_rounded_up_to_whole_units_only_when_not_whole():
    just_above = recommend([(date(2026, 1, 10), D("10.0001"))], JANUARY_2026, D("0.20"))
    # trigger = ceil(10.0001 × 1.2 = 12.00012) = 13; initial = ceil(12.00012) = 13
    assert (just_above.trigger_amount, just_above.initial_funds) == (D("13"), D("13"))
    exact = recommend([(date(2026, 1, 10), D("10.0000"))], JANUARY_2026, D("0.20"))
    # trigger = ceil(10 × 1.2 = 12) = 12: a whole product is not raised
    assert (exact.trigger_amount, exact.initial_funds) == (D("12"), D("12"))


def test_the_average_month_is_rounded_only_for_display():
    answer = recommend([(date(2026, 2, 1), D("25.0000"))], JAN_TO_MAR_2026, D("0.20"))
    # average month 25 / 3 = 8.3333...; initial = ceil(25 / 3 × 1.2 = 10 exactly) = 10
    # (rounding the average first would give ceil(8.3333 × 1.2 = 9.99996) = 10, or with 8.3334, 11)
    assert answer.average_monthly_spend == D("8.3333") and answer.initial_funds == D("10")
    # trigger = ceil(25 × 1.2 = 30) = 30; recharge = max(0, 30) = 30
    # U = 25 / 3 × 12 = 100; N = ceil(120) = 120, N − U = 20; H = max(10, 60) = 60 <= 100; avoided 20
    assert (answer.trigger_amount, answer.recharge_amount, answer.yearly_use) == (D("30"), D("30"), D("100"))
    assert answer.expiry_waste_avoided == D("20")


def test_results_are_written_with_four_decimals():
    answer = recommend(every_day(JAN_TO_MAR_2026, "2.5000"), JAN_TO_MAR_2026)
    for amount in (answer.trigger_amount, answer.recharge_amount, answer.initial_funds, answer.average_monthly_spend,
                   answer.naive_expiry, answer.expiry_waste_avoided, *answer.percentiles.values()):
        assert isinstance(amount, Decimal) and amount.as_tuple().exponent == -4, amount


def test_margin_zero():
    answer = recommend(every_day(JAN_TO_MAR_2026, "2.5000"), JAN_TO_MAR_2026, D("0"))
    # trigger = ceil(2.5) = 3; recharge = max(ceil(2.5 × 30 = 75), 3) = 75; initial = ceil(75) = 75
    assert (answer.trigger_amount, answer.recharge_amount, answer.initial_funds) == (D("3"), D("75"), D("75"))
    # U = 900, N = ceil(900) = 900: a year bought up front with no margin expires nothing at the average rate
    assert (answer.naive_purchase, answer.naive_expiry, answer.expiry_waste_avoided) == (D("900"), D("0"), D("0"))
    assert "× 1 =" in answer.reasoning[3]


def test_a_window_across_a_month_end_and_a_leap_day():
    window = Window(date(2024, 2, 1), date(2024, 4, 1))  # 29 (leap February) + 31 = 60 days, 2 months
    spend = [(date(2024, 2, 28), D("3")), (date(2024, 2, 29), D("7")), (date(2024, 3, 1), D("2"))]
    answer = recommend(spend, window, D("0.20"))
    assert (window.days, window.months) == (60, 2)
    # sorted: 0 × 57, 2, 3, 7; p50 rank 30 -> 0; p90 rank 54 -> 0; p99 rank ceil(59.4) = 60 -> 7
    # total 12, average month 12 / 2 = 6
    # trigger = ceil(7 × 1.2 = 8.4) = 9; recharge = max(0, 9) = 9; initial = ceil(6 × 1.2 = 7.2) = 8
    assert figures(answer) == {"p50": D("0"), "p90": D("0"), "p99": D("7"), "largest": D("7"),
                               "average_month": D("6"), "trigger": D("9"), "recharge": D("9"), "initial": D("8")}
    assert answer.largest_day == date(2024, 2, 29)
    assert date(2024, 2, 29) in daily_spend(spend, window).by_day
    assert Window(date(2023, 2, 1), date(2023, 3, 1)).days == 28


def test_rare_large_spend_can_hold_more_than_a_year_of_use():
    window = Window(date(2024, 1, 1), date(2026, 1, 1))  # 24 months
    answer = recommend([(date(2025, 6, 1), D("1000"))], window, D("0.20"))
    # average month 1000 / 24 = 41.6666...; trigger = recharge = ceil(1200) = 1200; initial = ceil(50) = 50
    # U = 41.666... × 12 = 500; N = ceil(600) = 600, N − U = 100
    # H = max(50, 1200 + 1200) = 2400 > 500: up to 2400 − 500 = 1900 could expire; avoided 100 − 1900 = −1800
    assert (answer.trigger_amount, answer.recharge_amount, answer.initial_funds) == (D("1200"), D("1200"), D("50"))
    assert (answer.plan_expiry, answer.expiry_waste_avoided) == (D("1900"), D("-1800"))
    assert "could expire" in answer.reasoning[-1]


def test_the_lot_lifetime_is_a_parameter():
    answer = recommend(every_day(JAN_TO_MAR_2026, "2.5000"), JAN_TO_MAR_2026, D("0.20"), lot_lifetime_months=6)
    # U = 75 × 6 = 450; N = ceil(540) = 540, N − U = 90
    assert (answer.yearly_use, answer.naive_expiry, answer.lot_lifetime_months) == (D("450"), D("90"), 6)


def test_a_window_without_spend_has_no_figures():
    assert isinstance(recommend([], JANUARY_2026), NoSpend)
    answer = recommend([(date(2026, 1, 5), D("0"))], JANUARY_2026)
    assert isinstance(answer, NoSpend) and "no spend" in answer.reasoning[0]


def test_the_reasoning_states_each_formula_with_its_values():
    answer = recommend([(date(2026, 2, 1), D("25.0000"))], JAN_TO_MAR_2026, D("0.20"))
    window, total, percentiles, trigger, recharge, initial, expiry = answer.reasoning
    assert "3 whole months, 90 days; 1 day had credit-paid calls and the other 89 count as 0" in window
    assert "25.0000 in total, 8.3333 a month on average (25.0000 / 3)" in total
    # p99 rank ceil(0.99 × 90 = 89.1) = 90: the one day of spend
    assert "p50 0.0000, p90 0.0000, p99 25.0000; the largest day was 2026-02-01 with 25.0000" in percentiles
    assert "25.0000 × 1.20 = 30.0000, rounded up to 30.0000" in trigger
    assert "0.0000 × 30 days × 1.20 = 0.0000" in recharge and "30.0000" in recharge
    assert "8.3333 × 1.20 = 10.0000, rounded up to 10.0000" in initial
    assert "20.0000 of expiry waste avoided" in expiry


@pytest.mark.parametrize("values, rank, expected", [
    ([D(n) for n in range(1, 11)], 50, D(5)),  # ceil(5) = 5
    ([D(n) for n in range(1, 11)], 90, D(9)),  # ceil(9) = 9
    ([D(n) for n in range(1, 11)], 99, D(10)),  # ceil(9.9) = 10
    ([D(7)], 50, D(7)),  # one day: every percentile is that day
    ([D(1), D(2)], 50, D(1)),  # ceil(1) = 1: nearest rank never interpolates
])
def test_nearest_rank(values, rank, expected):
    assert nearest_rank(values, rank) == expected


def test_spend_outside_the_window_is_a_programmer_error():
    with pytest.raises(AssertionError):
        daily_spend([(date(2026, 2, 1), D("1"))], JANUARY_2026)
    with pytest.raises(AssertionError):
        Window(date(2026, 1, 2), date(2026, 2, 1))


def test_the_module_imports_only_the_standard_library_and_the_domain():
    tree = ast.parse(Path(recommendation.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert imported <= sys.stdlib_module_names | {"domain"} and not imported & {"os", "io", "socket", "time"}, imported
