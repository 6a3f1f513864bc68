"""`commcredits recommend ORG`: initial funds, an auto-recharge trigger and a recharge amount sized
on the organization's past credit-paid usage (docs/recommend.md; formulas in
`application/recommendation.py`).

Steps: read and check the options (nothing is opened for a bad option); the window is the
--months whole calendar months (UTC) before the month of --as-of; open the store the environment
names, bring the usage view up to the end of its log and read the organization's calls that
started in the window; sum each call's `debited + uncollected` per UTC day of its start; print
the recommendation and its reasoning (text or --json).

Exit status: 0 answered (also "no usage in the window", without figures), 1
`unknown_organization`, 2 bad usage, 3 the event store or its view database is unavailable.
"""

import re
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Annotated, Any, Optional

import orjson
import typer

from application.recommendation import NoSpend, Recommendation, Window, recommend
from commcredits.report_cli import usage_rows_or_exit
from commcredits.view_commands import EXIT_USAGE, fail
from domain.errors import InvalidInput
from domain.money import format_money
from domain.timestamps import add_calendar_months, format_timestamp, parse_timestamp
from projections.usage_queries import UsageRow

DEFAULT_MONTHS, MIN_MONTHS, MAX_MONTHS = 3, 1, 24
DEFAULT_MARGIN_PERCENT = "20"
MAX_MARGIN_PERCENT = Decimal("1000")
_PERCENT_TEXT = re.compile(r"[0-9]{1,4}(?:\.[0-9]{1,2})?")


def register(app: typer.Typer) -> None:
    app.command("recommend")(recommend_command)


def recommend_command(
    org: Annotated[str, typer.Argument(help="Organization id.")],
    months: Annotated[int, typer.Option("--months", help=f"Whole calendar months of history before the month of "
                                                         f"--as-of ({MIN_MONTHS}..{MAX_MONTHS}).")] = DEFAULT_MONTHS,
    margin: Annotated[str, typer.Option("--margin", help="Safety margin in percent, 0..1000, "
                                                         "at most 2 decimals.")] = DEFAULT_MARGIN_PERCENT,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="ISO 8601 with offset (default: now); its "
                                                                 "month is not in the window.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON document.")] = False,
) -> None:
    """Recommend initial funds, an auto-recharge trigger and a recharge amount for ORG from its usage."""
    moment = _as_of(as_of)
    window = usage_window(moment, _months(months))
    margin_fraction = _margin(margin)
    rows = _read_rows(org, window)
    answer = recommendation_for(rows, window, margin_fraction)
    document = {**recommendation_document(org, rows, window, margin_fraction, answer),
                "as_of": format_timestamp(moment)}
    if as_json:
        typer.echo(orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode())
    else:
        typer.echo(render_text(document), nl=False)


def usage_window(as_of: datetime, months: int) -> Window:
    """The `months` whole calendar months (UTC) before the month `as_of` falls in."""
    month_start = as_of.astimezone(timezone.utc).date().replace(day=1)
    start = add_calendar_months(datetime(month_start.year, month_start.month, 1), -months).date()
    return Window(start, month_start)


def recommendation_for(rows: list[UsageRow], window: Window, margin: Decimal) -> Recommendation | NoSpend:
    """Each call's credit-paid demand (`debited + uncollected`) on the UTC day it started."""
    spend = [(row.start_time.astimezone(timezone.utc).date(), row.debited + row.uncollected) for row in rows]
    return recommend(spend, window, margin)


def recommendation_document(org: str, rows: list[UsageRow], window: Window, margin: Decimal,
                            answer: Recommendation | NoSpend) -> dict[str, Any]:
    document: dict[str, Any] = {
        "org": org,
        "currency": rows[0].currency if rows else None,
        "window": {"start": window.start.isoformat(), "end": window.end.isoformat(), "months": window.months,
                   "days": window.days},
        "margin_percent": _percent(margin),
        "calls": len(rows),
    }
    if isinstance(answer, NoSpend):
        status = "no_usage" if not rows else "no_credit_spend"
        return {**document, "status": status, "recommendation": None, "daily_spend": None, "expiry": None,
                "reasoning": [_no_usage_sentence(rows, window)]}
    return {**document, "status": "recommended", **_figures(answer), "reasoning": list(answer.reasoning)}


