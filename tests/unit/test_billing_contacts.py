"""Billing contacts: the aggregate (given → when → then events) and the edge's normalisation."""

from datetime import datetime, timezone

import pytest

from commcredits.contacts import MAX_WEBHOOK_URL_CHARS, normalise_contacts
from domain.billing_contacts import MAX_EMAILS, MAX_WEBHOOKS, BillingContacts
from domain.errors import InvalidInput

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=timezone.utc)
T1 = datetime(2026, 2, 1, 9, 0, 0, 250000, tzinfo=timezone.utc)


def names(events) -> list[str]:
    return [type(event).__name__ for event in events]


def registered() -> BillingContacts:
    contacts = BillingContacts.register("contoso", ["b@x.com", "a@x.com"], ["https://hooks.x.com/a"], None, T0)
    contacts.collect_events()
    return contacts


# ----- the aggregate ----------------------------------------------------------------------------


def test_register_records_the_whole_sorted_set_under_the_organizations_id():
    contacts = BillingContacts.register("contoso", ["b@x.com", "a@x.com", "b@x.com"], [], "fr_FR", T0)
    [event] = contacts.collect_events()
    assert type(event) is BillingContacts.Registered
    assert contacts.id == BillingContacts.create_id("contoso") != BillingContacts.create_id("fabrikam")
    assert (event.org, event.emails, event.webhooks, event.locale, event.at) == (
        "contoso", ["a@x.com", "b@x.com"], [], "fr_FR", "2026-01-01T09:00:00Z")
    assert (contacts.emails, contacts.webhooks, contacts.locale, contacts.changed_at) == (
        ["a@x.com", "b@x.com"], [], "fr_FR", T0)


def test_change_records_the_whole_new_set_with_the_org():
    contacts = registered()
    assert contacts.change(["c@x.com"], [], "de_DE", T1) is True
    [event] = contacts.collect_events()
    assert type(event) is BillingContacts.Changed
    assert (event.org, event.emails, event.webhooks, event.locale, event.at) == (
        "contoso", ["c@x.com"], [], "de_DE", "2026-02-01T09:00:00.250000Z")
    assert (contacts.emails, contacts.webhooks, contacts.locale, contacts.changed_at) == (["c@x.com"], [], "de_DE", T1)


def test_the_same_contacts_in_another_order_change_nothing():
    contacts = registered()
    assert contacts.change(["a@x.com", "b@x.com", "a@x.com"], ["https://hooks.x.com/a"], None, T1) is False
    assert contacts.collect_events() == []
    assert contacts.changed_at == T0


def test_replay_gives_the_same_state():
    contacts = BillingContacts.register("contoso", ["a@x.com"], [], None, T0)
    contacts.change([], ["https://hooks.x.com/b"], "fr_FR", T1)
    events = contacts.collect_events()
    replayed = None
    for event in events:
        replayed = event.mutate(replayed)
    assert (replayed.org, replayed.emails, replayed.webhooks, replayed.locale, replayed.changed_at, replayed.version) == (
        "contoso", [], ["https://hooks.x.com/b"], "fr_FR", T1, 2)


def test_the_bounds_are_invariants():
    with pytest.raises(AssertionError):
        BillingContacts.register("contoso", [f"u{n}@x.com" for n in range(MAX_EMAILS + 1)], [], None, T0)
    with pytest.raises(AssertionError):
        registered().change([], [f"https://x.com/{n}" for n in range(MAX_WEBHOOKS + 1)], None, T1)


# ----- normalise_contacts: e-mail addresses ----------------------------------------------------


def test_addresses_are_normalised_deduplicated_and_sorted():
    emails, webhooks, locale = normalise_contacts(
        ["  Bob@Contoso.COM ", "alice@contoso.com", "Bob@contoso.com", "zoë@münchen.DE"], [], None)
    # the domain is lower-cased; the local part is kept as typed (it may be case-sensitive)
    assert emails == ["Bob@contoso.com", "alice@contoso.com", "zoë@münchen.de"]
    assert (webhooks, locale) == ([], None)


def test_a_unicode_domain_is_kept_in_unicode_and_equals_its_other_spellings():
    assert normalise_contacts(["billing@MÜNCHEN.de", "billing@münchen.de"], [], None)[0] == ["billing@münchen.de"]


