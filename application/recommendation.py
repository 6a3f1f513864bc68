"""Recommend initial funds, an auto-recharge trigger and a recharge amount from past usage.

Pure: standard library only, no I/O, no clock. The caller reads the usage view and passes the
credit-paid spend of each call with the UTC day it started on (docs/recommend.md).

Input
- `spend`: (day, amount) pairs, several per day allowed, every day inside the window. The amount
  is the call's **credit-paid demand**, `debited + uncollected` (SPEC §6): what Communications
  Credits paid, plus what they should have paid but could not (`insufficient_funds`) or were not
  allowed to (`no_credits_licence`, `credits_not_active`: the call should have been blocked, and
  would be paid from credits once the licence or the order is in place). Included minutes cost
  nothing and overage (NCE) is never paid from credits, so neither counts.
- `window`: whole calendar months, [start, end) with both dates the first of a month.
- `margin` m (a fraction, 0.20 for 20 %) and the lot lifetime L in months (SPEC §7: 12).

Formulas (exact: `Decimal` for amounts, `Fraction` for quotients; nothing is ever a float)
- Daily spend d_1..d_n: the sum per day over ALL n days of the window; a day without calls is 0.
- Percentile p (nearest rank): sort d ascending; P_p = d[ceil(p × n / 100)] (1-based). It is
  always one of the observed day totals, so exact to 4 decimals. p50, p90 and p99 are given.
- Largest day D = max d; total T = sum d; months M = calendar months of the window;
  average month A = T / M (shown rounded half-up to 4 decimals; computed with exactly).
- Trigger = ceil(D × (1 + m)): a balance at the trigger covers the worst day seen, plus the
  margin, while a recharge is being paid.
- Recharge = max(ceil(P_90 × 30 × (1 + m)), Trigger): about a month of busy (90th-percentile)
  days, and never less than the trigger, so one recharge lifts the balance above the trigger.
- Initial funds = ceil(A × (1 + m)): one average month with the margin.
- ceil is rounding up to a whole currency unit (the results are whole: `20.0000`).
- Expiry waste (a lot expires L months after it was added, SPEC §7; debits are first-in,
  first-out). At the average rate, a year's use is U = A × L. A naive plan buys a year of spend
  up front with the same margin: N = ceil(U × (1 + m)); after L months, N − U expires. With this
  plan the balance never holds more than H = max(Initial, Trigger + Recharge) (a recharge is
  made only below the trigger); first-in, first-out, what is held is spent within H / A months,
  so at most max(0, H − U) can expire. Expiry waste avoided = (N − U) − max(0, H − U); it is
  negative when the plan holds more than a year of average use (very spiky, rare spend), and
  the reasoning says so.

A window whose total is 0 has nothing to size a plan on: `recommend` returns `NoSpend`.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

from domain.lots import LOT_LIFETIME_MONTHS

DEFAULT_MARGIN = Decimal("0.20")
RECHARGE_COVER_DAYS = 30
PERCENTILES = (50, 90, 99)
SHOWN_SCALE = Decimal("0.0001")
WHOLE_UNIT = Decimal("1.0000")


@dataclass(frozen=True, slots=True)
class Window:
    """Whole calendar months: `start` (included) and `end` (excluded) are firsts of months."""
    start: date
    end: date

    def __post_init__(self) -> None:
        assert self.start.day == 1 and self.end.day == 1, "a window is whole calendar months"
        assert self.start < self.end, "a window is not empty"

    @property
    def months(self) -> int:
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month

    @property
    def days(self) -> int:
        return (self.end - self.start).days

    def __contains__(self, day: date) -> bool:
        return self.start <= day < self.end


@dataclass(frozen=True, slots=True)
class DailySpend:
    """What the window's days cost; `by_day` holds every day of the window, zeros included."""
    window: Window
    by_day: dict[date, Decimal]

    @property
    def total(self) -> Decimal:
        return sum(self.by_day.values(), Decimal("0.0000"))

    @property
    def active_days(self) -> int:
        return sum(1 for amount in self.by_day.values() if amount > 0)

    @property
    def largest(self) -> tuple[date, Decimal]:
        """The largest day, the earliest on a tie."""
        return max(self.by_day.items(), key=lambda item: (item[1], -item[0].toordinal()))

    def percentile(self, rank_percent: int) -> Decimal:
        return nearest_rank(sorted(self.by_day.values()), rank_percent)

    @property
    def average_month(self) -> Fraction:
        return Fraction(self.total) / self.window.months


