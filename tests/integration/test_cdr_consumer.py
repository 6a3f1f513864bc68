"""The CDR consumer against the real broker and the real stores: the SPEC's examples fed through
Kafka give the same balances and calls as `simulate`; rejected CDRs land on the DLQ with their
code; a restarted consumer neither loses nor re-charges a CDR."""

import time

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from commcredits.simulate import Simulation, report_document
from consumers.cdr_consumer import CdrConsumer
from messaging.embedded_broker import ensure_topics
from tests.support import SPEC_EXAMPLES, SPEC_RATES, simulate_lines

EXAMPLES = sorted(path.stem for path in SPEC_EXAMPLES.glob("*.jsonl"))
WAIT_FOR_CONSUMER_S = 60.0


def is_cdr_line(raw: bytes) -> bool:
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return False
    return isinstance(document, dict) and document.get("type") == "cdr"


def org_key(raw: bytes) -> bytes | None:
    org = orjson.loads(raw).get("org")
    return org.encode() if isinstance(org, str) else None


class Pipeline:
    """A consumer on the store plus a producer for CDRs; administrative lines go through the same
    service (one writer), CDR lines through Kafka."""

    def __init__(self, store, broker, topics, partitions: int = 1) -> None:
        ensure_topics(broker.bootstrap_servers, {topics.cdrs: partitions, topics.dead_letters: 1})
        self.broker, self.topics = broker, topics
        self.app = BillingApplication(env=store.env)
        self.simulation = Simulation(self.app, SPEC_RATES, load_catalog(None))
        self.consumer = CdrConsumer(self.simulation.service, broker.bootstrap_servers, topics)
        self.producer = KafkaProducer(bootstrap_servers=broker.bootstrap_servers, acks="all")
        self.published = 0

    def feed(self, lines: list[bytes]) -> None:
        """Runs of consecutive CDR lines are published together, then consumed before the next
        administrative line: the order of the file is kept."""
        for number, raw in enumerate(lines, start=1):
            if is_cdr_line(raw):
                self.producer.send(self.topics.cdrs, key=org_key(raw), value=raw)
                self.published += 1
                continue
            self.wait_until_consumed()
            self.simulation.apply_line(number, raw)
            self.simulation.service.flush()
        self.wait_until_consumed()

    def wait_until_consumed(self) -> None:
        self.producer.flush()
        deadline = time.monotonic() + WAIT_FOR_CONSUMER_S
        stats = self.consumer.stats
        while stats.handled < self.published:
            assert time.monotonic() < deadline, f"consumer stuck at {stats} of {self.published}"
            self.consumer.poll_once()

    def report(self) -> dict:
        self.simulation.log.duplicates = self.consumer.stats.duplicates
        self.simulation.log.rejected_cdrs = self.consumer.stats.dead_letters
        return report_document(self.app, self.simulation.log)

    def close(self) -> None:
        self.consumer.close()
        self.producer.close()
        self.app.close()

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def dead_letters(broker, topic: str) -> list:
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, consumer_timeout_ms=2000)
    consumer.assign([TopicPartition(topic, 0)])
    consumer.seek_to_beginning()
    letters = list(consumer)
    consumer.close()
    return letters


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_spec_examples_through_kafka_give_simulates_balances_and_calls(example, store, kafka_broker,
                                                                          unique_topics):
    expected = orjson.loads((SPEC_EXAMPLES / f"{example}.expected.json").read_bytes())
    pipeline = Pipeline(store, kafka_broker, unique_topics)
    try:
        pipeline.feed((SPEC_EXAMPLES / f"{example}.jsonl").read_bytes().splitlines())
        report = pipeline.report()
        stats = pipeline.consumer.stats
    finally:
        pipeline.close()
    assert {"poll", "follow", "decode", "rate", "dead letters", "save"} <= stats.seconds.keys()
    assert all(stats.seconds[stage] > 0 for stage in ("decode", "rate", "save"))  # where the time goes, by stage
    assert stats.stage_summary().startswith("µs per CDR: follow ")
    assert report["calls"] == expected["calls"]
    assert report["counts"] == expected["counts"]

    letters = dead_letters(kafka_broker, unique_topics.dead_letters)
    lines = (SPEC_EXAMPLES / f"{example}.jsonl").read_bytes().splitlines()
    rejected_cdr_codes = [entry["code"] for entry in expected["rejected"] if is_cdr_line(lines[entry["line"] - 1])]
    assert [dict(letter.headers)["error_code"].decode() for letter in letters] == rejected_cdr_codes
    for letter in letters:
        headers = dict(letter.headers)
        assert headers["source_topic"].decode() == unique_topics.cdrs
        assert headers["error_message"]
        assert letter.value in lines  # the original bytes


