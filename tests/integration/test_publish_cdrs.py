"""`commcredits publish-cdrs` against the real embedded broker: what was published is read back."""

import io
import re
from pathlib import Path

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition
from kafka.future import Future
from typer.testing import CliRunner

from commcredits.cli import app
from producers.cdr_publisher import Deliveries, publish_outcomes, read_csv, read_jsonl
from tests.conftest import SPEC_EXAMPLES

READ_BACK_TIMEOUT_MS = 1500
BASICS = SPEC_EXAMPLES / "01-basics.jsonl"


def run(*args: str, input: bytes | None = None, env: dict[str, str] | None = None):
    return CliRunner().invoke(app, ["publish-cdrs", *args], input=input, env=env)


def publish(broker, topic: str, *args: str, input: bytes | None = None):
    return run(*args, "--bootstrap-servers", broker.bootstrap_servers, "--topic", topic, "--quiet", input=input)


def read_back(broker, topic: str) -> list[tuple[bytes | None, bytes]]:
    """Every message of every partition of `topic`, from the beginning."""
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap_servers, consumer_timeout_ms=READ_BACK_TIMEOUT_MS,
                             enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        return [(message.key, message.value) for message in consumer]
    finally:
        consumer.close()


def expected_jsonl(path) -> tuple[list[tuple[bytes, bytes]], int]:
    """(key, value) of each CDR line of a scenario file, and how many lines are commands."""
    cdrs, commands = [], 0
    for raw in path.read_bytes().splitlines():
        try:
            document = orjson.loads(raw)
        except orjson.JSONDecodeError:
            continue
        if document.get("type", "cdr") == "cdr":
            cdrs.append((document["org"].encode(), raw))
        else:
            commands += 1
    return cdrs, commands


def test_a_scenario_file_is_published_as_is_cdrs_only_keyed_by_org(kafka_broker, unique_topics):
    cdrs, commands = expected_jsonl(BASICS)
    assert cdrs and commands

    result = publish(kafka_broker, unique_topics.cdrs, str(BASICS))

    assert result.stdout.startswith(f"published {len(cdrs)} CDRs to {unique_topics.cdrs} "
                                    f"(skipped {commands} non-CDR lines, 1 errors) in ")
    assert f"{BASICS}:21: not JSON" in result.stderr  # the example's deliberately malformed line
    assert result.exit_code == 1
    assert sorted(read_back(kafka_broker, unique_topics.cdrs)) == sorted(cdrs)


def test_the_topic_is_created_with_the_partitions_asked_for(kafka_broker, unique_topics):
    result = publish(kafka_broker, unique_topics.cdrs, "--partitions", "3", "-",
                     input=b'{"usage_id":"u1","org":"contoso"}\n')

    assert result.exit_code == 0, result.stderr
    consumer = KafkaConsumer(bootstrap_servers=kafka_broker.bootstrap_servers)
    try:
        assert consumer.partitions_for_topic(unique_topics.cdrs) == {0, 1, 2}
    finally:
        consumer.close()


def test_csv_rows_become_json_cdrs_and_bad_rows_are_reported_by_line(kafka_broker, unique_topics, tmp_path):
    csv_file = tmp_path / "cdrs.csv"
    csv_file.write_text(
        "org,usage_id,call_type,duration_seconds,user,number_type\n"
        "contoso,c1,user_out,241,alice@contoso.com,\n"
        "fabrikam,c2,conf_in,60,,toll_free\n"
        "contoso,c3,user_out,four,alice@contoso.com,\n"
        ",c4,user_out,10,bob@contoso.com,\n"
        "\n"
        "contoso,c5,user_out\n"
        '"contoso","c6","user_out","0","bob@contoso.com",""\n')

    result = publish(kafka_broker, unique_topics.cdrs, str(csv_file))

    assert result.exit_code == 1
    assert result.stdout.startswith(f"published 3 CDRs to {unique_topics.cdrs} (skipped 0 non-CDR lines, 3 errors)")
    assert result.stderr.splitlines() == [
        f"commcredits: {csv_file}:4: duration_seconds is not an integer: 'four'",
        f'commcredits: {csv_file}:5: no "org" (a non-empty string)',
        f"commcredits: {csv_file}:7: 3 cells, the header has 6",
    ]
    published = sorted(((key, orjson.loads(value)) for key, value in read_back(kafka_broker, unique_topics.cdrs)),
                       key=lambda message: message[1]["usage_id"])
    assert published == [
        (b"contoso", {"org": "contoso", "usage_id": "c1", "call_type": "user_out", "duration_seconds": 241,
                      "user": "alice@contoso.com"}),
        (b"fabrikam", {"org": "fabrikam", "usage_id": "c2", "call_type": "conf_in", "duration_seconds": 60,
                       "number_type": "toll_free"}),
        (b"contoso", {"org": "contoso", "usage_id": "c6", "call_type": "user_out", "duration_seconds": 0,
                      "user": "bob@contoso.com"}),
    ]