@dataclass(frozen=True, slots=True)
class Recommendation:
    window: Window
    margin: Decimal
    lot_lifetime_months: int
    days: int
    active_days: int
    total_spend: Decimal
    percentiles: dict[int, Decimal]
    largest_day: date
    largest_day_spend: Decimal
    average_monthly_spend: Decimal  # shown: rounded half-up to 4 decimals
    trigger_amount: Decimal
    recharge_amount: Decimal
    initial_funds: Decimal
    yearly_use: Decimal  # U, shown to 4 decimals
    naive_purchase: Decimal  # N
    naive_expiry: Decimal  # N − U, shown to 4 decimals
    largest_holding: Decimal  # H
    plan_expiry: Decimal  # max(0, H − U), shown to 4 decimals
    expiry_waste_avoided: Decimal  # (N − U) − max(0, H − U), shown to 4 decimals
    reasoning: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NoSpend:
    """Nothing was paid from credits in the window: no figures to recommend."""
    window: Window
    reasoning: tuple[str, ...]


def recommend(spend: Iterable[tuple[date, Decimal]], window: Window, margin: Decimal = DEFAULT_MARGIN,
              lot_lifetime_months: int = LOT_LIFETIME_MONTHS) -> Recommendation | NoSpend:
    assert margin >= 0 and lot_lifetime_months > 0
    daily = daily_spend(spend, window)
    if daily.total == 0:
        return NoSpend(window, (f"Nothing was paid from credits in the {window.days} days from {window.start} "
                                f"to {_last_day(window)}: there is no spend to size a plan on.",))
    return _recommendation(daily, margin, lot_lifetime_months)


def daily_spend(spend: Iterable[tuple[date, Decimal]], window: Window) -> DailySpend:
    by_day = {day: Decimal("0.0000") for day in _days(window)}
    for day, amount in spend:
        assert day in window, f"{day} is outside the window {window}"
        assert amount >= 0, "spend is never negative"
        by_day[day] += amount
    return DailySpend(window, by_day)


