"""Alert e-mails: every kind renders in text and HTML, values are escaped where they must be, subjects
stay one line, amounts are rounded half-up in the currency's digits and the locale's separators, and
times are UTC whatever the machine's time zone."""

import time
from collections.abc import Iterator
from decimal import ROUND_HALF_UP, Decimal

import markupsafe
import pytest
from babel import Locale
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.alerts.kinds import FACTS, KINDS, Alert, OrgProfile
from consumers.alerts.rendering import SUBJECTS, format_amount, format_day, format_moment, locale_for, render_alert

EN_US = Locale.parse("en_US")
CONTOSO = OrgProfile(org="contoso", name="Contoso", country="US", currency="USD")
AT = "2026-03-01T09:30:00Z"

# A realistic alert of each kind, and what its e-mail must show (for CONTOSO: USD, en_US).
SAMPLES: dict[str, tuple[dict, list[str]]] = {
    "recharge_succeeded": ({"attempt": 1, "amount": "100.0000", "payment_reference": "ch_3Pq9xK"},
                           ["$100.00", "ch_3Pq9xK"]),
    "recharge_failed": ({"attempt": 2, "amount": "250.0050", "decline_reason": "insufficient_funds",
                         "payment": {"method": "card", "card": "visa-4242", "expires": "2027-08"}},
                        ["$250.01", "insufficient_funds", "card visa-4242 (expires 2027-08)",
                         "commcredits payment-method set contoso", "commcredits funds add contoso", "suspended"]),
    "auto_recharge_suspended": ({"decline_reason": "expired_card"},
                                ["expired_card", "commcredits payment-method set contoso",
                                 "commcredits auto-recharge set contoso", "commcredits funds add contoso"]),
    "balance_depleted": ({"cause": "cdr-20260301-000123"}, ["cdr-20260301-000123", "uncollected"]),
    "balance_below_trigger": ({"balance": "4.9950", "trigger_amount": "10.0000", "auto_recharge": "suspended"},
                              ["$5.00", "$10.00", "suspended", "commcredits payment-method set contoso"]),
    "funds_expiring": ({"lot_number": 3, "remaining": "1234.5650", "expires_at": "2027-03-01T00:00:00Z"},
                       ["$1,234.57", "lot 3", "Mar 1, 2027", "Use or lose"]),
    "funds_expired": ({"lot_number": 1, "amount": "12.3449"}, ["$12.34", "lot 1"]),
    "order_placed": ({"order_id": "ORD-2026-0042", "funds": "500.0000", "auto_recharge_enabled": True,
                      "recharge_amount": "100.0000", "trigger_amount": "20.0000"},
                     ["ORD-2026-0042", "$500.00", "$100.00", "$20.00"]),
    "calls_uncollected": ({"day": "2026-03-14", "usage_id": "cdr-20260314-000007", "amount": "0.1250"},
                          ["Mar 14, 2026", "cdr-20260314-000007", "$0.13", "commcredits funds add contoso"]),
}


def alert_of(kind: str, facts: dict | None = None, position: int = 42) -> Alert:
    return Alert(id=f"{position}:{kind}", kind=kind, org="contoso", position=position, at=AT,
                 facts=SAMPLES[kind][0] if facts is None else facts)


def spaced(text: str) -> str:
    """Babel's no-break and narrow no-break spaces as plain spaces: tests compare what a reader sees."""
    return text.replace("\u202f", " ").replace("\xa0", " ")


# ----- every kind ------------------------------------------------------------------------------------

def test_the_samples_and_subjects_cover_every_kind_with_its_facts() -> None:
    assert set(SAMPLES) == KINDS
    assert set(SUBJECTS) == KINDS
    for kind, (facts, _) in SAMPLES.items():
        assert tuple(facts) == FACTS[kind], kind


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_renders_its_values_in_text_and_html(kind: str) -> None:
    rendered = render_alert(alert_of(kind), CONTOSO)
    for body in (spaced(rendered.text), spaced(rendered.html)):
        for expected in [*SAMPLES[kind][1], "Contoso", f"42:{kind}", "Mar 1, 2026, 9:30:00 AM UTC",
                         "You receive this because you are a billing contact of Contoso."]:
            assert expected in body, (kind, expected)
    assert rendered.subject.startswith("[Contoso] ")
    assert "<html" in rendered.html and "<html" not in rendered.text


def test_a_card_declined_without_reason_says_declined() -> None:
    facts = {**SAMPLES["recharge_failed"][0], "decline_reason": None}
    rendered = render_alert(alert_of("recharge_failed", facts), OrgProfile("contoso", "Contoso", "US", "USD"))
    assert rendered.subject == "[Contoso] Auto-recharge failed: card declined"
    assert "Reason: declined" in rendered.text


