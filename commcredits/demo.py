"""`commcredits demo`: a realistic synthetic month through the live pipeline, then a summary.

Steps:
1. generate the month (`commcredits.scenario`): organizations of every flavour, hundreds of
   users, tens of thousands of CDRs, a card that expires so an auto-recharge fails, an
   organization that tops up by hand and runs out of money between top-ups, a payment-method
   change that lifts the suspension, duplicates, a malformed line, and a final clock line a
   year on so funds expire;
2. apply the administrative lines before the first CDR to a fresh file-backed SQLite store, then
   start the pipeline (embedded broker, CDR consumer, event relay) and, unless `authorize` is
   off, the authorization desk `serve` decides at (in this process: no HTTP);
3. play the month as a switch would (`commcredits.demo_switch`): ask before each billable call,
   connect the allowed ones for at most `max_seconds`, publish their CDRs to `cdr.v1`. Each
   question and each later administrative line waits until the consumer has rated every CDR
   published before it; an administrative line then goes to the store beside the consumer
   (whose next batch notices and redoes itself: one store, optimistic concurrency). With
   `authorize` off, every CDR is published as generated and nothing is asked;
4. wait until the relay has published every stored event and the alert consumer has sent the
   alerts they call for (each organization's billing contact is an address at a local SMTP sink
   the demo starts), and print the summary with the alerts the sink received. An authorized
   run's summary sets each organization's uncollected total beside that of the same month with
   nothing asked, which `simulate` computes in-process on a thread of its own while the pipeline
   runs (`demo --no-authorize` ends where `simulate` does: tests/e2e/test_demo.py).

Every line goes into `month.jsonl` in the data directory in the order it was applied:
`commcredits simulate` on that file ends where the demo ended.
"""

import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from itertools import chain
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from kafka import KafkaProducer

from application.authorization_desk import AuthorizationDesk
from application.inputs import command_from_document
from application.reference_data import load_catalog, load_rate_card
from application.settings import StoreSettings, sqlite_store
from commcredits.admin import Admin
from commcredits.composition import billing_service, open_application
from commcredits.contacts import set_contacts
from commcredits.demo_alerts import AlertSink, demo_alert_settings
from commcredits.demo_switch import Switch, SwitchStats
from commcredits.live_pipeline import LivePipeline, PipelineConfig
from commcredits.scenario import MONTH_DAYS, encoded, generate
from commcredits.simulate import RunLog, Simulation, report_document
from commcredits.summary import AuthorizedRun, render_summary
from domain.errors import DomainError
from domain.timestamps import parse_timestamp
from messaging.topics import Topics

CATCH_UP_TIMEOUT_S = 300.0
CATCH_UP_POLL_S = 0.05
SWITCH_POLL_S = 0.002  # the switch waits for the consumer once an hour of the month: ~700 waits
DESK_ANSWER_TIMEOUT_S = 60.0
PUBLISH_LINGER_MS = 5
MONTH_FILE = "month.jsonl"


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
    month: Path | None = None  # every line in the order applied (`simulate` on it ends where the demo did)
    switch: SwitchStats | None = None  # None: nothing was asked (`--no-authorize`)


def run_demo(data_dir: Path, *, organizations: int = 4, users: int = 400, cdrs: int = 20_000, seed: int = 2026,
             days: int = MONTH_DAYS, authorize: bool = True,
             say: Callable[[str], None] = lambda text: None) -> DemoResult:
    store = sqlite_store(data_dir / "events.sqlite")
    month_of = partial(generate, organizations, users, cdrs, seed, days)
    lines = month_of()
    admin, log = Admin(store), RunLog()
    say(f"event store: {store.description}")
    sink = AlertSink().start()
    say(f"billing contacts' mail goes to a local SMTP sink at 127.0.0.1:{sink.port}")
    month = open(data_dir / MONTH_FILE, "wb")
    first_cdr = _apply_until_first_cdr(admin, lines, log, month)
    # One CDR partition: calls are rated in the file's order, so the month ends exactly where
    # `simulate` ends it, dates included (with several partitions each organization keeps its
    # order, but a shard's clock may date an expiry or recharge differently; docs/pipeline.md).
    pipeline = LivePipeline(PipelineConfig(store=store, topics=Topics(), expire_by_wall_clock=False, cdr_partitions=1,
                                           broker_log=data_dir / "embedded-broker.log",
                                           alerts=demo_alert_settings(sink.port))).start()
    say(f"pipeline running; embedded broker at {pipeline.bootstrap_servers}")
    desk = _demo_desk(store).start() if authorize else None
    # The same month with nothing asked, beside the pipeline: it mostly runs while the pipeline waits.
    background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="no-authorize")
    without = background.submit(_uncollected_without_authorization, month_of()) if authorize else None
    started = time.perf_counter()
    try:
        producer = KafkaProducer(bootstrap_servers=pipeline.bootstrap_servers, acks="all",
                                 enable_idempotence=True, linger_ms=PUBLISH_LINGER_MS)
        feed = _Feed(pipeline, producer, admin, desk, log, month, say)
        switch = _play(feed, chain([first_cdr], lines), authorize)
        feed.catch_up()
        month.close()
        producer.close()
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
        authorized = None if switch is None else AuthorizedRun(switch.stats.cut_short, without.result())
        return DemoResult(render_summary(report, log.lines, seconds, authorized), feed.published,
                          stats.dead_letters, pipeline.relay.stats.published, stored, seconds, report,
                          sink.summary(store), data_dir / MONTH_FILE, switch.stats if switch else None)
    finally:
        month.close()
        background.shutdown(wait=True, cancel_futures=True)
        if desk is not None:
            desk.stop()
        pipeline.stop()
        admin.close()
        sink.stop()


