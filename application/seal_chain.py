"""The seal chain: the stored events, batch by batch in store order, hashed into a chain kept
beside them.

Each transaction that stores events (`application.sealed_recorders`) also stores one seal row for
them, its batch:

    entries(batch) = for each event, in position order: its position (8 bytes, big-endian) and
                     its digest, SHA-256 of its record bytes
    seal(batch)    = SHA-256(seal(the batch before) || entries(batch)),  seal(before the first) = GENESIS_SEAL

An event's record bytes are everything the store holds of it: its position (notification id, 8
bytes) and the lengths of its four fields (4 bytes each, all big-endian), then the fields: the
originator id (its UUID's 32 hex digits), the originator version (decimal digits), the topic (UTF-8)
and the state. The lengths come first, so no two different records have the same bytes.

So an event changed after it was stored no longer matches its digest (named: position,
aggregate, version); a changed digest no longer matches its batch's seal; a changed seal breaks
the next link. Someone who rewrites an event and recomputes every seal after it is caught by a
checkpoint: the chain's head (a batch's last position and its seal) copied out of the store
earlier, as the token `ck1-<position>-<seal in hex>`. The chain recomputed from the events
themselves must reach that seal at that position.
"""

import hashlib
import re
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import attrgetter, itemgetter
from typing import Any
from uuid import UUID

GENESIS_SEAL = bytes(32)
TOKEN_PREFIX = "ck1"
DIGEST_BYTES = 32
_HEADER = struct.Struct(">qIIII")
_POSITION = struct.Struct(">q")
ENTRY_BYTES = _POSITION.size + DIGEST_BYTES


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """An event as the store holds it; a field may be anything a tampered row holds."""
    position: int
    originator_id: UUID | str
    originator_version: int
    topic: str | None
    state: bytes | None  # (SQLite returns whatever type a tampered row holds)


def record_digest(record: StoredRecord) -> bytes:
    return event_digest(record.position, record.originator_id, record.originator_version, record.topic, record.state)


def event_digest(position: int, originator_id: object, originator_version: object, topic: object,
                 state: object) -> bytes:
    """SHA-256 of the record bytes (on the write path, ~2 µs for a 600-byte event here). A UUID is
    hashed as SQLite keeps it, 32 hex digits, and text exactly as stored: another spelling of the
    same UUID is another record (the library looks events up by the exact text)."""
    originator = originator_id.hex.encode() if type(originator_id) is UUID else field_bytes(originator_id)
    version = str(originator_version).encode() if type(originator_version) is int else field_bytes(originator_version)
    topic_bytes, state_bytes = field_bytes(topic), state if type(state) is bytes else field_bytes(state)
    header = _HEADER.pack(position, len(originator), len(version), len(topic_bytes), len(state_bytes))
    return hashlib.sha256(b"".join((header, originator, version, topic_bytes, state_bytes))).digest()


def batch_entries(records: Iterable[StoredRecord]) -> bytes:
    """The entries of a batch: its records' positions and digests, in position order."""
    return b"".join(_POSITION.pack(record.position) + record_digest(record)
                    for record in sorted(records, key=attrgetter("position")))


def stored_entries(positions: Sequence[int], stored_events: Sequence[Any]) -> bytes:
    """`batch_entries` of events being stored (eventsourcing `StoredEvent`s) at `positions`,
    without building a record of each: the write path's share of the cost."""
    pairs = sorted(zip(positions, stored_events, strict=True), key=itemgetter(0))
    return b"".join(_POSITION.pack(position) + event_digest(position, event.originator_id, event.originator_version,
                                                           event.topic, event.state) for position, event in pairs)


def batch_seal(previous: bytes, entries: bytes) -> bytes:
    return hashlib.sha256(previous + entries).digest()


def read_entries(entries: bytes) -> list[tuple[int, bytes]]:
    """(position, digest) of each entry; ValueError when the bytes are not whole entries."""
    if len(entries) % ENTRY_BYTES:
        raise ValueError(f"{len(entries)} bytes are not whole entries of {ENTRY_BYTES}")
    return [(_POSITION.unpack_from(entries, offset)[0], entries[offset + _POSITION.size:offset + ENTRY_BYTES])
            for offset in range(0, len(entries), ENTRY_BYTES)]


def field_bytes(value: object) -> bytes:
    """A field's bytes: as stored, or its text in UTF-8 (SQLite may hold any type in any column)."""
    if value is None:
        return b""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return str(value).encode("utf-8", "surrogatepass")


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at `position`: what to keep outside the store."""
    position: int
    seal: bytes

    @property
    def token(self) -> str:
        return f"{TOKEN_PREFIX}-{self.position}-{self.seal.hex()}"

    @classmethod
    def parse(cls, token: str) -> "Checkpoint":
        match = _TOKEN.fullmatch(token.strip())
        if match is None:
            raise ValueError(f"not a checkpoint token ({TOKEN_PREFIX}-<position>-<64 hex digits>): {token!r}")
        return cls(int(match[1]), bytes.fromhex(match[2]))


_TOKEN = re.compile(rf"{TOKEN_PREFIX}-([0-9]{{1,19}})-([0-9a-f]{{64}})", re.ASCII | re.IGNORECASE)
