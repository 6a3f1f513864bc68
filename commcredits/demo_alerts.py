"""The demo's alerts: a local SMTP sink standing in for the billing contacts' mail server, and the
summary of what it received (docs/alerts.md says how to point `run` at a real one)."""

from collections import Counter

from application.settings import StoreSettings
from commcredits.local_smtp_sink import LocalSmtpSink
from consumers.alerts.consumer import AlertConsumer
from consumers.alerts.outbox import AlertOutbox
from consumers.alerts.settings import AlertSettings, RetryPolicy
from consumers.alerts.smtp_delivery import SmtpSettings
from projections.view_database import ViewDatabase

DEMO_WEBHOOK_SECRET = b"commcredits-demo"
DEMO_RETRY = RetryPolicy(max_attempts=5, backoff_s=0.2, backoff_cap_s=2.0)
SAMPLE_KINDS = ("recharge_failed", "balance_depleted", "funds_expiring", "recharge_succeeded")
SAMPLE_LINES = 20


def demo_alert_settings(smtp_port: int) -> AlertSettings:
    return AlertSettings(smtp=SmtpSettings(host="127.0.0.1", port=smtp_port, starttls=False, timeout_s=5.0),
                         webhook_master_secret=DEMO_WEBHOOK_SECRET, retry=DEMO_RETRY, send_timeout_s=5.0)


class AlertSink:
    def __init__(self) -> None:
        self.smtp = LocalSmtpSink()
        self._outbox: AlertOutbox | None = None  # our own connection: the dispatchers' are theirs

    @property
    def port(self) -> int:
        return self.smtp.port

    def start(self) -> "AlertSink":
        self.smtp.start()
        return self

    def stop(self) -> None:
        self.smtp.stop()
        if self._outbox is not None:
            self._outbox.database.close()

    def settled(self, alerts: AlertConsumer, relayed: int) -> bool:
        """Whether the alert consumer has read every relayed event and has nothing left to send."""
        if alerts.feed.stats.polled < relayed:
            return False
        if self._outbox is None:
            self._outbox = AlertOutbox(ViewDatabase.for_store(alerts.store))
        return self._outbox.unsettled() == 0

    def summary(self, store: StoreSettings) -> str:
        outbox = self._outbox or AlertOutbox(ViewDatabase.for_store(store))
        statuses = outbox.counts()
        kinds = Counter(kind for (kind,) in outbox.database.query("SELECT kind FROM alert_notifications"))
        received = self.smtp.received
        lines = [f"alerts: {sum(kinds.values())} raised ("
                 + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())) + "); deliveries "
                 + ", ".join(f"{status} {count}" for status, count in sorted(statuses.items()))
                 + f"; {len(received)} e-mails received by the local SMTP sink"]
        sample = next((mail for kind in SAMPLE_KINDS for mail in received
                       if f":{kind}" in str(mail.message["X-Commcredits-Alert"])), received[0] if received else None)
        if sample is not None:
            text = sample.message.get_body(("plain",)).get_content().strip().splitlines()
            lines += ["", f"one of them, to {', '.join(sample.recipients)}:", f"  Subject: {sample.message['Subject']}"]
            lines += [f"  {line}" for line in text[:SAMPLE_LINES]]
        return "\n".join(lines) + "\n"