def test_an_agreement_shows_its_agreement_and_purchase_order() -> None:
    facts = {**SAMPLES["recharge_failed"][0], "decline_reason": None,
             "payment": {"method": "enterprise_agreement", "agreement": "EA-100", "po": "PO-7"}}
    rendered = render_alert(alert_of("recharge_failed", facts), CONTOSO)
    assert rendered.subject == "[Contoso] Auto-recharge failed: payment declined"
    assert "Enterprise Agreement EA-100, purchase order PO-7" in rendered.text
    without_po = {**facts, "payment": {"method": "enterprise_agreement", "agreement": "EA-100", "po": None}}
    assert "purchase order" not in render_alert(alert_of("recharge_failed", without_po), CONTOSO).text


@pytest.mark.parametrize("kind, facts, shown, not_shown", [
    ("balance_depleted", {"cause": "expiry"}, "Your last funds expired", "Call expiry"),
    ("balance_below_trigger", {"balance": "4.0000", "trigger_amount": "10.0000", "auto_recharge": "off"},
     "Auto-recharge is off", "suspended"),
    ("order_placed", {"order_id": "ORD-1", "funds": "500.0000", "auto_recharge_enabled": False,
                      "recharge_amount": None, "trigger_amount": None}, "Auto-recharge: off", "whenever"),
], ids=["depleted-by-expiry", "below-trigger-auto-recharge-off", "order-without-auto-recharge"])
def test_the_variants_of_a_kind(kind: str, facts: dict, shown: str, not_shown: str) -> None:
    rendered = render_alert(alert_of(kind, facts), CONTOSO)
    for body in (rendered.text, rendered.html):
        assert shown in body and not_shown not in body


# ----- escaping and subjects -------------------------------------------------------------------------

def test_the_org_name_is_escaped_in_html_and_raw_in_text() -> None:
    name = '<Acme & "Co">'
    rendered = render_alert(alert_of("funds_expired"), OrgProfile("acme", name, "US", "USD"))
    assert str(markupsafe.escape(name)) in rendered.html
    assert name not in rendered.html and "<Acme" not in rendered.html
    assert f"billing contact of {name}." in rendered.text
    assert rendered.subject.startswith(f"[{name}] ")


def test_a_decline_reason_cannot_inject_markup() -> None:
    facts = {**SAMPLES["recharge_failed"][0], "decline_reason": "<script>alert(1)</script>"}
    rendered = render_alert(alert_of("recharge_failed", facts), CONTOSO)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered.html
    assert "<script>alert(1)</script>" in rendered.text


@pytest.mark.parametrize("name", ["Contoso\nBcc: x@example.com", "Contoso\r\nBcc: x@example.com",
                                  "Contoso\u2028Bcc: x@example.com", "Contoso\x00\tBcc: x@example.com"])
def test_the_subject_is_one_line_whatever_the_org_name(name: str) -> None:
    facts = {**SAMPLES["auto_recharge_suspended"][0], "decline_reason": "do\nnot\rhonor"}
    subject = render_alert(alert_of("auto_recharge_suspended", facts), OrgProfile("c", name, "US", "USD")).subject
    assert subject == "[Contoso Bcc: x@example.com] Auto-recharge suspended: do not honor"
    assert subject.isprintable()


# ----- amounts ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("amount, currency, locale, expected", [
    ("0.0050", "USD", "en_US", "$0.01"),
    ("2.0049", "USD", "en_US", "$2.00"),
    ("2.0050", "USD", "en_US", "$2.01"),  # half-even would give $2.00
    ("0.0250", "USD", "en_US", "$0.03"),  # half-even would give $0.02
    ("1234.5650", "USD", "en_US", "$1,234.57"),
    ("0.0000", "USD", "en_US", "$0.00"),
    ("1234.5", "EUR", "fr_FR", "1 234,50 €"),
    ("1234.5", "EUR", "de_DE", "1.234,50 €"),
    ("1234567.8949", "EUR", "de_DE", "1.234.567,89 €"),
    ("1234.5665", "KWD", "en_US", "KWD 1,234.567"),
])
def test_amounts_are_rounded_half_up_in_the_currency_digits(amount: str, currency: str, locale: str,
                                                             expected: str) -> None:
    formatted = spaced(format_amount(amount, currency, Locale.parse(locale)))
    assert formatted.replace(currency + " ", currency) == expected.replace(currency + " ", currency)


@pytest.mark.parametrize("amount, digits", [("1234.5", "1,235"), ("2.5000", "3"), ("0.4999", "0"),
                                            ("1000000.0000", "1,000,000")])
def test_yen_has_no_minor_digits(amount: str, digits: str) -> None:
    formatted = format_amount(amount, "JPY", Locale.parse("ja_JP"))
    assert formatted.lstrip("¥￥") == digits  # the glyph is babel's choice; digits and rounding are ours


