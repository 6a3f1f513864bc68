"""Billing events in, alerts and their deliveries out: the alert consumer's projection.

It runs under the projector (`projections.projector`), so each partition's batch of events, the
organizations' alert state, the alerts with their deliveries (`consumers.alerts.outbox`) and the
partition's position are written in one transaction. Read twice, an event adds nothing; read
once, it is never lost. Sending happens elsewhere (`consumers.alerts.dispatcher`), so a slow mail
server holds up neither this projection nor the rating of calls.

Per organization it keeps the rules' state (`consumers.alerts.rules.OrgAlertState`) and the
billing contacts of its latest `BillingContacts` event; an alert goes to the contacts of the
moment its event happened, and always to the `alerts.v1` topic. Everything it reads about an
organization is keyed by that organization, so it comes from one partition in store order: the
alerts do not depend on how the partitions interleave (the engine announces coming expiries
with the organization's own `ExpiryApproached` events, not with its clock's).
"""

from typing import Any

import orjson

from consumers.alerts.kinds import Alert
from consumers.alerts.outbox import EMAIL, KAFKA, WEBHOOK, record_alert
from consumers.alerts.outbox import TABLES as OUTBOX_TABLES
from consumers.alerts.rules import OrgAlertState, alerts_for_event
from projections.records import EventRecord
from projections.view_database import ViewCursor

ACCOUNT_EVENTS = frozenset(f"CreditAccount.{name}" for name in (
    "CreditsActivated", "AutoRechargeConfigured", "PaymentMethodUpdated", "FundsAdded", "CallRated", "FundsExpired",
    "ExpiryApproached", "RechargeSucceeded", "RechargeFailed", "BalanceDepleted"))
OPENED = "CreditAccount.Opened"
ORDER_PLACED = "Order.OrderPlaced"
CONTACT_EVENTS = frozenset({"BillingContacts.Registered", "BillingContacts.Changed"})

ORG_TABLES = (
    "CREATE TABLE IF NOT EXISTS alert_orgs (org TEXT PRIMARY KEY, account_id TEXT NOT NULL UNIQUE, "
    "state TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS alert_contacts (org TEXT PRIMARY KEY, emails TEXT NOT NULL, webhooks TEXT NOT NULL, "
    "locale TEXT)",
)


class AlertProjection:
    name = "alerts"
    tables = (*ORG_TABLES, *OUTBOX_TABLES)
    event_types = ACCOUNT_EVENTS | CONTACT_EVENTS | {OPENED, ORDER_PLACED}

    def __init__(self, alerts_topic: str) -> None:
        self.alerts_topic = alerts_topic

    def apply(self, cursor: ViewCursor, record: EventRecord) -> None:
        if record.type == OPENED:
            self._open(cursor, record)
        elif record.type in CONTACT_EVENTS:
            self._set_contacts(cursor, record.data)
        elif record.type == ORDER_PLACED:
            self._org_event(cursor, _load(cursor, "org", record.data["org"]), record)
        else:
            self._org_event(cursor, _load(cursor, "account_id", record.aggregate_id), record)

    def _open(self, cursor: ViewCursor, record: EventRecord) -> None:
        state = OrgAlertState.opened(record.data)
        cursor.execute("INSERT INTO alert_orgs (org, account_id, state) VALUES (?, ?, ?) "
                       "ON CONFLICT (org) DO NOTHING", (state.org, record.aggregate_id, _dumps(state.as_data())))

    def _set_contacts(self, cursor: ViewCursor, data: dict[str, Any]) -> None:
        cursor.execute("INSERT INTO alert_contacts (org, emails, webhooks, locale) VALUES (?, ?, ?, ?) "
                       "ON CONFLICT (org) DO UPDATE SET emails = excluded.emails, webhooks = excluded.webhooks, "
                       "locale = excluded.locale",
                       (data["org"], _dumps(data["emails"]), _dumps(data["webhooks"]), data.get("locale")))

    def _org_event(self, cursor: ViewCursor, state: OrgAlertState | None, record: EventRecord) -> None:
        if state is None:
            return  # an organization opened before the topic's retained history: nothing to track
        alerts = alerts_for_event(state, record.type, record.data, record.position)
        self._save(cursor, state, alerts)

    def _save(self, cursor: ViewCursor, state: OrgAlertState, alerts: list[Alert]) -> None:
        cursor.execute("UPDATE alert_orgs SET state = ? WHERE org = ?", (_dumps(state.as_data()), state.org))
        if not alerts:
            return
        emails, webhooks, locale = _contacts(cursor, state.org)
        profile = {"org": state.org, "name": state.name, "country": state.country, "currency": state.currency,
                   "locale": locale}
        recipients = [(EMAIL, email) for email in emails] + [(WEBHOOK, url) for url in webhooks] \
            + [(KAFKA, self.alerts_topic)]
        for alert in alerts:
            record_alert(cursor, alert.document(), profile, recipients)


def _load(cursor: ViewCursor, column: str, value: str) -> OrgAlertState | None:
    row = cursor.execute(f"SELECT state FROM alert_orgs WHERE {column} = ?", (value,)).fetchone()
    return None if row is None else OrgAlertState.from_data(orjson.loads(row[0]))


def _contacts(cursor: ViewCursor, org: str) -> tuple[list[str], list[str], str | None]:
    row = cursor.execute("SELECT emails, webhooks, locale FROM alert_contacts WHERE org = ?", (org,)).fetchone()
    return ([], [], None) if row is None else (orjson.loads(row[0]), orjson.loads(row[1]), row[2])


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
