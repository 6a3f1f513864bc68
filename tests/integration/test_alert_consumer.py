"""The alert consumer end to end: billing events from the real broker, e-mail to a real SMTP server
(aiosmtpd), webhooks to a real HTTP server, copies on `alerts.v1`; on SQLite and PostgreSQL.

Expected alerts are worked out by hand in `tests.alert_scenario`; the e-mails and webhooks are
counted where they arrive, so a duplicate or a loss anywhere on the way shows."""

import threading
import time
from collections import Counter

import orjson
import pytest

from commcredits.local_smtp_sink import LocalSmtpSink
from consumers.alerts.consumer import AlertConsumer
from consumers.alerts.outbox import DEAD, SENT, AlertOutbox
from consumers.alerts.settings import AlertSettings, RetryPolicy
from consumers.alerts.smtp_delivery import SmtpSettings
from consumers.alerts.webhook_delivery import SIGNATURE_HEADER, verify_signature, webhook_secret
from projections.view_database import ViewDatabase
from tests.alert_scenario import (
    CONTOSO_EMAILS,
    EXPECTED_KINDS,
    NORTHWIND_EMAILS,
    database_url_of,
    expected_emails,
    write_history,
)
from tests.integration.test_event_relay import published, relay_all
from tests.webhook_receiver import WebhookReceiver

MASTER_SECRET = b"test-master-secret-of-at-least-32-bytes"
FAST_RETRY = RetryPolicy(max_attempts=8, backoff_s=0.1, backoff_cap_s=1.0)
WAIT_S = 60.0
ALL_EMAILS = sum(expected_emails({"contoso": CONTOSO_EMAILS, "northwind": NORTHWIND_EMAILS}).values())
CONTOSO_ALERTS = sum(EXPECTED_KINDS["contoso"].values())
ALL_ALERTS = sum(sum(kinds.values()) for kinds in EXPECTED_KINDS.values())


def settings_for(smtp_port: int, alerts_topic: str, retry: RetryPolicy = FAST_RETRY) -> AlertSettings:
    return AlertSettings(smtp=SmtpSettings(host="127.0.0.1", port=smtp_port, starttls=False, timeout_s=2.0),
                         webhook_master_secret=MASTER_SECRET, topic=alerts_topic, retry=retry, send_timeout_s=2.0)


class RunningConsumer:
    def __init__(self, store, broker, topics, settings: AlertSettings) -> None:
        self.consumer = AlertConsumer(store, broker.bootstrap_servers, topics.events, settings)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self.consumer.run, args=(self.stop_event,), daemon=True)

    def __enter__(self) -> AlertConsumer:
        self.thread.start()
        return self.consumer

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        self.thread.join(30)
        assert not self.thread.is_alive()
        assert not self.consumer.failures


def wait_until(condition, what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.05)


def outbox_for(store) -> AlertOutbox:
    return AlertOutbox(ViewDatabase.for_store(store))


def statuses(store) -> Counter:
    outbox = outbox_for(store)
    try:
        return Counter(outbox.counts())
    finally:
        outbox.database.close()


def settled(store, total: int) -> bool:
    counts = statuses(store)
    return sum(counts.values()) == total and counts[SENT] + counts[DEAD] + counts["unconfirmed"] == total


def mails_by_kind(sink: LocalSmtpSink) -> Counter:
    found = Counter()
    for mail in sink.received:
        (recipient,) = mail.recipients
        org = "contoso" if recipient in CONTOSO_EMAILS else "northwind"
        found[(org, recipient, mail.message["X-Commcredits-Alert"].split(":")[1])] += 1
    return found


def alerts_topic_ids(broker, topic: str) -> list[str]:
    return [orjson.loads(message.value)["id"] for message in published(broker, topic)]


@pytest.fixture
def sink():
    smtp = LocalSmtpSink().start()
    yield smtp
    smtp.stop()


@pytest.fixture
def receiver():
    server = WebhookReceiver().start()
    yield server
    server.stop()


def test_every_kind_reaches_every_contact_once_signed_and_on_the_alerts_topic(store, kafka_broker, unique_topics,
                                                                              sink, receiver):
    write_history(store, contoso_webhooks=[f"{receiver.url}/hooks/contoso"])
    relay_all(store, kafka_broker, unique_topics.events)
    alerts_topic = f"alerts.v1.{unique_topics.cdrs.rpartition('.')[2]}"
    settings = settings_for(sink.port, alerts_topic)
    total = ALL_EMAILS + CONTOSO_ALERTS + ALL_ALERTS

    with RunningConsumer(store, kafka_broker, unique_topics, settings):
        wait_until(lambda: settled(store, total), "every delivery")

    assert statuses(store) == Counter({SENT: total})
    assert mails_by_kind(sink) == expected_emails({"contoso": CONTOSO_EMAILS, "northwind": NORTHWIND_EMAILS})
    message_ids = [mail.message_id for mail in sink.received]
    assert len(set(message_ids)) == len(message_ids)
    northwind_alert = next(mail for mail in sink.received if "balance_below_trigger" in mail.message_id)
    text = northwind_alert.message.get_body(("plain",)).get_content()
    assert "4,30" in text and "Northwind <Traders>" in text  # Germany's decimal comma; the name as it is
    html = northwind_alert.message.get_body(("html",)).get_content()
    assert "Northwind &lt;Traders&gt;" in html

    hooks = receiver.received
    assert Counter(orjson.loads(hook.body)["kind"] for hook in hooks) == EXPECTED_KINDS["contoso"]
    assert {hook.path for hook in hooks} == {"/hooks/contoso"}
    for hook in hooks:
        verify_signature(webhook_secret(MASTER_SECRET, "contoso"), hook.headers[SIGNATURE_HEADER.lower()], hook.body,
                         now=int(time.time()))
    assert len({hook.headers["commcredits-delivery"] for hook in hooks}) == len(hooks)

    ids = alerts_topic_ids(kafka_broker, alerts_topic)
    assert len(set(ids)) == ALL_ALERTS

    with RunningConsumer(store, kafka_broker, unique_topics, settings):  # a restart sends nothing again
        time.sleep(3)
    assert len(sink.received) == ALL_EMAILS and len(receiver.received) == CONTOSO_ALERTS
    assert statuses(store) == Counter({SENT: total})