def _demo_desk(store: StoreSettings) -> AuthorizationDesk:
    """The desk `serve` decides at, except that it stores its clock as the administrative steps
    do: the consumer then rates a round's CDRs no earlier than the round's last question, as
    `simulate` does on the lines in the order sent (`serve`'s desk keeps its clock in memory
    because there every stored clock would conflict with the other writers; here they take turns)."""
    rate_card, catalog = load_rate_card(None), load_catalog(None)
    return AuthorizationDesk(lambda: billing_service(open_application(store), rate_card, catalog, keeps_clock=True))


def _play(feed: "_Feed", lines: Iterable[dict[str, Any] | str], authorize: bool) -> Switch | None:
    if authorize:
        switch = Switch(feed)
        switch.run(lines)
        return switch
    for line in lines:
        if _is_cdr(line):
            feed.publish(line)
        else:
            feed.administer(line)
    return None


class _Feed:
    """The month's lines into the live service, each written to the month file as it is applied:
    CDRs to the CDR topic; questions to the desk and administrative lines to the store, each
    once the consumer has rated every CDR published before it. The switch's port."""

    def __init__(self, pipeline: LivePipeline, producer: KafkaProducer, admin: Admin, desk: AuthorizationDesk | None,
                 log: RunLog, month: BinaryIO, say: Callable[[str], None]) -> None:
        self.pipeline, self.producer, self.admin, self.desk = pipeline, producer, admin, desk
        self.log, self.month, self.say = log, month, say
        self.published = 0

    def publish(self, line: dict[str, Any] | str) -> None:
        key = line["org"].encode() if isinstance(line, dict) else None
        self.producer.send(self.pipeline.config.topics.cdrs, key=key, value=encoded(line))
        self.published += 1
        _record(line, self.log, self.month)

    def catch_up(self) -> None:
        self.producer.flush()
        _wait_until(lambda: _consumed(self.pipeline) >= self.published, self.pipeline,
                    "the consumer to rate every CDR published", poll_s=SWITCH_POLL_S)

    def send_cdrs(self, lines: list[dict[str, Any] | str]) -> None:
        for line in lines:
            self.publish(line)

    def administer(self, line: dict[str, Any]) -> None:
        self.catch_up()
        self.say(f"{self.published} CDRs rated; now {line['type'] if isinstance(line, dict) else 'a malformed line'}")
        _record(line, self.log, self.month)
        _apply(self.admin, line, self.log)

    def ask(self, requests: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """Every question is queued at once: the desk decides them in order, in batches."""
        self.catch_up()
        asked = [(self._submit(request), self.log.lines) for request in requests]
        return [self._answer(future, line) for future, line in asked]

    def _submit(self, request: dict[str, Any]) -> "Future | DomainError":
        _record(request, self.log, self.month)
        try:
            return self.desk.submit(command_from_document(request))
        except DomainError as error:
            return error

    def _answer(self, asked: "Future | DomainError", line: int) -> dict[str, Any] | None:
        try:
            if isinstance(asked, DomainError):
                raise asked
            return asked.result(timeout=DESK_ANSWER_TIMEOUT_S).record
        except DomainError as error:
            self.log.rejected.append((line, error.code))
            return None


def _record(line: dict[str, Any] | str, log: RunLog, month: BinaryIO) -> None:
    log.lines += 1
    month.write(encoded(line) + b"\n")


def _apply_until_first_cdr(admin: Admin, lines, log: RunLog, month: BinaryIO) -> dict | str:
    for line in lines:
        if _is_cdr(line):
            return line
        _record(line, log, month)
        _apply(admin, line, log)
    raise AssertionError("the generated month has CDRs")


def _uncollected_without_authorization(lines: Iterable[dict[str, Any] | str]) -> dict[str, str]:
    """Each organization's uncollected total in the same month with nothing asked, by `simulate`
    on a temporary SQLite file (bounded memory)."""
    with tempfile.TemporaryDirectory(prefix="commcredits-no-authorize-") as directory:
        app = open_application(sqlite_store(Path(directory) / "events.sqlite"))
        simulation = Simulation(app, load_rate_card(None), load_catalog(None), store_is_new=True)
        simulation.run(encoded(line) for line in lines)
        organizations = report_document(app, simulation.log)["organizations"]
        app.close()
    return {org: state["totals"]["uncollected"] for org, state in organizations.items()}


def _is_cdr(line: dict | str) -> bool:
    """CDRs and the malformed line go to the CDR topic (the latter to show the dead-letter topic)."""
    return isinstance(line, str) or line.get("type") == "cdr"


def _apply(admin: Admin, line: dict, log: RunLog) -> None:
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


def _wait_until(condition: Callable[[], bool], pipeline: LivePipeline, what: str,
                poll_s: float = CATCH_UP_POLL_S) -> None:
    deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
    while not condition():
        if pipeline.failures:
            raise RuntimeError(f"the pipeline failed: {'; '.join(pipeline.failures)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what} after {CATCH_UP_TIMEOUT_S:.0f} s: {pipeline.status()}")
        time.sleep(poll_s)