def test_a_decimal_and_a_negative_amount_are_formatted() -> None:
    assert format_amount(Decimal("1.005"), "USD", EN_US) == "$1.01"
    assert "1.01" in format_amount("-1.0050", "USD", EN_US)


def test_babel_groups_french_amounts_with_its_own_space() -> None:
    formatted = format_amount("1234.5", "EUR", Locale.parse("fr_FR"))
    assert formatted[1] in "\u202f\xa0 " and formatted.endswith("€")


# ----- locales ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("country, override, expected", [
    ("US", None, "en_US"),
    ("FR", None, "fr_FR"),
    ("JP", None, "ja_JP"),
    ("CH", None, "de_CH"),
    ("fr", None, "fr_FR"),
    ("US", "fr_FR", "fr_FR"),
    ("US", "de-DE", "de_DE"),
    ("FR", "en_GB", "en_GB"),
    ("ZZ", None, "en_US"),
    ("QQ", None, "en_US"),
    ("", None, "en_US"),
    ("FRA", None, "en_US"),
    ("FR", "xx_YY", "en_US"),
    ("FR", "not a locale!", "en_US"),
    ("FR", "", "fr_FR"),
])
def test_the_locale_is_the_override_else_the_country_usual_else_en_us(country: str, override: str | None,
                                                                      expected: str) -> None:
    assert str(locale_for(OrgProfile("o", "O", country, "EUR", override))) == expected


def test_an_alert_for_an_unknown_country_with_a_bad_locale_still_renders() -> None:
    rendered = render_alert(alert_of("funds_expired"), OrgProfile("o", "O", "QQ", "USD", "bad!!"))
    assert "$12.34" in rendered.text


def test_the_organization_locale_formats_the_whole_alert() -> None:
    rendered = render_alert(alert_of("funds_expiring"), OrgProfile("o", "Société", "FR", "EUR"))
    text = spaced(rendered.text)
    assert "1 234,57 €" in text and "1 mars 2027" in text and "1 mars 2026, 09:30:00 UTC" in text


# ----- times -----------------------------------------------------------------------------------------

@pytest.fixture
def far_east_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The machine at UTC+14, where a UTC evening is already the next day."""
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.usefixtures("far_east_clock")
@pytest.mark.parametrize("iso, moment, day", [
    ("2028-02-29T23:59:59Z", "Feb 29, 2028, 11:59:59 PM UTC", "Feb 29, 2028"),
    ("2026-12-31T23:59:59Z", "Dec 31, 2026, 11:59:59 PM UTC", "Dec 31, 2026"),
    ("2026-12-31T23:59:59.123456Z", "Dec 31, 2026, 11:59:59 PM UTC", "Dec 31, 2026"),
    ("2027-01-01T05:00:00+09:00", "Dec 31, 2026, 8:00:00 PM UTC", "Dec 31, 2026"),
    ("2026-12-31T23:59:59", "Dec 31, 2026, 11:59:59 PM UTC", "Dec 31, 2026"),
])
def test_times_are_shown_in_utc_whatever_the_machine_zone(iso: str, moment: str, day: str) -> None:
    assert time.localtime(1_800_000_000).tm_gmtoff == 14 * 3600  # 2027: UTC+14
    assert spaced(format_moment(iso, EN_US)) == moment
    assert format_day(iso, EN_US) == day


@pytest.mark.usefixtures("far_east_clock")
def test_a_bare_day_is_that_day() -> None:
    assert format_day("2028-02-29", EN_US) == "Feb 29, 2028"
    assert format_day("2026-12-31", Locale.parse("de_DE")) == "31.12.2026"


# ----- the rounding law ------------------------------------------------------------------------------

CURRENCY_DIGITS = {"USD": 2, "EUR": 2, "GBP": 2, "CHF": 2, "JPY": 0, "KWD": 3}
LOCALES = [Locale.parse(name) for name in ("en_US", "fr_FR", "de_DE", "de_CH", "ja_JP", "en_IN")]
TEN_THOUSANDTHS_UP_TO_A_BILLION = st.integers(min_value=0, max_value=10**9 * 10**4)


@settings(deadline=None, max_examples=300)
@given(TEN_THOUSANDTHS_UP_TO_A_BILLION, st.sampled_from(sorted(CURRENCY_DIGITS)), st.sampled_from(LOCALES))
def test_formatting_shows_the_amount_rounded_half_up(ten_thousandths: int, currency: str, locale: Locale) -> None:
    amount = f"{ten_thousandths // 10**4}.{ten_thousandths % 10**4:04d}"
    digits = CURRENCY_DIGITS[currency]
    formatted = format_amount(amount, currency, locale)
    minor_units = Decimal(amount).scaleb(digits).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    assert int("".join(char for char in formatted if char.isdigit())) == int(minor_units)
