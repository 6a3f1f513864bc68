"""How one delivery of the outbox goes out, per channel: e-mail, webhook, or the `alerts.v1` topic.

Each sender takes the delivery and `at_commit`, the outbox's commit point, which the e-mail and
webhook transports call just before the receiver can act on the message (see
`consumers.alert_outbox`). Failures are `DeliveryFailed` (transient or permanent) or
`DeliveryUncertain`; every other exception is a bug in the caller's eyes.
"""

from collections.abc import Callable
from typing import Protocol

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError

from consumers.alert_kinds import Alert, OrgProfile
from consumers.alert_outbox import Delivery
from consumers.alert_rendering import render_alert
from consumers.alert_settings import AlertSettings
from consumers.delivery_errors import DeliveryFailed
from consumers.smtp_delivery import SmtpSender, build_email
from consumers.webhook_delivery import WebhookSender, webhook_secret

KAFKA_SEND_TIMEOUT_S = 30.0
MESSAGE_ID_DOMAIN = "commcredits"


class Channel(Protocol):
    def send(self, delivery: Delivery, at_commit: Callable[[], None]) -> None: ...

    def close(self) -> None: ...


def alert_of(delivery: Delivery) -> Alert:
    document = delivery.document
    return Alert(id=document["id"], kind=document["kind"], org=document["org"], position=document["position"],
                 at=document["at"], facts=document["facts"])


def profile_of(delivery: Delivery) -> OrgProfile:
    return OrgProfile(**delivery.profile)


def alert_message(delivery: Delivery) -> dict:
    """What the webhook and `alerts.v1` carry: the alert, and who it is for."""
    profile = delivery.profile
    return {**delivery.document, "organization": {"name": profile["name"], "currency": profile["currency"]}}


class EmailChannel:
    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self._sender = SmtpSender(settings.smtp) if settings.smtp is not None else None

    def send(self, delivery: Delivery, at_commit: Callable[[], None]) -> None:
        if self._sender is None:
            raise DeliveryFailed("smtp_not_configured", "no SMTP server is configured (COMMCREDITS_SMTP_HOST); "
                                 "set it, then `commcredits alerts retry`", permanent=True)
        rendered = render_alert(alert_of(delivery), profile_of(delivery))
        message = build_email(sender=self.settings.smtp.sender, recipient=delivery.recipient, subject=rendered.subject,
                              text=rendered.text, html=rendered.html,
                              message_id=f"{delivery.id}@{MESSAGE_ID_DOMAIN}",
                              headers={"X-Commcredits-Alert": delivery.alert_id})
        self._sender.send(message, delivery.recipient, at_commit)

    def close(self) -> None:
        if self._sender is not None:
            self._sender.close()


class WebhookChannel:
    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self._sender = WebhookSender(timeout_s=settings.send_timeout_s)
        self._master_secret: bytes | None = None

    def send(self, delivery: Delivery, at_commit: Callable[[], None]) -> None:
        if self._master_secret is None:
            self._master_secret = self.settings.master_secret()
        body = orjson.dumps(alert_message(delivery))
        self._sender.post(delivery.recipient, body, secret=webhook_secret(self._master_secret, delivery.org),
                          delivery_id=delivery.id, at_commit=at_commit)

    def close(self) -> None:
        pass


class KafkaChannel:
    """At least once: Kafka cannot hold back half a message, so there is no commit point; a copy
    sent again after a crash carries the same alert id (value `id`, header `alert_id`)."""

    def __init__(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._producer: KafkaProducer | None = None

    def send(self, delivery: Delivery, at_commit: Callable[[], None]) -> None:
        value = orjson.dumps(alert_message(delivery))
        headers = [("alert_id", delivery.alert_id.encode()), ("kind", delivery.kind.encode())]
        try:
            if self._producer is None:
                self._producer = KafkaProducer(bootstrap_servers=self.bootstrap_servers, acks="all",
                                               enable_idempotence=True, linger_ms=0, retries=5)
            self._producer.send(delivery.recipient, key=delivery.org.encode(), value=value,
                                headers=headers).get(timeout=KAFKA_SEND_TIMEOUT_S)
        except KafkaError as error:
            raise DeliveryFailed("kafka_unavailable", f"{type(error).__name__}: {error}", permanent=False) from None

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
