"""The alert consumer killed with SIGKILL at the worst moment and restarted: no alert is sent twice,
none is missing. The kill comes from the receiving server itself, when it holds a whole message
and has not answered yet: the sender cannot know whether it arrived. That is the moment a naive
consumer sends again after a restart (a duplicate) or drops it (a loss). Here the outbox passed
its commit point before the last bytes went out, so the restarted consumer knows the message
was handed over and does not send it again.

The consumer runs as `commcredits run --role alerts`, a process of its own, on SQLite and
PostgreSQL. Kafka's copy (`alerts.v1`) is checked too: a copy in doubt is looked for at the end of
its partition before it is sent again, so every alert is there once."""

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from commcredits.local_smtp_sink import LocalSmtpSink
from consumers.alerts.outbox import SENT, UNCONFIRMED
from consumers.alerts.webhook_delivery import verify_signature, webhook_secret
from tests.alert_scenario import (
    CONTOSO_EMAILS,
    EXPECTED_KINDS,
    NORTHWIND_EMAILS,
    database_url_of,
    expected_emails,
    write_history,
)
from tests.integration.test_alert_consumer import alerts_topic_ids, mails_by_kind, relay_all, statuses, wait_until
from tests.webhook_receiver import WebhookReceiver

MASTER_SECRET = "fault-test-master-secret-of-at-least-32-bytes"
KILL_AT = 5  # the n-th message received triggers the kill
SEND_TIMEOUT_S = 2  # the lease of a claimed delivery is 3 send timeouts + 5 s
FINISH_TIMEOUT_S = 90.0
ALL_ALERTS = sum(sum(kinds.values()) for kinds in EXPECTED_KINDS.values())


def start_alerts(store, broker, topics, alerts_topic: str, smtp_port: int, log: Path) -> subprocess.Popen:
    environment = {**os.environ, "COMMCREDITS_DATABASE_URL": database_url_of(store),
                   "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "COMMCREDITS_CDR_TOPIC": topics.cdrs,
                   "COMMCREDITS_DLQ_TOPIC": topics.dead_letters, "COMMCREDITS_EVENTS_TOPIC": topics.events,
                   "COMMCREDITS_ALERTS_TOPIC": alerts_topic, "COMMCREDITS_SMTP_HOST": "127.0.0.1",
                   "COMMCREDITS_SMTP_PORT": str(smtp_port), "COMMCREDITS_SMTP_STARTTLS": "false",
                   "COMMCREDITS_SMTP_TIMEOUT_S": str(SEND_TIMEOUT_S), "COMMCREDITS_WEBHOOK_SECRET": MASTER_SECRET,
                   "COMMCREDITS_ALERT_BACKOFF_S": "0.1"}
    return subprocess.Popen([sys.executable, "-m", "commcredits.cli", "run", "--role", "alerts"], env=environment,
                            stdout=subprocess.DEVNULL, stderr=log.open("ab"))


class Killer:
    """Kills the consumer process when the n-th message arrives, before it is answered."""

    def __init__(self, at: int) -> None:
        self.at, self.seen, self.process, self.killed = at, 0, None, False

    def __call__(self, _message) -> None:
        self.seen += 1
        if self.seen == self.at and self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.killed = True


@pytest.fixture(params=["smtp", "webhook"])
def kill_from(request) -> str:
    return request.param


@pytest.mark.slow
def test_a_consumer_killed_while_a_message_is_in_flight_sends_each_alert_once(store, kafka_broker, unique_topics,
                                                                             tmp_path, kill_from):
    killer = Killer(KILL_AT)
    sink = LocalSmtpSink(on_message=killer if kill_from == "smtp" else None).start()
    receiver = WebhookReceiver(on_request=killer if kill_from == "webhook" else None).start()
    # one channel at a time: the other channel's dispatcher would be at a random point of its work
    emails = {"contoso": CONTOSO_EMAILS, "northwind": NORTHWIND_EMAILS} if kill_from == "smtp" else {}
    webhooks = [f"{receiver.url}/hooks/contoso"] if kill_from == "webhook" else []
    write_history(store, contoso_emails=emails.get("contoso", []), northwind_emails=emails.get("northwind", []),
                  contoso_webhooks=webhooks)
    relay_all(store, kafka_broker, unique_topics.events)
    alerts_topic = f"alerts.v1.{unique_topics.cdrs.rpartition('.')[2]}"
    log = tmp_path / "alerts.log"
    received = (lambda: len(sink.received)) if kill_from == "smtp" else (lambda: len(receiver.received))
    expected = sum(expected_emails(emails).values()) if kill_from == "smtp" else sum(EXPECTED_KINDS["contoso"].values())
    try:
        killer.process = start_alerts(store, kafka_broker, unique_topics, alerts_topic, sink.port, log)
        wait_until(lambda: killer.killed, "the kill", FINISH_TIMEOUT_S)
        assert killer.process.returncode == -signal.SIGKILL
        assert received() == KILL_AT  # the message in flight arrived; the consumer never heard back

        restarted = start_alerts(store, kafka_broker, unique_topics, alerts_topic, sink.port, log)
        try:
            wait_until(lambda: received() >= expected and _settled(store, expected + ALL_ALERTS), "every delivery",
                       FINISH_TIMEOUT_S)
            time.sleep(1)  # anything sent twice would arrive now
        finally:
            restarted.send_signal(signal.SIGTERM)
            assert restarted.wait(30) == 0, log.read_text()[-3000:]

        if kill_from == "smtp":
            assert mails_by_kind(sink) == expected_emails(emails)
            assert len({mail.message_id for mail in sink.received}) == expected
        else:
            hooks = receiver.received
            assert Counter(orjson.loads(hook.body)["kind"] for hook in hooks) == EXPECTED_KINDS["contoso"]
            assert len({hook.headers["commcredits-delivery"] for hook in hooks}) == expected
            for hook in hooks:
                verify_signature(webhook_secret(MASTER_SECRET.encode(), "contoso"),
                                 hook.headers["commcredits-signature"], hook.body, now=int(time.time()))
        # the delivery in flight at the kill is the one marked unconfirmed: handed over, never sent again
        assert statuses(store)[UNCONFIRMED] == 1
        assert statuses(store)[SENT] == expected + ALL_ALERTS - 1
        published = alerts_topic_ids(kafka_broker, alerts_topic)
        assert sorted(published) == sorted(_all_alert_ids(store))  # each once: a copy in doubt was looked for first
    finally:
        if killer.process is not None and killer.process.poll() is None:
            killer.process.kill()
        sink.stop()
        receiver.stop()


def _settled(store, total: int) -> bool:
    counts = statuses(store)
    return sum(counts.values()) == total and counts[SENT] + counts[UNCONFIRMED] == total


def _all_alert_ids(store) -> set[str]:
    from consumers.alerts.outbox import AlertOutbox
    from projections.view_database import ViewDatabase

    outbox = AlertOutbox(ViewDatabase.for_store(store))
    try:
        return {identity for (identity,) in outbox.database.query("SELECT id FROM alert_notifications")}
    finally:
        outbox.database.close()
