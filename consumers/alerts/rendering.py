"""An alert as the e-mail its organization's billing contacts read: subject, plain text and HTML.

The facts arrive JSON-ready (amounts as 4-decimal strings, times as ISO 8601 UTC strings); here they
are formatted once, in the organization's currency and locale, and the templates only lay them out.
Guarantees:
- amounts show the currency's usual digits, rounded half-up (what a person rounding by hand expects;
  babel alone would round half-even);
- times are shown in UTC, whatever the machine's time zone, and say so;
- the subject is one line: control and line-separator characters in interpolated values become spaces;
- HTML is autoescaped, the plain text is not; a missing template variable is an error, not a blank;
- rendering never raises for an unknown country or a malformed locale: it falls back to en_US, because a
  consumer must not stop on an alert it can still deliver.
"""

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

import jinja2
from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime
from babel.numbers import format_currency, get_currency_precision

from consumers.alerts.kinds import (
    AUTO_RECHARGE_SUSPENDED,
    BALANCE_BELOW_TRIGGER,
    BALANCE_DEPLETED,
    CALLS_UNCOLLECTED,
    FUNDS_EXPIRED,
    FUNDS_EXPIRING,
    ORDER_PLACED,
    RECHARGE_FAILED,
    RECHARGE_SUCCEEDED,
    Alert,
    OrgProfile,
)

FALLBACK_LOCALE = Locale("en", "US")

# Facts holding an amount (4-decimal strings) and facts holding a day; the others are shown as they are.
AMOUNT_FACTS = frozenset({"amount", "balance", "trigger_amount", "remaining", "funds", "recharge_amount"})
DAY_FACTS = frozenset({"day", "expires_at"})

# One line each; the values are the formatted facts plus `org` (the organization's name) and `reason`.
SUBJECTS: dict[str, str] = {
    RECHARGE_SUCCEEDED: "[{org}] Auto-recharge succeeded: {amount} added",
    RECHARGE_FAILED: "[{org}] Auto-recharge failed: {reason}",
    AUTO_RECHARGE_SUSPENDED: "[{org}] Auto-recharge suspended: {reason}",
    BALANCE_DEPLETED: "[{org}] Your Communications Credits balance is used up",
    BALANCE_BELOW_TRIGGER: "[{org}] Balance {balance} is below {trigger_amount}",
    FUNDS_EXPIRING: "[{org}] {remaining} of credits expire on {expires_at}",
    FUNDS_EXPIRED: "[{org}] {amount} of credits expired",
    ORDER_PLACED: "[{org}] Communications Credits order placed: {funds}",
    CALLS_UNCOLLECTED: "[{org}] Calls charged as uncollected on {day}: add funds",
}

_NOT_ONE_LINE = re.compile(r"\s+")


@dataclass(frozen=True)
class RenderedAlert:
    subject: str
    text: str
    html: str


# ----- locale and formatting ------------------------------------------------------------------------

def locale_for(profile: OrgProfile) -> Locale:
    """The override when it parses, else the country's usual locale, else en_US: never raises, because
    a bad override is refused at the CLI and an unknown country must still get its alert."""
    if profile.locale:
        return _parsed_locale(profile.locale.replace("-", "_")) or FALLBACK_LOCALE
    return _country_locale(profile.country) or FALLBACK_LOCALE


def _parsed_locale(identifier: str) -> Locale | None:
    try:
        return Locale.parse(identifier)
    except (UnknownLocaleError, ValueError, TypeError):
        return None


def _country_locale(country: str) -> Locale | None:
    """Likely subtags (CLDR) give the usual language of a country: FR -> fr_FR, CH -> de_CH."""
    if not (isinstance(country, str) and country.isascii() and country.isalpha() and len(country) == 2):
        return None
    return _parsed_locale(f"und_{country.upper()}")


def format_amount(amount: str | Decimal, currency: str, locale: Locale) -> str:
    """The amount with the currency's usual digits, rounded half-up here so that babel, which would
    round half-even, only lays out a value that already has the right digits."""
    digits = get_currency_precision(currency)
    rounded = Decimal(amount).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)
    return format_currency(rounded, currency, locale=locale, currency_digits=True)


