"""Shards: the organizations whose CDRs share a partition of the CDR topic.

CDRs are keyed by organization, so Kafka's default partitioner (murmur2 of the key) puts all of
an organization's calls in one partition. The consumer instance that owns a partition also owns
those organizations' clock and expiry steps; instances owning other partitions then never write
the same aggregates, and adding instances to the group scales rating instead of causing
conflicts. Ownership is an optimisation only: a write to another shard's organization (after
the topic gained partitions, say) is still exact, because every save is checked for conflicts.
"""

from dataclasses import dataclass
from functools import lru_cache

from kafka.partitioner.default import murmur2


@lru_cache(maxsize=65536)  # keys are organization ids: the relay asks for each event
def partition_for_key(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (Java and kafka-python alike) chooses for `key`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


@dataclass(frozen=True, slots=True)
class Shard:
    topic: str
    partition: int
    partitions: int

    @property
    def name(self) -> str:
        return f"{self.topic}/{self.partition}"

    def owns(self, org: str) -> bool:
        return partition_for_key(org.encode(), self.partitions) == self.partition
