"""The `alerts.v1` copy after a crash: a copy in doubt that did go out is found at the end of its
partition and not sent again; one that did not go out is sent."""

import uuid

from consumers.alerts.channels import KafkaChannel
from consumers.alerts.outbox import KAFKA, Delivery
from messaging.embedded_broker import ensure_topics
from tests.integration.test_alert_consumer import alerts_topic_ids


def delivery(topic: str, position: int, *, in_doubt: bool) -> Delivery:
    alert_id = f"{position}:balance_depleted"
    document = {"id": alert_id, "kind": "balance_depleted", "org": "contoso", "position": position,
                "at": "2026-03-01T00:00:00Z", "facts": {"cause": "expiry"}}
    return Delivery(id=f"{alert_id}/{KAFKA}/{topic}", alert_id=alert_id, org="contoso", position=position,
                    channel=KAFKA, recipient=topic, status="sending", attempts=0, next_attempt_at=0.0,
                    last_error=None, updated_at="2026-03-01T00:00:00Z", sent_at=None, kind="balance_depleted",
                    at="2026-03-01T00:00:00Z", document=document,
                    profile={"org": "contoso", "name": "Contoso", "country": "US", "currency": "USD",
                             "locale": None}, in_doubt=in_doubt)


def test_a_copy_in_doubt_is_sent_only_if_it_is_not_already_on_the_topic(kafka_broker):
    topic = f"alerts.v1.{uuid.uuid4().hex[:8]}"
    ensure_topics(kafka_broker.bootstrap_servers, {topic: 3})
    channel = KafkaChannel(kafka_broker.bootstrap_servers)
    try:
        for position in range(1, 6):
            channel.send(delivery(topic, position, in_doubt=False), lambda: None)
        channel.send(delivery(topic, 5, in_doubt=True), lambda: None)  # went out before the crash
        channel.send(delivery(topic, 6, in_doubt=True), lambda: None)  # did not
        channel.send(delivery(topic, 1, in_doubt=False), lambda: None)  # not in doubt: no looking back
    finally:
        channel.close()
    assert sorted(alerts_topic_ids(kafka_broker, topic)) == sorted(
        ["1:balance_depleted", "1:balance_depleted", "2:balance_depleted", "3:balance_depleted",
         "4:balance_depleted", "5:balance_depleted", "6:balance_depleted"])
