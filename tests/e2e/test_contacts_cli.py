"""`contacts set|show` on a persistent store (a SQLite file and real PostgreSQL): each invocation
a separate run, as an operator would type them; the events they leave are read back from the store
as the relay would publish them."""

import orjson
import pytest
from typer.testing import CliRunner

from application.billing_application import BillingApplication
from application.event_documents import event_document
from application.settings import store_from_url
from commcredits.cli import app
from domain.billing_contacts import BillingContacts
from producers.event_messages import OrganizationKeys, event_message

ORG = "contoso"
T0 = "2026-01-01T09:00:00Z"



@pytest.fixture
def contoso(cli) -> None:
    cli("org", "create", ORG, "--name", "Contoso Ltd", "--country", "FR", "--currency", "EUR", "--at", T0)


def stored_contact_events(database_url: str) -> list[tuple[bytes, dict]]:
    """(relay key, wire document) of every BillingContacts event, in the store's order."""
    application = BillingApplication(env=store_from_url(database_url).env)
    try:
        notifications = application.recorder.select_notifications(1, 1000)
        transcoder, keys = application.mapper.transcoder, OrganizationKeys()
        return [(event_message(notification, transcoder, keys)[0], event_document(notification, transcoder))
                for notification in notifications if notification.topic.endswith(":BillingContacts.Registered")
                or notification.topic.endswith(":BillingContacts.Changed")]
    finally:
        application.close()


def shown(cli) -> dict:
    return orjson.loads(cli("contacts", "show", ORG, "--json").stdout)


def test_set_show_change_and_unchanged_leave_one_event_per_real_change(cli, contoso, database_url):
    assert cli("contacts", "show", ORG).stdout == f"{ORG}: no billing contacts set\n"
    assert shown(cli) == {"org": ORG, "emails": [], "webhooks": [], "locale": None, "at": None}

    first = cli("contacts", "set", ORG, "--email", "Billing@Contoso.COM", "--email", "zoë@münchen.de",
                "--email", "billing@contoso.com", "--webhook", "HTTPS://Hooks.Contoso.com/alerts?t=X",
                "--locale", "fr-FR", "--at", "2026-01-02T10:00:00+01:00").stdout
    assert first == ("billing contacts of contoso registered:\n"
                     "  e-mail: Billing@contoso.com\n  e-mail: billing@contoso.com\n  e-mail: zoë@münchen.de\n"
                     "  webhook: https://hooks.contoso.com/alerts?t=X\n  locale: fr_FR\n")
    assert shown(cli) == {"org": ORG, "emails": ["Billing@contoso.com", "billing@contoso.com", "zoë@münchen.de"],
                          "webhooks": ["https://hooks.contoso.com/alerts?t=X"], "locale": "fr_FR",
                          "at": "2026-01-02T09:00:00Z"}

    again = cli("contacts", "set", ORG, "--email", "zoë@MÜNCHEN.de", "--email", "billing@contoso.com",
                "--email", "Billing@contoso.com", "--webhook", "https://hooks.contoso.com/alerts?t=X",
                "--locale", "fr_FR", "--at", "2026-01-03T00:00:00Z").stdout
    assert again.startswith("billing contacts of contoso unchanged (nothing saved):\n")

    changed = cli("contacts", "set", ORG, "--webhook", "https://hooks.contoso.com/v2",
                  "--at", "2026-01-04T00:00:00Z").stdout
    assert changed == ("billing contacts of contoso changed:\n  webhook: https://hooks.contoso.com/v2\n"
                       "  locale: the usual one of the organization's country\n")
    text = cli("contacts", "show", ORG).stdout
    assert text == ("billing contacts of contoso (set at 2026-01-04T00:00:00Z):\n"
                    "  webhook: https://hooks.contoso.com/v2\n  locale: the usual one of the organization's country\n")

    nobody = cli("contacts", "set", ORG, "--at", "2026-01-05T00:00:00Z").stdout
    assert "no e-mail addresses and no webhooks: alerts reach nobody" in nobody
    assert shown(cli)["emails"] == [] and shown(cli)["webhooks"] == []

    events = stored_contact_events(database_url)
    assert [key for key, _ in events] == [ORG.encode()] * 3
    assert [(document["type"], document["version"], document["aggregate_version"], document["data"])
            for _, document in events] == [
        ("BillingContacts.Registered", 1, 1, {
            "org": ORG, "emails": ["Billing@contoso.com", "billing@contoso.com", "zoë@münchen.de"],
            "webhooks": ["https://hooks.contoso.com/alerts?t=X"], "locale": "fr_FR", "at": "2026-01-02T09:00:00Z",
            "originator_topic": "domain.billing_contacts:BillingContacts"}),
        ("BillingContacts.Changed", 1, 2, {
            "org": ORG, "emails": [], "webhooks": ["https://hooks.contoso.com/v2"], "locale": None,
            "at": "2026-01-04T00:00:00Z"}),
        ("BillingContacts.Changed", 1, 3, {
            "org": ORG, "emails": [], "webhooks": [], "locale": None, "at": "2026-01-05T00:00:00Z"}),
    ]
    assert {document["aggregate_id"] for _, document in events} == {str(BillingContacts.create_id(ORG))}


