"""A mail server that never answers holds up e-mail only: calls are still rated and relayed, and
alerts are still recorded (and published to `alerts.v1`) while the e-mail dispatcher waits."""

import socket

from kafka import KafkaProducer

from commcredits.live_pipeline import LivePipeline, PipelineConfig
from consumers.alerts.outbox import KAFKA, SENDING, SENT, AlertOutbox
from consumers.alerts.settings import AlertSettings, RetryPolicy
from consumers.alerts.smtp_delivery import SmtpSettings
from projections.view_database import ViewDatabase
from tests.alert_scenario import CONTOSO_USER, EXPECTED_KINDS, _call, write_history
from tests.integration.test_alert_consumer import wait_until

SILENT_SMTP_TIMEOUT_S = 120.0  # far longer than the test: the dispatcher stays inside its first send
NEW_CALLS = 40


def test_a_silent_smtp_server_blocks_neither_rating_nor_recording_alerts(store, kafka_broker, unique_topics):
    write_history(store)
    silent = socket.create_server(("127.0.0.1", 0))  # accepts connections (the backlog), never says a word
    settings = AlertSettings(smtp=SmtpSettings(host="127.0.0.1", port=silent.getsockname()[1], starttls=False,
                                               timeout_s=SILENT_SMTP_TIMEOUT_S),
                             webhook_master_secret=b"isolation", topic=f"alerts.{unique_topics.cdrs}",
                             retry=RetryPolicy(), send_timeout_s=SILENT_SMTP_TIMEOUT_S)
    pipeline = LivePipeline(PipelineConfig(store=store, topics=unique_topics, bootstrap_servers=kafka_broker.bootstrap_servers,
                                           cdr_partitions=1, expire_by_wall_clock=False, alerts=settings)).start()
    outbox = AlertOutbox(ViewDatabase.for_store(store))
    try:
        email = next(dispatcher for dispatcher in pipeline.alerts.dispatchers if dispatcher.channel_name == "email")
        wait_until(lambda: outbox.counts().get(SENDING, 0) >= 1, "the e-mail dispatcher to be stuck in its first send")

        producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers, acks="all")
        for number in range(NEW_CALLS):
            call = _call("contoso", CONTOSO_USER, f"late-{number}", f"2027-04-{1 + number % 28:02d}T09:00:00Z", 100)
            producer.send(unique_topics.cdrs, key=b"contoso", value=_encoded(call))
        producer.flush()
        producer.close()
        wait_until(lambda: pipeline.consumer.stats.rated >= NEW_CALLS, "the new calls to be rated")
        stored = pipeline.relay.app.recorder.max_notification_id()
        wait_until(lambda: pipeline.relay.position >= stored, "the relay")
        alerts_before_calls = sum(sum(kinds.values()) for kinds in EXPECTED_KINDS.values())
        wait_until(lambda: _alerts(outbox) > alerts_before_calls, "the new calls' alerts to be recorded")
        wait_until(lambda: _sent(outbox, KAFKA) == _alerts(outbox), "every alert on alerts.v1")

        assert email.stats.sent == 0 and outbox.counts().get(SENDING) == 1  # still waiting for the greeting
        assert not pipeline.failures
    finally:
        pipeline.stop_requested.set()
        silent.close()  # the dispatcher's send fails at once: the pipeline stops without waiting it out
        pipeline.stop()
        outbox.database.close()
    assert not pipeline.failures


def _encoded(call: dict) -> bytes:
    import orjson
    return orjson.dumps(call)


def _alerts(outbox: AlertOutbox) -> int:
    return outbox.database.query("SELECT COUNT(*) FROM alert_notifications")[0][0]


def _sent(outbox: AlertOutbox, channel: str) -> int:
    return outbox.database.query("SELECT COUNT(*) FROM alert_deliveries WHERE channel = ? AND status = ?",
                                 (channel, SENT))[0][0]
