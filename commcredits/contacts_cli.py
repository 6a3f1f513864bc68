"""`commcredits contacts set|show ORG`: an organization's billing contacts (the e-mail addresses
and webhook URLs the alerts go to, and the locale they are written in), on the event store the
environment selects.

Exit status: 0 done (also when nothing changed), 1 rejected (the message starts with the error
code: `invalid_input`, `unknown_organization`, `concurrent_update`), 2 bad usage or settings,
3 the event store is unavailable.
"""

from datetime import datetime, timezone
from typing import Annotated, Any, Optional

import orjson
import typer

from commcredits.admin_cli import store_steps
from commcredits.contacts import UNCHANGED, normalise_contacts, read_contacts, set_contacts
from domain.timestamps import parse_timestamp

OrgArgument = Annotated[str, typer.Argument(help="Organization id.")]

DEFAULT_LOCALE_TEXT = "the usual one of the organization's country"

contacts_commands = typer.Typer(no_args_is_help=True, help="Set or show an organization's billing contacts.")


def register(app: typer.Typer) -> None:
    app.add_typer(contacts_commands, name="contacts")


@contacts_commands.command("set")
def set_command(
    org: OrgArgument,
    email: Annotated[Optional[list[str]], typer.Option("--email", help="E-mail address (repeatable).")] = None,
    webhook: Annotated[Optional[list[str]], typer.Option(
        "--webhook", help="Webhook URL, http:// or https:// (repeatable).")] = None,
    locale: Annotated[Optional[str], typer.Option("--locale", help="Locale of the alerts, e.g. fr_FR.")] = None,
    at: Annotated[Optional[str], typer.Option("--at", help="When (ISO 8601 with offset); default: now.")] = None,
) -> None:
    """Replace the billing contacts with exactly these (none given: no contacts)."""
    with store_steps() as store:
        when = parse_timestamp(at, field="--at") if at is not None else datetime.now(timezone.utc)
        emails, webhooks, normal_locale = normalise_contacts(email or [], webhook or [], locale)
        outcome = set_contacts(store, org, emails, webhooks, normal_locale, when)
    verb = "unchanged (nothing saved)" if outcome == UNCHANGED else outcome
    typer.echo(f"billing contacts of {org} {verb}:")
    typer.echo(_describe({"emails": emails, "webhooks": webhooks, "locale": normal_locale}))


@contacts_commands.command("show")
def show_command(
    org: OrgArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON: org, emails, webhooks, locale, at.")] = False,
) -> None:
    """Show the billing contacts."""
    with store_steps() as store:
        contacts = read_contacts(store, org)
    if as_json:
        document = contacts or {"org": org, "emails": [], "webhooks": [], "locale": None, "at": None}
        typer.echo(orjson.dumps(document, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2).decode())
    elif contacts is None:
        typer.echo(f"{org}: no billing contacts set")
    else:
        typer.echo(f"billing contacts of {org} (set at {contacts['at']}):")
        typer.echo(_describe(contacts))


def _describe(contacts: dict[str, Any]) -> str:
    if not contacts["emails"] and not contacts["webhooks"]:
        lines = ["  no e-mail addresses and no webhooks: alerts reach nobody"]
    else:
        lines = [f"  e-mail: {email}" for email in contacts["emails"]]
        lines += [f"  webhook: {url}" for url in contacts["webhooks"]]
    lines.append(f"  locale: {contacts['locale'] or DEFAULT_LOCALE_TEXT}")
    return "\n".join(lines)
