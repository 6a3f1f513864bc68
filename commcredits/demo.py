"""`commcredits demo`: a realistic synthetic month through the live pipeline, then a summary.

Steps:
1. generate the month (`commcredits.scenario`): organizations of every flavour, hundreds of
   users, tens of thousands of CDRs, a card that expires so an auto-recharge fails, top-ups, a
   payment-method change that lifts the suspension, duplicates, a malformed line, and a final
   clock line a year on so funds expire;
2. apply the administrative lines before the first CDR to a fresh file-backed SQLite store, then
   start the pipeline (embedded broker, CDR consumer, event relay);
3. publish the CDRs to `cdr.v1` as a switch would; each later administrative line waits until
   the consumer has rated everything published before it, then goes to the store beside the
   consumer (whose next batch notices and redoes itself: one store, optimistic concurrency);
4. wait until the relay has published every stored event and the alert consumer has sent the
   alerts they call for (each organization's billing contact is an address at a local SMTP sink
   the demo starts), and print the summary with the alerts the sink received.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaProducer

from application.settings import sqlite_store
from commcredits.admin import Admin
from commcredits.composition import open_application
from commcredits.contacts import set_contacts
from commcredits.demo_alerts import AlertSink, demo_alert_settings
from commcredits.live_pipeline import LivePipeline, PipelineConfig
from commcredits.scenario import encoded, generate
from commcredits.simulate import RunLog, report_document
from commcredits.summary import render_summary
from domain.errors import DomainError
from domain.timestamps import parse_timestamp
from messaging.topics import Topics

CATCH_UP_TIMEOUT_S = 300.0
CATCH_UP_POLL_S = 0.05
PUBLISH_LINGER_MS = 5


@dataclass
class DemoResult:
    summary: str
    published_cdrs: int
    dead_letters: int
    relayed_events: int
    stored_events: int
    seconds: float
    report: dict = field(default_factory=dict)  # SPEC §11's document, from the store
    alerts: str = ""  # what the local SMTP sink received


def run_demo(data_dir: Path, *, organizations: int = 4, users: int = 400, cdrs: int = 20_000, seed: int = 2026,
             say: Callable[[str], None] = lambda text: None) -> DemoResult:
    store = sqlite_store(data_dir / "events.sqlite")
    lines = generate(organizations, users, cdrs, seed)
    admin, log = Admin(store), RunLog()
    say(f"event store: {store.description}")
    sink = AlertSink().start()
    say(f"billing contacts' mail goes to a local SMTP sink at 127.0.0.1:{sink.port}")
    first_cdr = _apply_until_first_cdr(admin, lines, log)
    # One CDR partition: calls are rated in the file's order, so the month ends exactly where
    # `simulate` ends it, dates included (with several partitions each organization keeps its
    # order, but a shard's clock may date an expiry or recharge differently; docs/pipeline.md).
    pipeline = LivePipeline(PipelineConfig(store=store, topics=Topics(), expire_by_wall_clock=False, cdr_partitions=1,
                                           broker_log=data_dir / "embedded-broker.log",
                                           alerts=demo_alert_settings(sink.port))).start()
    say(f"pipeline running; embedded broker at {pipeline.bootstrap_servers}")
    started = time.perf_counter()
    try:
        producer = KafkaProducer(bootstrap_servers=pipeline.bootstrap_servers, acks="all",
                                 enable_idempotence=True, linger_ms=PUBLISH_LINGER_MS)
        published = _feed(pipeline, producer, admin, [first_cdr], lines, log, say)
        producer.close()
        _wait_until(lambda: _consumed(pipeline) >= published, pipeline, "the consumer to rate every CDR")
        stored = admin.app.recorder.max_notification_id() or 0
        _wait_until(lambda: pipeline.relay.position >= stored, pipeline, "the relay to publish every event")
        seconds = time.perf_counter() - started
        _wait_until(lambda: sink.settled(pipeline.alerts, pipeline.relay.stats.published), pipeline,
                    "the alert consumer to send every alert")
        stats = pipeline.consumer.stats
        log.duplicates, log.rejected_cdrs = stats.duplicates, stats.dead_letters
        log.rejected.extend((0, code) for code, count in stats.dead_letter_codes.items() for _ in range(count))
        reader = open_application(store)
        report = report_document(reader, log)
        reader.close()
        return DemoResult(render_summary(report, log.lines, seconds), published, stats.dead_letters,
                          pipeline.relay.stats.published, stored, seconds, report, sink.summary(store))
    finally:
        pipeline.stop()
        admin.close()
        sink.stop()


def _apply_until_first_cdr(admin: Admin, lines, log: RunLog) -> dict | str:
    for line in lines:
        if _is_cdr(line):
            return line
        _apply(admin, line, log)
    raise AssertionError("the generated month has CDRs")


def _feed(pipeline: LivePipeline, producer: KafkaProducer, admin: Admin, first: list, lines, log: RunLog,
          say: Callable[[str], None]) -> int:
    published = 0
    for line in [*first, *lines]:
        if _is_cdr(line):
            value = encoded(line)
            key = line["org"].encode() if isinstance(line, dict) else None
            producer.send(pipeline.config.topics.cdrs, key=key, value=value)
            published += 1
            log.lines += 1
            continue
        producer.flush()
        _wait_until(lambda: _consumed(pipeline) >= published, pipeline, "the consumer to catch up")
        say(f"{published} CDRs rated; now {line['type'] if isinstance(line, dict) else 'a malformed line'}")
        _apply(admin, line, log)
    producer.flush()
    return published


def _is_cdr(line: dict | str) -> bool:
    """CDRs and the malformed line go to the CDR topic (the latter to show the dead-letter topic)."""
    return isinstance(line, str) or line.get("type") == "cdr"


def _apply(admin: Admin, line: dict, log: RunLog) -> None:
    log.lines += 1
    admin.refresh()  # the consumer has written since we last read
    try:
        admin.run(line)
    except DomainError as error:
        log.rejected.append((log.lines, error.code))
        return
    if line.get("type") == "organization.created":
        set_contacts(admin.store, line["org"], [f"billing@{line['org']}.example"], [], None,
                     parse_timestamp(line["at"]))


def _consumed(pipeline: LivePipeline) -> int:
    return pipeline.consumer.stats.handled


def _wait_until(condition: Callable[[], bool], pipeline: LivePipeline, what: str) -> None:
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    while not condition():
        if pipeline.failures:
            raise RuntimeError(f"the pipeline failed: {'; '.join(pipeline.failures)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {CATCH_UP_TIMEOUT_S:.0f} s: {pipeline.status()}")
        time.sleep(CATCH_UP_POLL_S)
