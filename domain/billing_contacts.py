"""An organization's billing contacts: who the alerts are sent to (e-mail addresses, webhook
URLs) and the locale they are written in.

Every event carries the whole set (sorted, without duplicates) and the organization, so the
alert consumer needs only the latest event of an organization to know its contacts, and the
event relay keys every message by organization. The values are normalised and validated at the
edge (`commcredits.contacts`); here the bounds are invariants.
"""

from collections.abc import Sequence
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate

from domain.timestamps import decode_timestamp, encode_timestamp

MAX_EMAILS = 10
MAX_WEBHOOKS = 5


class BillingContacts(Aggregate):
    class Registered(Aggregate.Created):
        org: str
        emails: list[str]
        webhooks: list[str]
        locale: str | None
        at: str

    def __init__(self, org: str, emails: list[str], webhooks: list[str], locale: str | None, at: str) -> None:
        self.org = org
        self.emails, self.webhooks, self.locale = list(emails), list(webhooks), locale
        self.changed_at = decode_timestamp(at)

    @staticmethod
    def create_id(org: str) -> UUID:
        return uuid5(NAMESPACE_URL, f"commcredits:billing-contacts:{org}")

    @classmethod
    def register(cls, org: str, emails: Sequence[str], webhooks: Sequence[str], locale: str | None,
                 at: datetime) -> "BillingContacts":
        emails, webhooks = _canonical(emails, webhooks, locale)
        return cls._create(cls.Registered, id=cls.create_id(org), org=org, emails=emails, webhooks=webhooks,
                           locale=locale, at=encode_timestamp(at))

    def change(self, emails: Sequence[str], webhooks: Sequence[str], locale: str | None, at: datetime) -> bool:
        """Replace the contacts with exactly these; False (and no event) when nothing differs."""
        emails, webhooks = _canonical(emails, webhooks, locale)
        if (emails, webhooks, locale) == (self.emails, self.webhooks, self.locale):
            return False
        self.trigger_event(self.Changed, org=self.org, emails=emails, webhooks=webhooks, locale=locale,
                           at=encode_timestamp(at))
        return True

    class Changed(Aggregate.Event):
        org: str
        emails: list[str]
        webhooks: list[str]
        locale: str | None
        at: str

        def apply(self, contacts: "BillingContacts") -> None:
            contacts.emails, contacts.webhooks, contacts.locale = list(self.emails), list(self.webhooks), self.locale
            contacts.changed_at = decode_timestamp(self.at)


def _canonical(emails: Sequence[str], webhooks: Sequence[str], locale: str | None) -> tuple[list[str], list[str]]:
    """The lists as events carry them; the edge has validated the values, so a breach is a bug."""
    emails, webhooks = sorted(set(emails)), sorted(set(webhooks))
    assert all(isinstance(email, str) and "@" in email for email in emails), f"not e-mail addresses: {emails}"
    assert all(isinstance(url, str) and url for url in webhooks), f"not webhook URLs: {webhooks}"
    assert len(emails) <= MAX_EMAILS, f"{len(emails)} e-mail addresses, at most {MAX_EMAILS}"
    assert len(webhooks) <= MAX_WEBHOOKS, f"{len(webhooks)} webhook URLs, at most {MAX_WEBHOOKS}"
    assert locale is None or (isinstance(locale, str) and locale), f"not a locale: {locale!r}"
    return emails, webhooks