def format_moment(iso: str, locale: Locale) -> str:
    """The locale's medium date and time in UTC, marked "UTC": contacts in many time zones read the same
    alert, and the engine's clock is UTC."""
    return f"{format_datetime(_utc(iso), 'medium', tzinfo=timezone.utc, locale=locale)} UTC"


def format_day(iso_or_date: str, locale: Locale) -> str:
    """The locale's medium date: a bare date as given, a moment as its UTC day."""
    day = date.fromisoformat(iso_or_date) if len(iso_or_date) == 10 else _utc(iso_or_date).date()
    return format_date(day, "medium", locale=locale)


def _utc(iso: str) -> datetime:
    """An ISO 8601 moment in UTC; a moment without an offset is taken as UTC (the engine's clock)."""
    moment = datetime.fromisoformat(iso)
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def formatted_facts(facts: dict[str, Any], currency: str, locale: Locale) -> dict[str, Any]:
    """Every amount and day formatted; null and other facts as they are (templates test for null)."""
    return {name: _formatted(name, value, currency, locale) for name, value in facts.items()}


def _formatted(name: str, value: Any, currency: str, locale: Locale) -> Any:
    if value is None:
        return None
    if name in AMOUNT_FACTS:
        return format_amount(value, currency, locale)
    if name in DAY_FACTS:
        return format_day(value, locale)
    return value


# ----- subject ---------------------------------------------------------------------------------------

def one_line(value: Any) -> str:
    """The value with control, format and line-separator characters (and runs of white space) turned
    into one space: a header must not be split, whatever an organization's name contains."""
    text = "".join(" " if _breaks_a_header(char) else char for char in str(value))
    return _NOT_ONE_LINE.sub(" ", text).strip()


def _breaks_a_header(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] == "C" or category in ("Zl", "Zp")


def subject_for(kind: str, values: dict[str, Any]) -> str:
    """The kind's subject with every value made one line first."""
    return SUBJECTS[kind].format_map({name: one_line(value) for name, value in values.items()})


def _subject_values(profile: OrgProfile, facts: dict[str, Any]) -> dict[str, Any]:
    """What subjects may name: the formatted facts, the org's name, and `reason`: the gateway's decline
    reason, or what was declined when the gateway gave none."""
    return {**facts, "org": profile.name, "reason": facts.get("decline_reason") or _declined(facts.get("payment"))}


def _declined(payment: dict[str, Any] | None) -> str:
    return "card declined" if payment and payment.get("method") == "card" else "payment declined"


def describe_payment(payment: dict[str, Any] | None) -> str | None:
    """The payment method as a contact recognises it: the card and its expiry, or the agreement and PO."""
    if not payment:
        return None
    if payment.get("method") == "card":
        return f"card {payment.get('card')} (expires {payment.get('expires')})"
    po = f", purchase order {payment['po']}" if payment.get("po") else ""
    return f"Enterprise Agreement {payment.get('agreement')}{po}"


# ----- templates -------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """One environment for the process: templates are compiled once. StrictUndefined so a missing fact
    fails the render (and the tests) instead of sending a blank; autoescape for HTML only."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("consumers.alerts", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_alert(alert: Alert, profile: OrgProfile) -> RenderedAlert:
    """Subject, plain text and HTML of one alert, for its organization's currency and locale."""
    locale = locale_for(profile)
    facts = formatted_facts(alert.facts, profile.currency, locale)
    subject = subject_for(alert.kind, _subject_values(profile, facts))
    context = {"alert": alert, "facts": facts, "org_name": profile.name, "subject": subject,
               "payment": describe_payment(alert.facts.get("payment")), "at": format_moment(alert.at, locale)}
    templates = environment()
    return RenderedAlert(subject=subject,
                         text=templates.get_template(f"{alert.kind}.txt.j2").render(context),
                         html=templates.get_template(f"{alert.kind}.html.j2").render(context))