def test_a_restarted_consumer_resumes_at_the_stores_position_not_kafkas(store, kafka_broker, unique_topics):
    """Kafka's committed offsets are only a hint: the consumer of a fresh group (no offsets at all)
    starts where the store says, so nothing is rated twice."""
    lines = (SPEC_EXAMPLES / "01-basics.jsonl").read_bytes().splitlines()
    first = Pipeline(store, kafka_broker, unique_topics)
    first.feed(lines)
    before = first.report()
    first.close()

    renamed = type(unique_topics)(cdrs=unique_topics.cdrs, events=unique_topics.events,
                                  dead_letters=unique_topics.dead_letters,
                                  consumer_group=unique_topics.consumer_group + ".fresh")
    second = Pipeline(store, kafka_broker, renamed)
    deadline = time.monotonic() + 15
    while not second.consumer.consumer.assignment() and time.monotonic() < deadline:
        second.consumer.poll_once()
    for _ in range(10):
        second.consumer.poll_once()
    assert second.consumer.stats.rated == 0 and second.consumer.stats.duplicates == 0
    after = report_without_run_log(second)
    second.close()
    assert after["organizations"] == before["organizations"]
    assert after["calls"] == before["calls"]


def setup_then_calls() -> tuple[list[bytes], list[bytes]]:
    """01-basics up to its first administrative line after the calls: set-up lines, then CDRs only."""
    lines = (SPEC_EXAMPLES / "01-basics.jsonl").read_bytes().splitlines()
    first_cdr = next(index for index, line in enumerate(lines) if is_cdr_line(line))
    calls = []
    for line in lines[first_cdr:]:
        if not is_cdr_line(line):
            break
        calls.append(line)
    assert len(calls) >= 6, "the example changed: these tests need a run of calls"
    return lines[:first_cdr], calls


def publish_calls(pipeline: Pipeline, calls: list[bytes]) -> None:
    for raw in calls:
        pipeline.producer.send(pipeline.topics.cdrs, key=org_key(raw), value=raw)
    pipeline.producer.flush()
    pipeline.published += len(calls)


def wait_until_assigned(consumer: CdrConsumer) -> TopicPartition:
    deadline = time.monotonic() + 30
    while not consumer.consumer.assignment() or consumer.consumer.paused():
        assert time.monotonic() < deadline, "no partition assigned"
        consumer.poll_once()
    (partition,) = consumer.consumer.assignment()
    return partition


def test_a_group_offset_ahead_of_the_store_skips_nothing(store, kafka_broker, unique_topics):
    """The group's committed offset says 5 calls are done, the store says none: all are rated."""
    setup, calls = setup_then_calls()
    with Pipeline(store, kafka_broker, unique_topics) as pipeline:
        pipeline.simulation.run(setup)
        publish_calls(pipeline, calls)
        hint = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap_servers, group_id=unique_topics.consumer_group,
                             enable_auto_commit=False)
        partition = TopicPartition(unique_topics.cdrs, 0)
        hint.assign([partition])
        hint.commit({partition: OffsetAndMetadata(5, "", -1)})
        hint.close()
        report = report_when_each_call_handled_once(pipeline, calls)
    assert_as_simulate(report, setup + calls)