def nearest_rank(ascending: list[Decimal], rank_percent: int) -> Decimal:
    """The nearest-rank percentile: the value at 1-based rank ceil(p × n / 100), at least 1."""
    assert ascending and 0 < rank_percent <= 100
    rank = max(1, -(-rank_percent * len(ascending) // 100))
    return ascending[rank - 1]


def round_up(amount: Fraction | Decimal) -> Decimal:
    """Up to a whole currency unit, written with 4 decimals."""
    return Decimal(math.ceil(amount)).quantize(WHOLE_UNIT)


def shown(amount: Fraction | Decimal) -> Decimal:
    """An exact quotient as shown: rounded half-up to 4 decimals."""
    if isinstance(amount, Fraction):
        amount = Decimal(amount.numerator) / Decimal(amount.denominator)
    return amount.quantize(SHOWN_SCALE, rounding=ROUND_HALF_UP)


def _recommendation(daily: DailySpend, margin: Decimal, lifetime: int) -> Recommendation:
    factor = 1 + Fraction(margin)
    largest_day, largest = daily.largest
    percentiles = {rank: daily.percentile(rank) for rank in PERCENTILES}
    trigger = round_up(Fraction(largest) * factor)
    recharge = max(round_up(Fraction(percentiles[90]) * RECHARGE_COVER_DAYS * factor), trigger)
    initial = round_up(daily.average_month * factor)
    expiry = _Expiry.of(daily.average_month * lifetime, factor, max(initial, trigger + recharge))
    figures = _Figures(daily, margin, lifetime, percentiles, trigger, recharge, initial, expiry)
    return Recommendation(
        window=daily.window, margin=margin, lot_lifetime_months=lifetime, days=daily.window.days,
        active_days=daily.active_days, total_spend=daily.total, percentiles=percentiles, largest_day=largest_day,
        largest_day_spend=largest, average_monthly_spend=shown(daily.average_month), trigger_amount=trigger,
        recharge_amount=recharge, initial_funds=initial, yearly_use=shown(expiry.yearly_use),
        naive_purchase=expiry.naive_purchase, naive_expiry=shown(expiry.naive_expiry),
        largest_holding=expiry.largest_holding, plan_expiry=shown(expiry.plan_expiry),
        expiry_waste_avoided=shown(expiry.avoided), reasoning=figures.sentences())


@dataclass(frozen=True, slots=True)
class _Expiry:
    """Exact expiry figures: U, N, N − U, H and max(0, H − U) of the module docstring."""
    yearly_use: Fraction
    naive_purchase: Decimal
    naive_expiry: Fraction
    largest_holding: Decimal
    plan_expiry: Fraction

    @classmethod
    def of(cls, yearly_use: Fraction, factor: Fraction, largest_holding: Decimal) -> "_Expiry":
        naive = round_up(yearly_use * factor)
        return cls(yearly_use, naive, Fraction(naive) - yearly_use, largest_holding,
                   max(Fraction(0), Fraction(largest_holding) - yearly_use))

    @property
    def avoided(self) -> Fraction:
        return self.naive_expiry - self.plan_expiry


@dataclass(frozen=True, slots=True)
class _Figures:
    """The numbers the reasoning quotes; each sentence states one formula with its values."""
    daily: DailySpend
    margin: Decimal
    lifetime: int
    percentiles: dict[int, Decimal]
    trigger: Decimal
    recharge: Decimal
    initial: Decimal
    expiry: _Expiry

    def sentences(self) -> tuple[str, ...]:
        return (self._window(), self._total(), self._percentiles(), self._trigger(), self._recharge(),
                self._initial(), self._expiry())

    @property
    def factor(self) -> str:
        return f"{1 + self.margin:f}"

    def _window(self) -> str:
        window, active = self.daily.window, self.daily.active_days
        return (f"The window is {window.start} to {_last_day(window)}: {window.months} whole "
                f"month{_plural(window.months)}, {window.days} days; {active} day{_plural(active)} had "
                f"credit-paid calls and the other {window.days - active} count as 0.")

    def _total(self) -> str:
        months = self.daily.window.months
        return (f"Credit-paid spend (debited + uncollected) was {self.daily.total} in total, "
                f"{shown(self.daily.average_month)} a month on average ({self.daily.total} / {months}).")

    def _percentiles(self) -> str:
        day, amount = self.daily.largest
        values = ", ".join(f"p{rank} {value}" for rank, value in self.percentiles.items())
        return (f"Daily spend percentiles (nearest rank over all {self.daily.window.days} days): {values}; "
                f"the largest day was {day} with {amount}.")

    def _trigger(self) -> str:
        largest = self.daily.largest[1]
        return (f"Trigger: the largest day {largest} × {self.factor} = {shown(largest * (1 + self.margin))}, "
                f"rounded up to {self.trigger}: a balance at the trigger covers the worst day seen, with the "
                f"margin, while a recharge is paid.")

    def _recharge(self) -> str:
        p90 = self.percentiles[90]
        month_of_busy_days = shown(p90 * RECHARGE_COVER_DAYS * (1 + self.margin))
        return (f"Recharge: the 90th-percentile day {p90} × {RECHARGE_COVER_DAYS} days × {self.factor} = "
                f"{month_of_busy_days}; the larger of that rounded up and the trigger is {self.recharge}, so one "
                f"recharge covers a month of busy days and lifts the balance back above the trigger.")

    def _initial(self) -> str:
        average = self.daily.average_month
        return (f"Initial funds: the average month {shown(average)} × {self.factor} = "
                f"{shown(average * (1 + Fraction(self.margin)))}, rounded up to {self.initial}.")

    def _expiry(self) -> str:
        expiry = self.expiry
        naive = (f"Expiry: lots expire {self.lifetime} months after they are added; at the average rate "
                 f"{shown(expiry.yearly_use)} is used in {self.lifetime} months. Buying that up front with the "
                 f"same margin ({expiry.naive_purchase}) would leave {shown(expiry.naive_expiry)} to expire. ")
        held = (f"This plan holds at most {expiry.largest_holding} at a time (the larger of the initial funds "
                f"and trigger + recharge)")
        if expiry.plan_expiry == 0:
            return naive + f"{held}, which is spent before it expires: {shown(expiry.avoided)} of expiry waste avoided."
        return naive + (f"{held}, more than {self.lifetime} months of average use: up to {shown(expiry.plan_expiry)} "
                        f"could expire, so the expiry waste avoided is {shown(expiry.avoided)}; the largest day "
                        f"is rare next to the average month.")


def _days(window: Window) -> list[date]:
    first = window.start.toordinal()
    return [date.fromordinal(first + offset) for offset in range(window.days)]


def _last_day(window: Window) -> date:
    return date.fromordinal(window.end.toordinal() - 1)


def _plural(count: int) -> str:
    return "" if count == 1 else "s"