@pytest.mark.parametrize("address, why", [
    ("alice", "must have an @-sign"),
    ("alice@", "There must be something after the @-sign"),
    ("@contoso.com", "There must be something before the @-sign"),
    ("alice@localhost", "It should have a period"),
    ("alice@contoso.test", "special-use or reserved name"),
    ("al..ice@contoso.com", "two periods in a row"),
    ("Alice <alice@contoso.com>", "display name"),
    ("alice@contoso.com, bob@contoso.com", "not valid"),
    ("", "not valid"),
])
def test_a_bad_address_is_named_with_the_reason(address, why):
    with pytest.raises(InvalidInput) as raised:
        normalise_contacts(["ok@contoso.com", address], [], None)
    assert raised.value.code == "invalid_input"
    assert f"e-mail address {address!r} is not valid" in raised.value.message
    assert why in raised.value.message


def test_ten_addresses_are_allowed_eleven_are_not_duplicates_do_not_count():
    ten = [f"user{n}@contoso.com" for n in range(MAX_EMAILS)]
    assert len(normalise_contacts(ten + ["user0@CONTOSO.com"], [], None)[0]) == 10
    with pytest.raises(InvalidInput, match="at most 10 e-mail addresses per organization, got 11"):
        normalise_contacts(ten + ["user10@contoso.com"], [], None)


# ----- normalise_contacts: webhooks -------------------------------------------------------------


def test_webhooks_keep_path_query_and_port_and_lower_case_scheme_and_host():
    _, webhooks, _ = normalise_contacts([], [
        "HTTPS://Hooks.Contoso.COM:8443/Alerts?Token=AbC",
        "http://hooks.contoso.com/a",
        "https://hooks.contoso.com:8443/Alerts?Token=AbC",
        "https://[2001:DB8::1]/x",
    ], None)
    assert webhooks == ["http://hooks.contoso.com/a", "https://[2001:db8::1]/x",
                        "https://hooks.contoso.com:8443/Alerts?Token=AbC"]


@pytest.mark.parametrize("url, why", [
    ("ftp://hooks.contoso.com/a", "its scheme is 'ftp'"),
    ("javascript:alert(1)", "its scheme is 'javascript'"),
    ("/alerts", "it is not an absolute URL"),
    ("hooks.contoso.com/alerts", "it is not an absolute URL"),
    ("https://user:secret@hooks.contoso.com/a", "must not carry credentials"),
    ("https://token@hooks.contoso.com/a", "must not carry credentials"),
    ("https:///alerts", "has no host"),
    ("https://hooks.contoso.com:99999/a", "invalid port"),
    ("https://[::1/a", "not a valid URL"),
    ("https://hooks.contoso.com/a b", "contains a space"),
    ("https://evil.com\\@hooks.contoso.com/", "backslash"),
])
def test_a_bad_webhook_is_named_with_the_reason(url, why):
    with pytest.raises(InvalidInput) as raised:
        normalise_contacts([], [url], None)
    assert raised.value.code == "invalid_input"
    assert repr(url) in raised.value.message and why in raised.value.message


def test_webhook_length_and_count_bounds():
    base = "https://hooks.contoso.com/"
    longest = base + "a" * (MAX_WEBHOOK_URL_CHARS - len(base))
    assert normalise_contacts([], [longest], None)[1] == [longest]
    with pytest.raises(InvalidInput, match="2001 characters long, at most 2000"):
        normalise_contacts([], [longest + "a"], None)
    five = [f"{base}{n}" for n in range(MAX_WEBHOOKS)]
    assert len(normalise_contacts([], five, None)[1]) == 5
    with pytest.raises(InvalidInput, match="at most 5 webhook URLs per organization, got 6"):
        normalise_contacts([], five + [base + "5"], None)


# ----- normalise_contacts: locale ---------------------------------------------------------------


@pytest.mark.parametrize("given, stored", [
    ("fr_FR", "fr_FR"), ("fr-FR", "fr_FR"), ("FR_fr", "fr_FR"), (" de ", "de"), ("zh-Hant-TW", "zh_Hant_TW"),
    (None, None), ("", None),
])
def test_locale_forms(given, stored):
    assert normalise_contacts([], [], given)[2] == stored


@pytest.mark.parametrize("locale, why", [
    ("xx_YY", "is not a known locale"),
    ("en_ZZ", "the nearest is en_US"),  # babel would silently read it as en_US
    ("C", "the nearest is en_US_POSIX"),
    ("fr_FR.UTF-8", "must look like fr_FR"),
    ("fr__FR", "must look like fr_FR"),
    ("français", "must look like fr_FR"),
])
def test_a_bad_locale_is_named(locale, why):
    with pytest.raises(InvalidInput) as raised:
        normalise_contacts([], [], locale)
    assert repr(locale) in raised.value.message and why in raised.value.message
