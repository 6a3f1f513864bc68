"""Laws of the recommendation (application/recommendation.py) over arbitrary histories: the
recharge is never below the trigger, the trigger covers the largest day with the margin, the
percentiles are ordered, the initial funds cover an average month with the margin, and every
figure is an exact Decimal."""

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.recommendation import NoSpend, Recommendation, Window, recommend

LAWS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

amounts = st.decimals(min_value=Decimal("0"), max_value=Decimal("5000"), places=4, allow_nan=False,
                      allow_infinity=False)
margins = st.decimals(min_value=Decimal("0"), max_value=Decimal("10"), places=4, allow_nan=False,
                      allow_infinity=False)


@st.composite
def windows(draw) -> Window:
    year, month = draw(st.integers(2000, 2190)), draw(st.integers(1, 12))
    months = draw(st.integers(1, 24))
    end_index = month - 1 + months
    return Window(date(year, month, 1), date(year + end_index // 12, end_index % 12 + 1, 1))


@st.composite
def histories(draw) -> tuple[Window, list[tuple[date, Decimal]]]:
    window = draw(windows())
    offsets = st.integers(0, window.days - 1)
    calls = draw(st.lists(st.tuples(offsets, amounts), max_size=60))
    return window, [(window.start + timedelta(days=offset), amount) for offset, amount in calls]


@LAWS
@given(histories(), margins)
def test_recharge_covers_the_trigger_which_covers_the_largest_day_with_the_margin(history, margin):
    window, spend = history
    answer = recommend(spend, window, margin)
    if isinstance(answer, NoSpend):
        assert sum((amount for _, amount in spend), Decimal(0)) == 0
        return
    assert answer.recharge_amount >= answer.trigger_amount >= answer.largest_day_spend
    assert answer.trigger_amount >= answer.largest_day_spend * (1 + margin)
    assert answer.trigger_amount - answer.largest_day_spend * (1 + margin) < 1  # rounded up, not more
    assert answer.recharge_amount >= answer.percentiles[90] * 30 * (1 + margin)
    assert answer.recharge_amount > 0  # SPEC §8: a recharge amount is > 0


@LAWS
@given(histories(), margins)
def test_percentiles_are_ordered_and_below_the_largest_day(history, margin):
    window, spend = history
    answer = recommend(spend, window, margin)
    if isinstance(answer, Recommendation):
        p = answer.percentiles
        assert Decimal(0) <= p[50] <= p[90] <= p[99] <= answer.largest_day_spend
        totals = {day: sum((amount for other, amount in spend if other == day), Decimal(0)) for day, _ in spend}
        assert answer.largest_day_spend == max(totals.values()) == totals[answer.largest_day]


@LAWS
@given(histories(), margins)
def test_initial_funds_cover_an_average_month_and_every_figure_is_exact(history, margin):
    window, spend = history
    answer = recommend(spend, window, margin)
    if isinstance(answer, Recommendation):
        average_month = Fraction(sum((amount for _, amount in spend), Decimal(0))) / window.months
        assert Fraction(answer.initial_funds) >= average_month * (1 + Fraction(margin))
        assert Fraction(answer.initial_funds) - average_month * (1 + Fraction(margin)) < 1
        assert answer.largest_holding >= max(answer.initial_funds, answer.trigger_amount)
        assert answer.naive_expiry >= 0 and answer.plan_expiry >= 0
        for amount in (answer.trigger_amount, answer.recharge_amount, answer.initial_funds,
                       answer.average_monthly_spend, answer.expiry_waste_avoided, *answer.percentiles.values()):
            assert isinstance(amount, Decimal) and amount.as_tuple().exponent == -4
        for whole in (answer.trigger_amount, answer.recharge_amount, answer.initial_funds, answer.naive_purchase):
            assert whole == whole.to_integral_value()