def render_text(document: dict[str, Any]) -> str:
    window = document["window"]
    header = (f"{document['org']}: {window['months']} month{'' if window['months'] == 1 else 's'} of usage "
              f"from {window['start']} (included) to {window['end']} (excluded), margin {document['margin_percent']} %")
    lines = [header]
    if document["recommendation"] is None:
        lines += ["No recommendation:", *(f"- {sentence}" for sentence in document["reasoning"])]
        return "\n".join(lines) + "\n"
    currency, recommendation = document["currency"], document["recommendation"]
    lines += ["Recommendation:",
              *(f"  {label:<16}{recommendation[key]:>14} {currency}" for label, key in
                (("initial funds", "initial_funds"), ("trigger amount", "trigger_amount"),
                 ("recharge amount", "recharge_amount"))),
              f"Daily spend over {window['days']} days ({document['daily_spend']['active_days']} with calls):",
              *(f"  {label:<16}{document['daily_spend'][key]:>14} {currency}" for label, key in
                (("p50", "p50"), ("p90", "p90"), ("p99", "p99"), ("largest day", "largest"),
                 ("average month", "average_month"))),
              f"Expiry waste avoided: {document['expiry']['waste_avoided']} {currency}",
              "Reasoning:", *(f"- {sentence}" for sentence in document["reasoning"])]
    return "\n".join(lines) + "\n"


def _figures(answer: Recommendation) -> dict[str, Any]:
    return {
        "recommendation": {"initial_funds": format_money(answer.initial_funds),
                           "trigger_amount": format_money(answer.trigger_amount),
                           "recharge_amount": format_money(answer.recharge_amount)},
        "daily_spend": {"active_days": answer.active_days, "total": format_money(answer.total_spend),
                        **{f"p{rank}": format_money(value) for rank, value in answer.percentiles.items()},
                        "largest": format_money(answer.largest_day_spend),
                        "largest_day": answer.largest_day.isoformat(),
                        "average_month": format_money(answer.average_monthly_spend)},
        "expiry": {"lot_lifetime_months": answer.lot_lifetime_months, "yearly_use": format_money(answer.yearly_use),
                   "naive_purchase": format_money(answer.naive_purchase),
                   "naive_expiry": format_money(answer.naive_expiry),
                   "largest_holding": format_money(answer.largest_holding),
                   "plan_expiry": format_money(answer.plan_expiry),
                   "waste_avoided": format_money(answer.expiry_waste_avoided)},
    }


def _no_usage_sentence(rows: list[UsageRow], window: Window) -> str:
    last_day = date.fromordinal(window.end.toordinal() - 1)
    if not rows:
        return f"No usage in the window: no calls started from {window.start} to {last_day}."
    return (f"{len(rows)} call{'' if len(rows) == 1 else 's'} started from {window.start} to {last_day}, "
            "but none was paid from credits (included minutes, free calls or overage only).")


def _percent(margin: Decimal) -> str:
    return f"{(margin * 100).normalize():f}"


def _as_of(text: Optional[str]) -> datetime:
    if text is None:
        return datetime.now(timezone.utc)
    try:
        return parse_timestamp(text, field="--as-of")
    except InvalidInput as error:
        fail(error.message, EXIT_USAGE)


def _months(months: int) -> int:
    if not MIN_MONTHS <= months <= MAX_MONTHS:
        fail(f"--months must be a whole number of months from {MIN_MONTHS} to {MAX_MONTHS}, got {months}", EXIT_USAGE)
    return months


def _margin(text: str) -> Decimal:
    """A percentage: digits with at most 2 decimals, 0..1000; returned as a fraction (20 → 0.2)."""
    if not _PERCENT_TEXT.fullmatch(text) or Decimal(text) > MAX_MARGIN_PERCENT:
        fail(f"--margin must be a percentage from 0 to {MAX_MARGIN_PERCENT} with at most 2 decimals "
              f"(e.g. 20 or 12.5), got {text!r}", EXIT_USAGE)
    return Decimal(text) / 100


def _read_rows(org: str, window: Window) -> list[UsageRow]:
    start = datetime(window.start.year, window.start.month, 1, tzinfo=timezone.utc)
    end = datetime(window.end.year, window.end.month, 1, tzinfo=timezone.utc)
    return usage_rows_or_exit(org, start, end)