def test_unreadable_jsonl_lines_are_reported_and_the_others_published(kafka_broker, unique_topics):
    lines = [b'{"usage_id":"u1","org":"contoso"}', b"[1, 2]", b'{"usage_id":"u2"}', b"",
             b'{"usage_id":"u3","org":7}', b'{"type":"clock.advanced","at":"2026-02-01T00:00:00Z"}',
             b'{"type":"cdr","usage_id":"u4","org":"fabrikam"}\r']

    result = publish(kafka_broker, unique_topics.cdrs, "-", input=b"\n".join(lines) + b"\n")

    assert result.exit_code == 1
    assert result.stdout.startswith(f"published 2 CDRs to {unique_topics.cdrs} (skipped 1 non-CDR lines, 3 errors)")
    assert [line.split(":")[:3] for line in result.stderr.splitlines()] == [
        ["commcredits", " <stdin>", str(number)] for number in (2, 3, 5)]
    assert sorted(read_back(kafka_broker, unique_topics.cdrs)) == [
        (b"contoso", lines[0]), (b"fabrikam", b'{"type":"cdr","usage_id":"u4","org":"fabrikam"}')]


def test_without_a_broker_address_nothing_is_tried(tmp_path):
    result = run(str(BASICS), env={"KAFKA_BOOTSTRAP_SERVERS": ""})

    assert result.exit_code == 2
    assert "--bootstrap-servers" in result.stderr and "KAFKA_BOOTSTRAP_SERVERS" in result.stderr


def test_a_missing_file_is_named(kafka_broker, tmp_path):
    missing = tmp_path / "nowhere.jsonl"

    result = run(str(missing), "--bootstrap-servers", kafka_broker.bootstrap_servers)

    assert result.exit_code == 2
    assert str(missing) in result.stderr


@pytest.mark.parametrize("header, problem", [("org,usage_id,colour", "unknown columns colour"),
                                             ("usage_id,call_type", "no org column")])
def test_a_csv_header_that_is_not_cdr_fields_is_refused(kafka_broker, unique_topics, tmp_path, header, problem):
    csv_file = tmp_path / "cdrs.csv"
    csv_file.write_text(header + "\ncontoso,u1,blue\n")

    result = publish(kafka_broker, unique_topics.cdrs, str(csv_file))

    assert result.exit_code == 2
    assert problem in result.stderr
    assert read_back(kafka_broker, unique_topics.cdrs) == []


class FailingProducer:
    """Accepts sends, and fails them all when flushed: a broker that never confirms."""

    def __init__(self) -> None:
        self.pending: list[Future] = []

    def send(self, topic, value, key) -> Future:
        future = Future()
        self.pending.append(future)
        return future

    def flush(self, timeout=None) -> None:
        for future in self.pending:
            future.failure(TimeoutError("expired"))


def test_unconfirmed_sends_are_counted_as_failures():
    outcomes = read_jsonl(io.BytesIO(b'{"org":"a"}\n{"org":"b"}\n'))

    deliveries = Deliveries()

    skipped, errors = publish_outcomes(FailingProducer(), "t", outcomes, deliveries, print, lambda: None)

    assert (deliveries.sent, deliveries.confirmed, deliveries.failed, skipped, errors) == (2, 0, 2, 0, 0)
    assert deliveries.first_failure == "TimeoutError: expired"


def test_the_command_exits_3_when_the_broker_does_not_confirm(kafka_broker, monkeypatch, unique_topics):
    monkeypatch.setattr("producers.cdr_publisher.create_producer", lambda servers: FailingProducer())
    monkeypatch.setattr(FailingProducer, "close", lambda self, timeout=None: None, raising=False)

    result = publish(kafka_broker, unique_topics.cdrs, "-", input=b'{"org":"a"}\n')

    assert result.exit_code == 3
    assert result.stdout.startswith("published 0 CDRs")
    assert "the Kafka broker failed (TimeoutError: expired)" in result.stderr


def test_in_flight_messages_are_bounded():
    deliveries = Deliveries(max_in_flight=2)
    deliveries.sent = 2

    deliveries.confirm(None)

    assert deliveries.in_flight == 1 and deliveries.wait_for_room()


def test_csv_rows_are_numbered_by_their_first_line_and_a_bad_one_does_not_stop_the_file():
    rows = (b'org,usage_id\n"con\ntoso",u1\nfabrikam,\xff\n\ncontoso,' + b"x" * 200_000 + b"\n"
            b"contoso,u2\n")

    outcomes = list(read_csv(io.BytesIO(rows)))

    assert [(type(outcome).__name__, outcome.line) for outcome in outcomes] == [
        ("Cdr", 2), ("LineError", 4), ("LineError", 6), ("Cdr", 7)]
    assert outcomes[0].key == b"con\ntoso"
    assert outcomes[1].reason == "not UTF-8" and outcomes[2].reason.startswith("not CSV: field larger")


def test_the_summary_line_in_the_docs_is_the_one_printed(kafka_broker, unique_topics):
    docs = (Path(__file__).resolve().parents[2] / "docs" / "pipeline-tools.md").read_text()
    documented = next(line for line in docs.splitlines() if line.startswith("published "))
    words = re.split(r"[0-9][0-9.]*", documented.replace("cdr.v1", "TOPIC"))
    shape = re.compile("[0-9.]+".join(map(re.escape, words)).replace("TOPIC", r"\S+"))

    result = publish(kafka_broker, unique_topics.cdrs, str(BASICS))

    assert shape.fullmatch(result.stdout.strip()), (documented, result.stdout)
