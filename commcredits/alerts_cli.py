"""`commcredits alerts list|failed|retry|webhook-secret`: what the alert consumer sent, what it
could not, and replaying the dead letters (docs/alerts.md).

Exit status: 0 done; 1 a retried delivery failed again (it is back in line or in the dead-letter
store), an id is not a dead letter, or the organization does not exist; 2 bad usage or settings;
3 the event store is unavailable.
"""

from typing import Annotated, Optional

import orjson
import psycopg
import typer

from application.settings import SettingsError, store_from_environment
from commcredits.admin import StoreUnavailable
from commcredits.contacts import read_contacts
from consumers.alerts.channels import channels_for
from consumers.alerts.consumer import claim_lease_s
from consumers.alerts.dispatcher import ChannelDispatcher
from consumers.alerts.outbox import DEAD, SENT, AlertOutbox, Delivery
from consumers.alerts.settings import AlertSettings, alert_settings_from_environment
from consumers.alerts.webhook_delivery import webhook_secret
from domain.errors import DomainError
from messaging.topics import bootstrap_servers_from_environment
from projections.view_database import ViewDatabase

EXIT_FAILED, EXIT_USAGE, EXIT_STORE_UNAVAILABLE = 1, 2, 3

alert_commands = typer.Typer(no_args_is_help=True, help="Alerts sent to billing contacts, and the dead letters.")


def register(app: typer.Typer) -> None:
    app.add_typer(alert_commands, name="alerts")


def _fail(message: str, code: int) -> None:
    typer.echo(f"commcredits: {message}", err=True)
    raise typer.Exit(code)


def _outbox() -> AlertOutbox:
    try:
        return AlertOutbox(ViewDatabase.for_store(store_from_environment()))
    except SettingsError as error:
        _fail(str(error), EXIT_USAGE)
    except (psycopg.Error, OSError) as error:
        _fail(f"the event store is unavailable: {error}", EXIT_STORE_UNAVAILABLE)


def _row(delivery: Delivery) -> dict:
    return {"delivery": delivery.id, "alert": delivery.alert_id, "kind": delivery.kind, "at": delivery.at,
            "channel": delivery.channel, "recipient": delivery.recipient, "status": delivery.status,
            "attempts": delivery.attempts, "sent_at": delivery.sent_at, "last_error": delivery.last_error,
            "updated_at": delivery.updated_at}


def _print(deliveries: list[Delivery], as_json: bool, empty: str) -> None:
    if as_json:
        typer.echo(orjson.dumps([_row(delivery) for delivery in deliveries], option=orjson.OPT_INDENT_2).decode())
        return
    if not deliveries:
        typer.echo(empty)
        return
    for delivery in deliveries:
        outcome = f"sent {delivery.sent_at}" if delivery.status == SENT else delivery.status
        detail = f"  ({delivery.last_error})" if delivery.last_error and delivery.status != SENT else ""
        typer.echo(f"{delivery.at}  {delivery.kind:<24} {delivery.channel:<7} {delivery.recipient:<36} "
                   f"{outcome}, {delivery.attempts} attempt(s){detail}  [{delivery.id}]")


@alert_commands.command("list")
def list_alerts(
    org: Annotated[str, typer.Argument(help="Organization id.")],
    limit: Annotated[int, typer.Option(min=1, help="At most this many deliveries, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of lines.")] = False,
) -> None:
    """What was sent to an organization's billing contacts: when, to whom, and with what outcome."""
    deliveries = _outbox().history(org, limit)
    if not deliveries:
        _require_organization(org)
    _print(deliveries, as_json, f"no alerts for organization {org!r} yet")


def _require_organization(org: str) -> None:
    """An empty history is an answer only for an organization that exists."""
    try:
        read_contacts(store_from_environment(), org)
    except DomainError as error:
        _fail(str(error), EXIT_FAILED)
    except StoreUnavailable as error:
        _fail(f"event store unavailable: {error}", EXIT_STORE_UNAVAILABLE)


@alert_commands.command("failed")
def failed(
    limit: Annotated[int, typer.Option(min=1, help="At most this many.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of lines.")] = False,
) -> None:
    """The dead-letter store: deliveries that failed for good, oldest first."""
    _print(_outbox().dead(limit), as_json, "no failed deliveries")


@alert_commands.command("retry")
def retry(
    ids: Annotated[Optional[list[str]], typer.Argument(help="Delivery ids (from `alerts failed`).")] = None,
    all_failed: Annotated[bool, typer.Option("--all", help="Every failed delivery.")] = False,
    queue_only: Annotated[bool, typer.Option("--queue-only", help="Put them back in line for the running "
                                                                  "alert consumer instead of sending now.")] = False,
) -> None:
    """Replay dead letters: each is tried again now, with fresh attempts (or queued with --queue-only)."""
    if bool(ids) == all_failed:
        _fail("name the deliveries to retry, or --all", EXIT_USAGE)
    try:  # every setting before anything is requeued
        settings, bootstrap_servers = alert_settings_from_environment(), bootstrap_servers_from_environment()
    except SettingsError as error:
        _fail(str(error), EXIT_USAGE)
    outbox = _outbox()
    unknown = [identity for identity in ids or [] if (found := outbox.get(identity)) is None or found.status != DEAD]
    if unknown:
        _fail(f"not in the dead-letter store: {', '.join(unknown)}", EXIT_FAILED)
    requeued = outbox.requeue(None if all_failed else ids)
    if queue_only or not requeued:
        typer.echo(f"{len(requeued)} deliveries queued again")
        return
    still_failing = _send_now(outbox, settings, bootstrap_servers, requeued)
    if still_failing:
        raise typer.Exit(EXIT_FAILED)


def _send_now(outbox: AlertOutbox, settings: AlertSettings, bootstrap_servers: str | None,
              identities: list[str]) -> int:
    channels = channels_for(settings, bootstrap_servers)
    dispatchers = {name: ChannelDispatcher(name, channel, outbox, settings.retry, lease_s=claim_lease_s(settings))
                   for name, channel in channels.items()}
    still_failing = 0
    try:
        for identity in identities:
            delivery = outbox.get(identity)
            dispatcher = dispatchers.get(delivery.channel)
            if dispatcher is None:
                typer.echo(f"{identity}: queued for the running alert consumer (no KAFKA_BOOTSTRAP_SERVERS here)")
                continue
            dispatcher.deliver(delivery)
            after = outbox.get(identity)
            still_failing += after.status not in (SENT,)
            typer.echo(f"{identity}: {after.status}" + (f" ({after.last_error})" if after.status != SENT else ""))
    finally:
        for channel in channels.values():
            channel.close()
    return still_failing


@alert_commands.command("webhook-secret")
def show_webhook_secret(org: Annotated[str, typer.Argument(help="Organization id.")]) -> None:
    """The key an organization's webhook receiver verifies signatures with (hex): HMAC-SHA256 of
    `{timestamp}.{body}`, sent as `Commcredits-Signature: t=...,v1=...`."""
    try:
        master = alert_settings_from_environment().master_secret()
    except SettingsError as error:
        _fail(str(error), EXIT_USAGE)
    typer.echo(webhook_secret(master, org).hex())
