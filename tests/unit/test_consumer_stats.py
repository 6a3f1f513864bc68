"""The consumer's status line says where its time goes: µs per handled CDR by stage."""

from collections import Counter

from consumers.cdr_consumer import ConsumerStats


def test_the_stage_summary_is_microseconds_per_handled_message_without_the_polls_waits():
    stats = ConsumerStats(rated=1500, duplicates=250, dead_letters=250)
    stats.seconds = Counter({"poll": 9.0, "decode": 0.1, "rate": 0.13, "save": 0.0000004})
    assert stats.stage_summary() == "µs per CDR: decode 50, rate 65, save 0"


def test_before_any_message_it_says_so():
    assert ConsumerStats().stage_summary() == "µs per CDR: none handled yet"
