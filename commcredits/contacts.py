"""Setting and reading an organization's billing contacts (the `BillingContacts` aggregate).

`normalise_contacts` is the edge: it turns what an operator typed into the canonical values the
events carry (or says precisely what is wrong). `set_contacts` and `read_contacts` open the
store, check that the organization exists, and close the store again.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from babel import Locale, UnknownLocaleError
from email_validator import EmailNotValidError, validate_email
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, PersistenceError

from application.billing_application import BillingApplication
from application.settings import StoreSettings
from commcredits.admin import ConcurrentUpdate, StoreUnavailable
from commcredits.composition import open_application
from domain.billing_contacts import MAX_EMAILS, MAX_WEBHOOKS, BillingContacts
from domain.credit_account import CreditAccount
from domain.errors import InvalidInput, UnknownOrganization
from domain.timestamps import encode_timestamp

MAX_WEBHOOK_URL_CHARS = 2000
WEBHOOK_SCHEMES = ("http", "https")
REGISTERED, CHANGED, UNCHANGED = "registered", "changed", "unchanged"


# ----- the edge: normalise and validate ---------------------------------------------------------

def normalise_contacts(emails: list[str], webhooks: list[str],
                       locale: str | None) -> tuple[list[str], list[str], str | None]:
    """(e-mails, webhook URLs, locale) in the form events carry: each list normalised, without
    duplicates, sorted, within its bound. Raises `InvalidInput` naming the first bad value."""
    normal_emails = sorted({normalise_email(email) for email in emails})
    _check_bound(normal_emails, MAX_EMAILS, "e-mail addresses")
    normal_webhooks = sorted({normalise_webhook(url) for url in webhooks})
    _check_bound(normal_webhooks, MAX_WEBHOOKS, "webhook URLs")
    return normal_emails, normal_webhooks, normalise_locale(locale)


def normalise_email(text: str) -> str:
    """The address as `email_validator` normalises it (domain lower-cased, Unicode kept in NFC);
    deliverability is not checked here: no DNS lookups at the edge."""
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized
    except EmailNotValidError as error:
        raise InvalidInput(f"e-mail address {text!r} is not valid: {error}") from None


def normalise_webhook(text: str) -> str:
    """An absolute http(s) URL with a host and no credentials; scheme and host lower-cased."""
    url = text.strip()
    _check_webhook_text(text, url)
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise InvalidInput(f"webhook URL {text!r} is not a valid URL: {error}") from None
    if parts.scheme not in WEBHOOK_SCHEMES:
        why = f"its scheme is {parts.scheme!r}" if parts.scheme else "it is not an absolute URL"
        raise InvalidInput(f"webhook URL {text!r} must be an absolute http:// or https:// URL; {why}")
    if "@" in parts.netloc:
        raise InvalidInput(f"webhook URL {text!r} must not carry credentials (user:password@)")
    try:
        parts.port  # noqa: B018 - reading it validates the port
    except ValueError:
        raise InvalidInput(f"webhook URL {text!r} has an invalid port") from None
    if not parts.hostname:
        raise InvalidInput(f"webhook URL {text!r} has no host")
    return urlunsplit(parts._replace(netloc=parts.netloc.lower()))


def normalise_locale(text: str | None) -> str | None:
    """A locale babel knows, as `language[_Script][_TERRITORY]` ("fr-FR" and "fr_FR" → "fr_FR");
    None or blank: no locale (the alerts use the usual locale of the organization's country)."""
    if text is None or not text.strip():
        return None
    wanted = text.strip().replace("-", "_")
    if not all(part.isascii() and part.isalnum() for part in wanted.split("_")):
        raise InvalidInput(f"locale {text!r} must look like fr_FR or fr-FR (letters, digits and _ or -)")
    try:
        parsed = str(Locale.parse(wanted))
    except (ValueError, UnknownLocaleError):
        raise InvalidInput(f"locale {text!r} is not a known locale (e.g. fr_FR, en_US, de)") from None
    if parsed.lower() != wanted.lower():
        raise InvalidInput(f"locale {text!r} is not a known locale (the nearest is {parsed})")
    return parsed


def _check_webhook_text(text: str, url: str) -> None:
    if len(url) > MAX_WEBHOOK_URL_CHARS:
        raise InvalidInput(f"webhook URL {text[:60]!r}... is {len(url)} characters long, "
                           f"at most {MAX_WEBHOOK_URL_CHARS}")
    if any(char.isspace() or not char.isprintable() or char == "\\" for char in url):
        raise InvalidInput(f"webhook URL {text!r} contains a space, a backslash or a control character")


def _check_bound(values: list[str], bound: int, what: str) -> None:
    if len(values) > bound:
        raise InvalidInput(f"at most {bound} {what} per organization, got {len(values)} different ones")


# ----- the application: set and read -----------------------------------------------------------

def set_contacts(store: StoreSettings, org: str, emails: list[str], webhooks: list[str], locale: str | None,
                 at: datetime) -> str:
    """Replace the organization's contacts with exactly these (normalised first): "registered"
    the first time, "changed", or "unchanged" when they were already so (nothing saved)."""
    emails, webhooks, locale = normalise_contacts(emails, webhooks, locale)
    with _application(store) as app:
        _require_organization(app, org)
        contacts = _load(app, org)
        if contacts is None:
            contacts, outcome = BillingContacts.register(org, emails, webhooks, locale, at), REGISTERED
        elif contacts.change(emails, webhooks, locale, at):
            outcome = CHANGED
        else:
            return UNCHANGED
        try:
            app.save(contacts)
        except IntegrityError:
            raise ConcurrentUpdate("another process changed this organization's billing contacts at the same "
                                   "time; nothing was saved, run the command again") from None
        return outcome


def read_contacts(store: StoreSettings, org: str) -> dict[str, Any] | None:
    """{"org", "emails", "webhooks", "locale", "at"}, or None when they were never set."""
    with _application(store) as app:
        _require_organization(app, org)
        contacts = _load(app, org)
    if contacts is None:
        return None
    return {"org": org, "emails": list(contacts.emails), "webhooks": list(contacts.webhooks),
            "locale": contacts.locale, "at": encode_timestamp(contacts.changed_at)}


@contextmanager
def _application(store: StoreSettings) -> Iterator[BillingApplication]:
    """The application on `store`, closed afterwards; store failures become `StoreUnavailable`."""
    try:
        app = open_application(store)
    except PersistenceError as error:
        raise StoreUnavailable(f"{store.description}: {error}") from None
    try:
        yield app
    except PersistenceError as error:
        raise StoreUnavailable(str(error)) from None
    finally:
        app.close()


def _require_organization(app: BillingApplication, org: str) -> None:
    """Reads one event of the organization's account, not the whole account."""
    if not app.recorder.select_events(CreditAccount.create_id(org), limit=1):
        raise UnknownOrganization(org)


def _load(app: BillingApplication, org: str) -> BillingContacts | None:
    try:
        return app.repository.get(BillingContacts.create_id(org))
    except AggregateNotFoundError:
        return None
