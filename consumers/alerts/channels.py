"""How one delivery of the outbox goes out, per channel: e-mail, webhook, or the `alerts.v1` topic.

Each sender takes the delivery and `at_commit`, the outbox's commit point, which the e-mail and
webhook transports call just before the receiver can act on the message (see
`consumers.alerts.outbox`). Failures are `DeliveryFailed` (transient or permanent) or
`DeliveryUncertain`; every other exception is a bug in the caller's eyes.
"""

import time
from collections.abc import Callable
from typing import Protocol

import orjson
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import KafkaError

from application.shard import partition_for_key
from consumers.alerts.delivery_errors import DeliveryFailed
from consumers.alerts.kinds import Alert, OrgProfile
from consumers.alerts.outbox import EMAIL, KAFKA, WEBHOOK, Delivery
from consumers.alerts.rendering import render_alert
from consumers.alerts.settings import AlertSettings
from consumers.alerts.smtp_delivery import SmtpSender, build_email
from consumers.alerts.webhook_delivery import WebhookSender, webhook_secret

KAFKA_SEND_TIMEOUT_S = 30.0
TAIL_WINDOW = 10_000  # messages read back when a copy is in doubt
TAIL_READ_TIMEOUT_S = 30.0
TAIL_POLL_MS = 500
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
    """Kafka cannot hold back half a message, so there is no commit point. Instead, a copy in
    doubt (its dispatcher stopped while sending it) is first looked for among the last
    `TAIL_WINDOW` messages of its partition, by its `alert_id` header, and sent only if it is not
    there. Copies go out in event order, so one in doubt is among the latest."""

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
            if delivery.in_doubt and self._already_published(delivery):
                return
            self._producer.send(delivery.recipient, key=delivery.org.encode(), value=value,
                                headers=headers).get(timeout=KAFKA_SEND_TIMEOUT_S)
        except KafkaError as error:
            raise DeliveryFailed("kafka_unavailable", f"{type(error).__name__}: {error}", permanent=False) from None

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()

    def _already_published(self, delivery: Delivery) -> bool:
        topic, wanted = delivery.recipient, delivery.alert_id.encode()
        partitions = self._producer.partitions_for(topic)
        partition = TopicPartition(topic, partition_for_key(delivery.org.encode(), len(partitions)))
        consumer = KafkaConsumer(bootstrap_servers=self.bootstrap_servers, group_id=None, enable_auto_commit=False)
        try:
            consumer.assign([partition])
            end = consumer.end_offsets([partition])[partition]
            consumer.seek(partition, max(0, end - TAIL_WINDOW))
            deadline = time.monotonic() + TAIL_READ_TIMEOUT_S
            while time.monotonic() < deadline:
                batch = consumer.poll(timeout_ms=TAIL_POLL_MS).get(partition, [])
                if any(dict(message.headers).get("alert_id") == wanted for message in batch):
                    return True
                highwater = consumer.highwater(partition)
                if not batch and highwater is not None and consumer.position(partition) >= highwater:
                    return False  # read to the end (the fetch's high watermark, not end_offsets: docs/pipeline.md)
            raise DeliveryFailed("kafka_unavailable", f"could not read the end of {topic} in time", permanent=False)
        finally:
            consumer.close()


def channels_for(settings: AlertSettings, bootstrap_servers: str | None) -> dict[str, Channel]:
    """Every channel by name; without a broker to reach, no `alerts.v1` copy is sent from here."""
    channels: dict[str, Channel] = {EMAIL: EmailChannel(settings), WEBHOOK: WebhookChannel(settings)}
    if bootstrap_servers:
        channels[KAFKA] = KafkaChannel(bootstrap_servers)
    return channels
