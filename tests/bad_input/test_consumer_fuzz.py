"""Items 1 and 2 through the real consumer, broker and store: hostile messages mixed with good
ones are each rated, acknowledged as a duplicate or dead-lettered exactly once, and the store
ends as `simulate` of the same messages says.

- A seeded fuzz run: 10,000 hostile messages among 2,000 good ones, on SQLite and PostgreSQL.
- A hypothesis property: random JSON values in the fields of otherwise good CDRs, batch after
  batch on one consumer, compared with `simulate` after each batch.
"""

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.bad_input.hostile_cdrs import SETUP_LINES, as_simulate_line, fuzz_messages, good_cdr, hostile_value, message
from tests.integration.test_cdr_consumer import Pipeline, dead_letters
from tests.support import simulate_lines

FUZZ_SEED = 20261204
GOOD_MESSAGES, HOSTILE_MESSAGES = 2_000, 10_000


def publish(pipeline: Pipeline, messages) -> None:
    for key, value in messages:
        pipeline.producer.send(pipeline.topics.cdrs, key=key, value=value)
    pipeline.published += len(messages)
    pipeline.wait_until_consumed()


def assert_as_simulate(report: dict, messages) -> dict:
    expected = simulate_lines(SETUP_LINES + [as_simulate_line(value) for _, value in messages])
    assert report["calls"] == expected["calls"]
    assert report["organizations"] == expected["organizations"]
    assert report["counts"]["duplicates"] == expected["counts"]["duplicates"]
    return expected


@pytest.mark.slow
def test_ten_thousand_hostile_messages_are_each_rated_or_parked_exactly_once(store, kafka_broker, unique_topics):
    messages = fuzz_messages(FUZZ_SEED, GOOD_MESSAGES, HOSTILE_MESSAGES)
    with Pipeline(store, kafka_broker, unique_topics) as pipeline:
        pipeline.feed(SETUP_LINES)
        publish(pipeline, messages)
        stats = pipeline.consumer.stats
        report = pipeline.report()
    assert stats.rated + stats.duplicates + stats.dead_letters == len(messages)
    assert stats.redone_batches == 0
    expected = assert_as_simulate(report, messages)
    parked = [int(dict(letter.headers)["source_offset"]) for letter in dead_letters(kafka_broker,
                                                                                     unique_topics.dead_letters)]
    rejected = [entry["line"] - len(SETUP_LINES) - 1 for entry in expected["rejected"] if entry["line"] > len(SETUP_LINES)]
    assert sorted(parked) == rejected  # each rejected message parked once, nothing else parked
    assert len(rejected) > HOSTILE_MESSAGES // 2 and stats.rated > GOOD_MESSAGES // 2  # the mix is as intended


class ConsumerUnderTest:
    """One consumer for every example (joining a group costs seconds), with the history so far."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline, self.messages = pipeline, []


@pytest.fixture(scope="module")
def consumer_under_test(tmp_path_factory, kafka_broker):
    from application.settings import sqlite_store
    from messaging.topics import Topics

    suffix = tmp_path_factory.mktemp("fuzz").name.replace("/", "")
    topics = Topics(cdrs=f"cdr.fuzz.{suffix}", events=f"events.fuzz.{suffix}", dead_letters=f"dlq.fuzz.{suffix}",
                    consumer_group=f"fuzz.{suffix}")
    store = sqlite_store(tmp_path_factory.mktemp("store") / "events.sqlite")
    with Pipeline(store, kafka_broker, topics) as pipeline:
        pipeline.feed(SETUP_LINES)
        yield ConsumerUnderTest(pipeline)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 2**32)), min_size=1, max_size=12))
def test_random_values_in_any_field_through_the_consumer_each_end_once(consumer_under_test, draws):
    """Each example is a batch of good and hostile messages (seeded per message, so hypothesis can
    shrink a failure to the messages that matter)."""
    under_test = consumer_under_test
    pipeline, stats = under_test.pipeline, under_test.pipeline.consumer.stats
    handled_before = stats.handled
    batch = [message(hostile_value(random.Random(seed), seed % 1000) if is_hostile
                     else good_cdr(random.Random(seed), seed % 100_000)) for is_hostile, seed in draws]
    publish(pipeline, batch)
    under_test.messages += batch
    assert stats.handled - handled_before == len(batch)
    assert_as_simulate(pipeline.report(), under_test.messages)