def test_a_fetch_that_jumps_past_the_stores_position_is_read_from_the_stores_position(store, kafka_broker,
                                                                                        unique_topics):
    """A fetch position that outlived its topic (a recreated topic, a stale seek) must not skip
    calls: the consumer goes back to the offset after the store's position."""
    setup, calls = setup_then_calls()
    with Pipeline(store, kafka_broker, unique_topics) as pipeline:
        pipeline.simulation.run(setup)
        partition = wait_until_assigned(pipeline.consumer)
        publish_calls(pipeline, calls[:2])
        pipeline.wait_until_consumed()
        publish_calls(pipeline, calls[2:])
        pipeline.consumer.consumer.seek(partition, 4)  # offsets 2 and 3 would be skipped
        report = report_when_each_call_handled_once(pipeline, calls)
    assert_as_simulate(report, setup + calls)


def report_when_each_call_handled_once(pipeline: Pipeline, calls: list[bytes]) -> dict:
    pipeline.wait_until_consumed()
    assert pipeline.consumer.stats.handled == len(calls)  # each call once (the run has a duplicate)
    return report_without_run_log(pipeline)


def assert_as_simulate(report: dict, lines: list[bytes]) -> None:
    expected = simulate_lines(lines)
    assert report["calls"] == expected["calls"]
    assert report["organizations"] == expected["organizations"]


def report_without_run_log(pipeline: Pipeline) -> dict:
    return report_document(pipeline.app, pipeline.simulation.log)


CDR = {"usage_id": "p-1", "org": "contoso", "user": "alice@contoso.com", "call_type": "user_out",
       "caller_number": "+14255550100", "destination_number": "+12065550123",
       "start_time": "2026-01-10T09:00:00Z", "end_time": "2026-01-10T09:05:00Z", "duration_seconds": 300}


def cdr(**changes) -> bytes:
    return orjson.dumps({key: value for key, value in {**CDR, **changes}.items() if value is not None})


@pytest.mark.parametrize("value, code", [
    (b"not json", "invalid_input"),
    (cdr(usage_id=None), "invalid_input"),  # a field missing
    (cdr(destination_number="12065550123"), "invalid_input"),  # not E.164
    (cdr(duration_seconds=86401), "invalid_input"),
    (cdr(end_time="2026-01-10T08:00:00Z"), "invalid_input"),  # ends before it starts
    (cdr(start_time="2026-01-10T09:00:00"), "invalid_input"),  # no offset
    (cdr(call_type="telepathy"), "invalid_input"),
    (cdr(org="fabrikam"), "invalid_input"),  # keyed contoso, says fabrikam
    (cdr(user="ghost@contoso.com"), "unknown_user"),
    (cdr(destination_number="+81312345678"), "no_rate"),
    (b"\xff\xfe", "invalid_input"),
    (b"[1, 2]", "invalid_input"),
    (None, "invalid_input"),
    (b'{"usage_id": "u1", "org": "nowhere", "user": "a@b.c", "call_type": "user_out", '
     b'"caller_number": "+14255550100", "destination_number": "+14255550101", '
     b'"start_time": "2026-01-01T00:00:00Z", "end_time": "2026-01-01T00:01:00Z", "duration_seconds": 60}',
     "unknown_organization"),
])
def test_poison_messages_go_to_the_dlq_with_their_code_and_the_partition_goes_on(value, code, store, kafka_broker,
                                                                               unique_topics):
    pipeline = Pipeline(store, kafka_broker, unique_topics)
    good = (SPEC_EXAMPLES / "01-basics.jsonl").read_bytes().splitlines()
    try:
        key = b"nowhere" if code == "unknown_organization" else b"contoso"
        pipeline.feed(good[:8])  # contoso and its users exist
        pipeline.producer.send(unique_topics.cdrs, key=key, value=value).get(timeout=10)
        pipeline.published += 1
        pipeline.wait_until_consumed()
        pipeline.feed(good[8:])  # the partition is not blocked
        report = pipeline.report()
    finally:
        pipeline.close()
    letters = dead_letters(kafka_broker, unique_topics.dead_letters)
    assert dict(letters[0].headers)["error_code"].decode() == code
    assert letters[0].value == (value or b"")
    assert report["counts"]["rated"] > 0
