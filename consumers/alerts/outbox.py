"""The alerts' outbox: every alert and each of its deliveries, with their state, in the view database.

The alert projection writes an alert and its deliveries (one per e-mail address, webhook URL,
and the `alerts.v1` copy) in the same transaction as its position in `billing-events.v1`: once
an event is read, its alerts exist, exactly once. A delivery's identity is its alert's (the
event's position and the kind) plus its channel and recipient.

A delivery moves through these states; each move is one conditional UPDATE, so two dispatchers
can never both send it:

    pending --claim--> sending --commit point--> committing --receiver said yes--> sent
       ^                  |                           |--receiver said no--> pending (retry) / dead
       |                  '--failed before the commit point--> pending (retry) / dead
       '------ alerts retry ------ dead

`committing` is written just before the last bytes go to the receiver (`consumers.alerts.smtp_delivery`,
`consumers.alerts.webhook_delivery`): before it, nothing was delivered and the delivery may be tried
again; after it, the receiver may have it, so it is never sent again. A dispatcher that dies
leaves its delivery `sending` (tried again once its lease runs out, marked `in_doubt`) or
`committing` (then `unconfirmed`: handed over, no answer seen). The `alerts.v1` copy has no
commit point (Kafka cannot hold a half message back): a copy in doubt is first looked for at the
end of its partition, and sent only if it is not there (`consumers.alerts.channels.KafkaChannel`).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from consumers.alerts.retry_backoff import gives_up, retry_delay_s
from consumers.alerts.settings import RetryPolicy
from projections.view_database import ViewCursor, ViewDatabase

PENDING, SENDING, COMMITTING, SENT, UNCONFIRMED, DEAD = "pending", "sending", "committing", "sent", "unconfirmed", "dead"
EMAIL, WEBHOOK, KAFKA = "email", "webhook", "kafka"
CHANNELS = (EMAIL, WEBHOOK, KAFKA)

TABLES = (
    "CREATE TABLE IF NOT EXISTS alert_notifications (id TEXT PRIMARY KEY, org TEXT NOT NULL, kind TEXT NOT NULL, "
    "position BIGINT NOT NULL, at TEXT NOT NULL, document TEXT NOT NULL, profile TEXT NOT NULL, "
    "recorded_at TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS alert_notifications_by_org ON alert_notifications (org, position)",
    "CREATE TABLE IF NOT EXISTS alert_deliveries (id TEXT PRIMARY KEY, alert_id TEXT NOT NULL, org TEXT NOT NULL, "
    "position BIGINT NOT NULL, channel TEXT NOT NULL, recipient TEXT NOT NULL, status TEXT NOT NULL, "
    "attempts INTEGER NOT NULL, next_attempt_at DOUBLE PRECISION NOT NULL, lease_until DOUBLE PRECISION, "
    "last_error TEXT, updated_at TEXT NOT NULL, sent_at TEXT, in_doubt INTEGER NOT NULL DEFAULT 0)",
    "CREATE INDEX IF NOT EXISTS alert_deliveries_due ON alert_deliveries (status, channel, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS alert_deliveries_by_org ON alert_deliveries (org, position)",
)
_DELIVERY_COLUMNS = ("d.id, d.alert_id, d.org, d.position, d.channel, d.recipient, d.status, d.attempts, "
                     "d.next_attempt_at, d.last_error, d.updated_at, d.sent_at, n.kind, n.at, n.document, n.profile, "
                     "d.in_doubt")


@dataclass(frozen=True)
class Delivery:
    id: str
    alert_id: str
    org: str
    position: int
    channel: str
    recipient: str
    status: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    updated_at: str
    sent_at: str | None
    kind: str
    at: str
    document: dict[str, Any]  # the alert (`Alert.document()`)
    profile: dict[str, Any]  # the organization as the alert was made (`OrgProfile` fields)
    in_doubt: bool = False  # a dispatcher stopped while sending it: it may have gone out (`alerts.v1`)

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> "Delivery":
        return cls(*row[:14], orjson.loads(row[14]), orjson.loads(row[15]), bool(row[16]))


class LostClaim(RuntimeError):
    """The delivery is no longer ours (its lease ran out and someone else took it): do not send."""


def delivery_id(alert_id: str, channel: str, recipient: str) -> str:
    return f"{alert_id}/{channel}/{recipient}"


def record_alert(cursor: ViewCursor, document: dict[str, Any], profile: dict[str, Any],
                 recipients: Sequence[tuple[str, str]]) -> None:
    """Write one alert and its deliveries (channel, recipient), all due now; inside the projection's
    transaction."""
    now = _now_text()
    cursor.execute("INSERT INTO alert_notifications (id, org, kind, position, at, document, profile, recorded_at) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   (document["id"], document["org"], document["kind"], document["position"], document["at"],
                    orjson.dumps(document).decode(), orjson.dumps(profile).decode(), now))
    for channel, recipient in recipients:
        cursor.execute("INSERT INTO alert_deliveries (id, alert_id, org, position, channel, recipient, status, "
                       "attempts, next_attempt_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 0, 0, ?)",
                       (delivery_id(document["id"], channel, recipient), document["id"], document["org"],
                        document["position"], channel, recipient, PENDING, now))


class AlertOutbox:
    """The dispatchers' and the CLI's view of the deliveries. One per thread: it holds a connection."""

    def __init__(self, database: ViewDatabase) -> None:
        self.database = database
        database.create_tables(TABLES)

    # ----- dispatching -------------------------------------------------------------------------

    def release_expired(self, now: float) -> int:
        """Deliveries whose dispatcher stopped (its lease ran out): `sending` ones are tried again,
        `committing` ones were handed over and become `unconfirmed`."""
        with self.database.transaction() as cursor:
            cursor.execute("UPDATE alert_deliveries SET status = ?, lease_until = NULL, updated_at = ?, in_doubt = 1 "
                           "WHERE status = ? AND lease_until < ?", (PENDING, _now_text(), SENDING, now))
            released = cursor.rowcount
            cursor.execute("UPDATE alert_deliveries SET status = ?, lease_until = NULL, updated_at = ?, last_error = ? "
                           "WHERE status = ? AND lease_until < ?",
                           (UNCONFIRMED, _now_text(), "handed over to the receiver; the dispatcher stopped before "
                            "its answer", COMMITTING, now))
            return released + cursor.rowcount

    def due(self, channel: str, now: float, limit: int) -> list[Delivery]:
        return self._select(f"WHERE d.channel = ? AND d.status = ? AND d.next_attempt_at <= ? "
                            f"ORDER BY d.position, d.id LIMIT {int(limit)}", (channel, PENDING, now))

    def claim(self, delivery: Delivery, now: float, lease_s: float) -> float | None:
        """Take the delivery for sending; returns the lease (the claim's token), None if someone
        else took it first."""
        lease_until = now + lease_s
        with self.database.transaction() as cursor:
            cursor.execute("UPDATE alert_deliveries SET status = ?, lease_until = ?, updated_at = ? "
                           "WHERE id = ? AND status = ?", (SENDING, lease_until, _now_text(), delivery.id, PENDING))
            return lease_until if cursor.rowcount == 1 else None

    def commit(self, delivery: Delivery, lease_until: float) -> None:
        """The commit point: from here on the delivery is never sent again. Only the claim that
        holds the lease may pass it (a lease that ran out may have been taken over)."""
        with self.database.transaction() as cursor:
            cursor.execute("UPDATE alert_deliveries SET status = ?, updated_at = ? "
                           "WHERE id = ? AND status = ? AND lease_until = ?",
                           (COMMITTING, _now_text(), delivery.id, SENDING, lease_until))
            if cursor.rowcount != 1:
                raise LostClaim(f"delivery {delivery.id} was taken over while being sent")

    def sent(self, delivery: Delivery) -> None:
        with self.database.transaction() as cursor:
            cursor.execute("UPDATE alert_deliveries SET status = ?, attempts = attempts + 1, lease_until = NULL, "
                           "last_error = NULL, updated_at = ?, sent_at = ? WHERE id = ? AND status IN (?, ?, ?)",
                           (SENT, _now_text(), _now_text(), delivery.id, SENDING, COMMITTING, UNCONFIRMED))

    def unconfirmed(self, delivery: Delivery, error: str) -> None:
        with self.database.transaction() as cursor:
            cursor.execute("UPDATE alert_deliveries SET status = ?, attempts = attempts + 1, lease_until = NULL, "
                           "last_error = ?, updated_at = ? WHERE id = ? AND status = ?",
                           (UNCONFIRMED, error, _now_text(), delivery.id, COMMITTING))

    def failed(self, delivery: Delivery, error: str, *, permanent: bool, policy: RetryPolicy, now: float) -> float | None:
        """Count a failed attempt: due again later (returns when), or parked as dead (returns None)."""
        attempts = delivery.attempts + 1
        dead = permanent or gives_up(attempts, policy)
        next_attempt_at = now if dead else now + retry_delay_s(attempts, policy)
        with self.database.transaction() as cursor:
            cursor.execute("UPDATE alert_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, lease_until = NULL, "
                           "last_error = ?, updated_at = ? WHERE id = ? AND status IN (?, ?)",
                           (DEAD if dead else PENDING, attempts, next_attempt_at, error, _now_text(), delivery.id,
                            SENDING, COMMITTING))
        return None if dead else next_attempt_at

    # ----- operators ---------------------------------------------------------------------------

    def dead(self, limit: int) -> list[Delivery]:
        return self._select(f"WHERE d.status = ? ORDER BY d.position, d.id LIMIT {int(limit)}", (DEAD,))

    def requeue(self, ids: Sequence[str] | None) -> list[str]:
        """Put dead deliveries (these, or all when None) back in line with fresh attempts; returns
        the ids that were dead, in event order."""
        with self.database.transaction() as cursor:
            dead = [identity for (identity,) in cursor.execute(
                "SELECT id FROM alert_deliveries WHERE status = ? ORDER BY position, id", (DEAD,)).fetchall()]
            wanted = None if ids is None else set(ids)
            chosen = [identity for identity in dead if wanted is None or identity in wanted]
            for identity in chosen:
                cursor.execute("UPDATE alert_deliveries SET status = ?, attempts = 0, next_attempt_at = 0, "
                               "updated_at = ? WHERE id = ?", (PENDING, _now_text(), identity))
        return chosen

    def history(self, org: str, limit: int) -> list[Delivery]:
        return self._select(f"WHERE d.org = ? ORDER BY d.position DESC, d.id LIMIT {int(limit)}", (org,))

    def get(self, identity: str) -> Delivery | None:
        rows = self._select("WHERE d.id = ?", (identity,))
        return rows[0] if rows else None

    def counts(self) -> dict[str, int]:
        return dict(self.database.query("SELECT status, COUNT(*) FROM alert_deliveries GROUP BY status"))

    def unsettled(self) -> int:
        """Deliveries still to be sent or being sent."""
        return self.database.query("SELECT COUNT(*) FROM alert_deliveries WHERE status IN (?, ?, ?)",
                                   (PENDING, SENDING, COMMITTING))[0][0]

    def _select(self, where: str, params: Sequence[Any]) -> list[Delivery]:
        rows = self.database.query(f"SELECT {_DELIVERY_COLUMNS} FROM alert_deliveries d "
                                   f"JOIN alert_notifications n ON n.id = d.alert_id {where}", params)
        return [Delivery.from_row(row) for row in rows]


def _now_text() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
