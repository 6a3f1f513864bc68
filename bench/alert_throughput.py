"""How fast the alert consumer reads billing events and sends alerts.

Builds a file-backed SQLite store from a generated month (`--cdrs`, 5 organizations, each with
two e-mail contacts and a webhook), relays its events to the embedded broker, then runs the
alert consumer (`consumers.alerts.consumer`) against a local SMTP sink and a local webhook
receiver until every delivery is settled. Prints the events read per second (the feed: rules +
outbox writes, from Kafka) and the deliveries per second (the dispatchers), and for comparison
the alert projection alone, caught up from the store's log.

    python bench/alert_throughput.py [--cdrs 50000] [--dir /tmp/alert-bench]
"""

import argparse
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from application.billing_application import BillingApplication  # noqa: E402
from application.reference_data import load_catalog, load_rate_card  # noqa: E402
from application.settings import sqlite_store  # noqa: E402
from commcredits.contacts import set_contacts  # noqa: E402
from commcredits.local_smtp_sink import LocalSmtpSink  # noqa: E402
from commcredits.scenario import encoded, generate  # noqa: E402
from commcredits.simulate import Simulation  # noqa: E402
from consumers.alerts.consumer import AlertConsumer  # noqa: E402
from consumers.alerts.outbox import AlertOutbox  # noqa: E402
from consumers.alerts.projection import AlertProjection  # noqa: E402
from consumers.alerts.settings import AlertSettings, RetryPolicy  # noqa: E402
from consumers.alerts.smtp_delivery import SmtpSettings  # noqa: E402
from messaging.embedded_broker import EmbeddedBroker  # noqa: E402
from producers.event_relay import EventRelay  # noqa: E402
from projections.projector import Projector  # noqa: E402
from projections.runner import catch_up  # noqa: E402
from projections.sources import StoreLog  # noqa: E402
from projections.view_database import ViewDatabase  # noqa: E402
from tests.webhook_receiver import WebhookReceiver  # noqa: E402

ORGANIZATIONS = 5


def build(directory: Path, cdrs: int, webhook_url: str) -> Path:
    path = directory / "events.sqlite"
    store = sqlite_store(path)
    app = BillingApplication(env=store.env)
    simulation = Simulation(app, load_rate_card(None), load_catalog(None))
    lines = [encoded(line) for line in generate(ORGANIZATIONS, 500, cdrs, 11)]
    first_cdr = next(index for index, line in enumerate(lines) if b'"type":"cdr"' in line)
    simulation.run(lines[:first_cdr])
    at = datetime(2026, 1, 1, tzinfo=timezone.utc)
    for index in range(ORGANIZATIONS):
        org = f"org-{index + 1:03d}"
        set_contacts(store, org, [f"billing@{org}.example", f"finance@{org}.example"], [f"{webhook_url}/{org}"],
                     None, at)
    simulation.run(lines[first_cdr:])
    print(f"store: {app.recorder.max_notification_id():,} events", flush=True)
    app.close()
    return path


def projection_alone(path: Path) -> None:
    scratch = path.with_name("scratch.sqlite")
    shutil.copy(path, scratch)
    store = sqlite_store(scratch)
    app = BillingApplication(env=store.env)
    projector = Projector(AlertProjection("alerts.v1"), ViewDatabase.for_store(store))
    started = time.perf_counter()
    catch_up(projector, StoreLog(app))
    seconds = time.perf_counter() - started
    events = app.recorder.max_notification_id()
    print(f"alert projection alone (store log, SQLite): {events:,} events in {seconds:.1f} s = "
          f"{events / seconds:,.0f} events/s", flush=True)
    app.close()


def consumer(path: Path, broker: EmbeddedBroker, sink: LocalSmtpSink) -> None:
    store = sqlite_store(path)
    app = BillingApplication(env=store.env)
    relay = EventRelay(app, broker.bootstrap_servers, "billing-events.v1")
    while relay.relay_once():
        pass
    relay.close()
    events = app.recorder.max_notification_id()
    app.close()
    settings = AlertSettings(smtp=SmtpSettings(host="127.0.0.1", port=sink.port, starttls=False),
                             webhook_master_secret=b"bench", retry=RetryPolicy(backoff_s=0.1))
    alerts = AlertConsumer(store, broker.bootstrap_servers, "billing-events.v1", settings)
    stop = threading.Event()
    thread = threading.Thread(target=alerts.run, args=(stop,), daemon=True)
    outbox = AlertOutbox(ViewDatabase.for_store(store))
    started = time.perf_counter()
    thread.start()
    while alerts.feed.stats.polled < events:
        time.sleep(0.05)
    fed = time.perf_counter() - started
    while outbox.unsettled():
        time.sleep(0.05)
    settled = time.perf_counter() - started
    stop.set()
    thread.join(60)
    counts = Counter(outbox.counts())
    alerts_made = outbox.database.query("SELECT COUNT(*) FROM alert_notifications")[0][0]
    for channel, first, last, count in outbox.database.query(
            "SELECT channel, MIN(sent_at), MAX(sent_at), COUNT(*) FROM alert_deliveries GROUP BY channel"):
        print(f"  {channel}: {count} sent between {first} and {last}", flush=True)
    print(f"alert consumer from Kafka: {events:,} events read in {fed:.1f} s = {events / fed:,.0f} events/s; "
          f"{alerts_made:,} alerts, {sum(counts.values()):,} deliveries ({dict(counts)}) settled in {settled:.1f} s "
          f"= {sum(counts.values()) / settled:,.0f} deliveries/s; {len(sink.received):,} e-mails received",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cdrs", type=int, default=50_000)
    parser.add_argument("--dir", type=Path, default=None)
    options = parser.parse_args()
    directory = options.dir or Path(tempfile.mkdtemp(prefix="alert-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    receiver, sink = WebhookReceiver().start(), LocalSmtpSink().start()
    try:
        path = build(directory, options.cdrs, receiver.url)
        projection_alone(path)
        with EmbeddedBroker() as broker:
            consumer(path, broker, sink)
    finally:
        receiver.stop()
        sink.stop()


if __name__ == "__main__":
    main()
