"""Item 2: a dead letter always fits, and one the broker refuses for good stops the consumer.

Before: a rejected ~600 KB CDR had its whole value repeated in the `error_message` header; the
letter exceeded Kafka's 1 MB limit, its send failed, the batch was redone forever and nothing on
that partition was rated again.
"""

import threading

import orjson
import pytest
from kafka import KafkaProducer

from consumers.cdr_consumer import DeadLetterRefused
from consumers.dead_letters import (
    MAX_ERROR_MESSAGE_BYTES,
    MAX_INLINE_VALUE_BYTES,
    PREVIEW_BYTES,
    bounded_text,
    letter_record,
    payload_digest,
)
from tests.integration.test_cdr_consumer import CDR, Pipeline, dead_letters, setup_then_calls

KAFKA_MESSAGE_LIMIT = 1_000_000  # Kafka's default message.max.bytes (and roughly the producer's limit)


def big_cdr(size: int) -> bytes:
    """A CDR of about `size` bytes whose bad destination repeats itself in any naive error message."""
    return orjson.dumps({**CDR, "usage_id": "big-1", "destination_number": "9" * size})


def test_an_error_message_is_cut_to_its_bound_at_a_character_boundary():
    text = "é" * MAX_ERROR_MESSAGE_BYTES
    bounded = bounded_text(text, MAX_ERROR_MESSAGE_BYTES)
    assert len(bounded) <= MAX_ERROR_MESSAGE_BYTES
    assert bounded.decode("utf-8").endswith("[truncated]")


@pytest.mark.parametrize("size", [600_000, 999_000])
def test_a_letter_for_a_huge_message_fits_a_kafka_message(size):
    value = big_cdr(size)
    record = letter_record("invalid_input", "destination_number bad: " + value.decode(), "cdr.v1", 0, 7, b"contoso", value)
    assert record.size < KAFKA_MESSAGE_LIMIT // 2
    headers = dict(record.headers)
    assert headers["payload_truncated"] == b"true"
    assert headers["original_value_bytes"] == str(len(value)).encode()
    assert headers["original_sha256"] == payload_digest(b"contoso", value).encode()
    assert record.value == value[:PREVIEW_BYTES] and record.key == b"contoso"


def test_a_letter_for_a_small_message_carries_it_whole():
    value = orjson.dumps(CDR)
    record = letter_record("no_rate", "no rate", "cdr.v1", 0, 7, b"contoso", value)
    assert record.value == value and "payload_truncated" not in dict(record.headers)


def test_a_600_kb_cdr_is_parked_the_partition_goes_on_and_the_original_can_be_fetched(store, kafka_broker,
                                                                                        unique_topics, tmp_path):
    setup, calls = setup_then_calls()
    huge = big_cdr(MAX_INLINE_VALUE_BYTES + 350_000)
    with Pipeline(store, kafka_broker, unique_topics) as pipeline:
        pipeline.simulation.run(setup)
        pipeline.producer.send(unique_topics.cdrs, key=b"contoso", value=huge).get(timeout=30)
        pipeline.published += 1
        pipeline.feed(calls)
        stats = pipeline.consumer.stats
        assert stats.dead_letters == 1 and stats.redone_batches == 0
        assert stats.rated + stats.duplicates == len(calls)
        kept = pipeline.consumer.oversized_payloads(pipeline.app.env).get(payload_digest(b"contoso", huge))
    (letter,) = dead_letters(kafka_broker, unique_topics.dead_letters)
    headers = dict(letter.headers)
    assert headers["error_code"] == b"invalid_input"
    assert len(headers["error_message"]) <= MAX_ERROR_MESSAGE_BYTES
    assert headers["original_sha256"].decode() == payload_digest(b"contoso", huge)
    assert kept is not None and kept.value == huge and kept.key == b"contoso" and kept.source_offset == 0


def test_a_dead_letter_the_broker_refuses_for_good_stops_the_consumer(store, kafka_broker, unique_topics):
    """The producer's size limit stands in for a DLQ topic whose `max.message.bytes` is small."""
    setup, calls = setup_then_calls()
    with Pipeline(store, kafka_broker, unique_topics) as pipeline:
        pipeline.simulation.run(setup)
        pipeline.consumer.producer.config["max_request_size"] = 2000
        producer = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap_servers, acks="all")
        producer.send(unique_topics.cdrs, key=b"contoso", value=big_cdr(5000)).get(timeout=10)
        producer.close()
        failure: list[BaseException] = []
        stop = threading.Event()

        def run() -> None:
            try:
                pipeline.consumer.run(stop)
            except BaseException as error:  # noqa: BLE001 (the test reads it)
                failure.append(error)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(60)
        stop.set()
        assert not worker.is_alive(), "the consumer kept redoing the batch"
        assert failure and isinstance(failure[0], DeadLetterRefused)
        assert "MessageSizeTooLarge" in str(failure[0])
        assert pipeline.consumer.stats.redone_batches == 0
        assert pipeline.simulation.service.app.recorder.max_tracking_id(
            f"kafka:{unique_topics.cdrs}@{pipeline.consumer.topic_incarnation(unique_topics.cdrs)}/0") is None


def test_an_operator_lists_and_fetches_a_kept_original_with_the_cli(cli, database_url, tmp_path):
    from application.settings import store_from_url
    from consumers.dead_letters import OversizedPayloads
    from projections.view_database import ViewDatabase

    cli("org", "create", "contoso", "--name", "Contoso", "--country", "US", "--currency", "USD")  # the store exists
    original = big_cdr(MAX_INLINE_VALUE_BYTES + 1)
    payloads = OversizedPayloads(ViewDatabase.for_store(store_from_url(database_url)))
    digest = payloads.keep("cdr.v1", 3, 42, b"contoso", original)
    assert payloads.keep("cdr.v1", 3, 42, b"contoso", original) == digest  # a redone batch keeps it once
    payloads.close()
    listed = cli("dead-letters", "list").stdout
    assert listed.startswith(f"{digest}  cdr.v1[3]@42  ") and listed.count("\n") == 1
    written = tmp_path / "original.json"
    fetched = cli("dead-letters", "payload", digest.upper(), "--output", str(written))
    assert written.read_bytes() == original and "from cdr.v1[3]@42" in fetched.stderr
    missing = cli("dead-letters", "payload", "0" * 64, expect=1)
    assert "no original kept" in missing.stderr