def test_contacts_do_not_disturb_the_balance_view(cli, contoso):
    cli("contacts", "set", ORG, "--email", "billing@contoso.com", "--at", T0)
    cli("order", "place", ORG, "--order", "o-1", "--funds", "100", "--card", "visa-1", "--card-expires", "2027-12",
        "--at", "2026-01-02T00:00:00Z")
    assert orjson.loads(cli("balance", ORG, "--json").stdout)["balance"] == "100.0000"


@pytest.mark.parametrize("args, message", [
    (["contacts", "set", "nobody-org", "--email", "a@contoso.com"],
     "commcredits: unknown_organization: organization 'nobody-org' does not exist\n"),
    (["contacts", "show", "nobody-org"], "commcredits: unknown_organization: organization 'nobody-org' does not exist\n"),
    (["contacts", "set", ORG, "--email", "a@contoso.com", "--email", "not-an-address"],
     "commcredits: invalid_input: e-mail address 'not-an-address' is not valid: "),
    (["contacts", "set", ORG, "--webhook", "ftp://hooks.contoso.com/a"],
     "commcredits: invalid_input: webhook URL 'ftp://hooks.contoso.com/a' must be an absolute http:// or https:// "
     "URL; its scheme is 'ftp'\n"),
    (["contacts", "set", ORG, "--locale", "xx_YY"], "commcredits: invalid_input: locale 'xx_YY' is not a known locale"),
    (["contacts", "set", ORG, "--at", "2026-01-01 09:00"], "commcredits: invalid_input: --at must be ISO 8601"),
], ids=["set-unknown-org", "show-unknown-org", "bad-email", "ftp-webhook", "bad-locale", "bad-at"])
def test_a_rejected_command_exits_1_with_the_code_and_changes_nothing(cli, contoso, database_url, args, message):
    cli("contacts", "set", ORG, "--email", "billing@contoso.com", "--at", T0)
    rejected = cli(*args, expect=1)
    assert rejected.stderr.startswith(message), rejected.stderr
    assert rejected.stdout == ""
    assert shown(cli)["emails"] == ["billing@contoso.com"]
    assert len(stored_contact_events(database_url)) == 1


def test_bad_usage_exits_2_and_an_unreachable_server_exits_3():
    runner = CliRunner()
    usage = runner.invoke(app, ["contacts", "set"], env={"COMMCREDITS_DATABASE_URL": "memory"})
    assert usage.exit_code == 2
    bad_setting = runner.invoke(app, ["contacts", "show", ORG], env={"COMMCREDITS_DATABASE_URL": "mysql://x/y"})
    assert bad_setting.exit_code == 2 and "COMMCREDITS_DATABASE_URL must start with" in bad_setting.stderr
    down = runner.invoke(app, ["contacts", "set", ORG, "--email", "a@contoso.com"],
                         env={"COMMCREDITS_DATABASE_URL": "postgresql://postgres@127.0.0.1:9/test"})
    assert down.exit_code == 3 and down.stderr.startswith("commcredits: event store unavailable: "), down.stderr
