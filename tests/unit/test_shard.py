"""Shards follow Kafka's default partitioner, so a consumer instance owns exactly the
organizations whose CDRs reach it."""

import pytest

from application.shard import Shard, partition_for_key


@pytest.mark.parametrize("key, partition", [
    # (murmur2(key) & 0x7fffffff) % 1000 as Kafka's Java client computes it (the reference values
    # kafka-python's own compatibility test checks against the Java client)
    (b"", 681), (b"a", 524), (b"ab", 434), (b"abc", 107), (b"123456789", 566), (b"\x00 ", 742),
])
def test_the_partition_of_a_key_is_the_one_kafkas_java_client_chooses(key, partition):
    assert partition_for_key(key, 1000) == partition


def test_every_organization_is_owned_by_exactly_one_shard_of_a_topic():
    shards = [Shard("cdr.v1", partition, 5) for partition in range(5)]
    for n in range(500):
        org = f"org-{n}"
        assert sum(shard.owns(org) for shard in shards) == 1


def test_a_shard_is_named_by_topic_and_partition():
    assert Shard("cdr.v1", 3, 8).name == "cdr.v1/3"