def test_mail_waits_while_the_smtp_server_is_down_and_arrives_once_when_it_is_back(store, kafka_broker,
                                                                                   unique_topics):
    write_history(store)
    relay_all(store, kafka_broker, unique_topics.events)
    sink = LocalSmtpSink()  # not started: the port refuses connections
    settings = settings_for(sink.port, f"alerts.v1.{unique_topics.cdrs.rpartition('.')[2]}")
    total = ALL_EMAILS + ALL_ALERTS
    try:
        with RunningConsumer(store, kafka_broker, unique_topics, settings) as consumer:
            email = next(dispatcher for dispatcher in consumer.dispatchers if dispatcher.channel_name == "email")
            wait_until(lambda: email.stats.failed >= 3, "failed attempts while the server is down")
            assert len(sink.received) == 0 and email.stats.by_error.get("smtp_unreachable", 0) >= 3
            sink.start()
            wait_until(lambda: settled(store, total), "every delivery after the server came back")
        assert statuses(store) == Counter({SENT: total})
        assert mails_by_kind(sink) == expected_emails({"contoso": CONTOSO_EMAILS, "northwind": NORTHWIND_EMAILS})
        assert email.stats.dead == 0
    finally:
        sink.stop()


def test_a_webhook_that_keeps_failing_is_parked_then_replayed_by_alerts_retry(store, kafka_broker, unique_topics,
                                                                            sink, monkeypatch):
    from typer.testing import CliRunner

    from commcredits.cli import app

    broken = {"on": True}
    receiver = WebhookReceiver(status_for=lambda path: 500 if broken["on"] else 200).start()
    try:
        write_history(store, contoso_webhooks=[f"{receiver.url}/hooks/contoso"])
        relay_all(store, kafka_broker, unique_topics.events)
        retry = RetryPolicy(max_attempts=3, backoff_s=0.05, backoff_cap_s=0.2)
        settings = settings_for(sink.port, f"alerts.v1.{unique_topics.cdrs.rpartition('.')[2]}", retry)
        with RunningConsumer(store, kafka_broker, unique_topics, settings):
            wait_until(lambda: statuses(store)[DEAD] == CONTOSO_ALERTS, "every webhook to be parked")
            wait_until(lambda: statuses(store)[SENT] == ALL_EMAILS + ALL_ALERTS, "the other deliveries")
        assert len(receiver.received) == 3 * CONTOSO_ALERTS  # three attempts each, then parked

        monkeypatch.setenv("COMMCREDITS_DATABASE_URL", database_url_of(store))
        monkeypatch.setenv("COMMCREDITS_WEBHOOK_SECRET", MASTER_SECRET.decode())
        monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
        runner = CliRunner()
        failed = runner.invoke(app, ["alerts", "failed", "--json"])
        assert failed.exit_code == 0, failed.output
        parked = orjson.loads(failed.stdout)
        assert len(parked) == CONTOSO_ALERTS
        assert {row["channel"] for row in parked} == {"webhook"} and all(row["attempts"] == 3 for row in parked)
        assert all(row["last_error"].startswith("webhook_http_500") for row in parked)

        not_parked = runner.invoke(app, ["alerts", "retry", "no-such-delivery"])
        assert not_parked.exit_code == 1 and "not in the dead-letter store: no-such-delivery" in not_parked.output

        broken["on"] = False
        before = len(receiver.received)
        replayed = runner.invoke(app, ["alerts", "retry", "--all"])
        assert replayed.exit_code == 0, replayed.output
        assert replayed.stdout.count(": sent") == CONTOSO_ALERTS
        arrived = receiver.received[before:]
        assert Counter(orjson.loads(hook.body)["kind"] for hook in arrived) == EXPECTED_KINDS["contoso"]
        for hook in arrived:
            verify_signature(webhook_secret(MASTER_SECRET, "contoso"), hook.headers["commcredits-signature"], hook.body,
                             now=int(time.time()))
        assert runner.invoke(app, ["alerts", "failed"]).stdout.strip() == "no failed deliveries"
        listing = runner.invoke(app, ["alerts", "list", "contoso", "--json", "--limit", "500"])
        webhook_rows = [row for row in orjson.loads(listing.stdout) if row["channel"] == "webhook"]
        assert len(webhook_rows) == CONTOSO_ALERTS
        assert all(row["status"] == SENT and row["attempts"] == 1 and row["sent_at"] for row in webhook_rows)
    finally:
        receiver.stop()
