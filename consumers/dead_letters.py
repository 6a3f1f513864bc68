"""Dead letters that always fit: the record sent to the DLQ topic for a rejected CDR message.

A dead letter repeats the message it parks, and its headers say why. Both are bounded so that a
letter always fits a Kafka message (1 MB by default) whatever was sent to the CDR topic: a
letter that did not fit would fail to send, the batch would be redone, fail again, and the
partition would never move (the reported stall: 387 redos in 7 minutes).

- `error_message` is cut to `MAX_ERROR_MESSAGE_BYTES` (the code stays whole).
- A message whose key or value is larger than the letter may carry (`MAX_INLINE_VALUE_BYTES`,
  `MAX_INLINE_KEY_BYTES`) is kept whole in the store's database first (`OversizedPayloads`,
  keyed by its SHA-256, so a redone batch stores it once), and the letter carries its first
  `PREVIEW_BYTES`, with headers naming the original's size, digest and where to get it
  (`commcredits dead-letters payload SHA256`).
"""

import hashlib
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone

import psycopg

from projections.view_database import ViewDatabase

MAX_ERROR_MESSAGE_BYTES = 1024
MAX_INLINE_VALUE_BYTES = 256 * 1024  # well under Kafka's 1 MB default with the headers and key
MAX_INLINE_KEY_BYTES = 1024
PREVIEW_BYTES = 4096
TRUNCATION_MARK = " [truncated]"

PAYLOADS_TABLE = "dead_letter_payloads"


@dataclass(frozen=True, slots=True)
class LetterRecord:
    """What is sent to the DLQ topic."""
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]]

    @property
    def size(self) -> int:
        return len(self.key or b"") + len(self.value) + sum(len(name) + len(value) for name, value in self.headers)


@dataclass(frozen=True, slots=True)
class ParkedPayload:
    sha256: str
    source_topic: str
    source_partition: int
    source_offset: int
    key: bytes | None
    value: bytes
    parked_at: str


def is_oversized(key: bytes | None, value: bytes) -> bool:
    return len(value) > MAX_INLINE_VALUE_BYTES or len(key or b"") > MAX_INLINE_KEY_BYTES


def payload_digest(key: bytes | None, value: bytes) -> str:
    """The original's identity: the key's length, the key and the value (so that no split of the
    same bytes between key and value gives the same digest)."""
    key = key or b""
    return hashlib.sha256(len(key).to_bytes(8, "big") + key + value).hexdigest()


def bounded_text(text: str, limit_bytes: int) -> bytes:
    """`text` in UTF-8, cut at a character boundary so that it fits `limit_bytes` with the mark."""
    encoded = text.encode("utf-8", "backslashreplace")
    if len(encoded) <= limit_bytes:
        return encoded
    cut = encoded[: limit_bytes - len(TRUNCATION_MARK)].decode("utf-8", "ignore")
    return cut.encode() + TRUNCATION_MARK.encode()


def letter_record(code: str, reason: str, topic: str, partition: int, offset: int,
                  key: bytes | None, value: bytes | None) -> LetterRecord:
    value = value or b""
    headers = [("error_code", code.encode()), ("error_message", bounded_text(reason, MAX_ERROR_MESSAGE_BYTES)),
               ("source_topic", bounded_text(topic, MAX_INLINE_KEY_BYTES)),
               ("source_partition", str(partition).encode()), ("source_offset", str(offset).encode())]
    if not is_oversized(key, value):
        return LetterRecord(key, value, headers)
    headers += [("payload_truncated", b"true"), ("original_value_bytes", str(len(value)).encode()),
                ("original_key_bytes", str(len(key or b"")).encode()),
                ("original_sha256", payload_digest(key, value).encode())]
    short_key = None if key is None else key[:MAX_INLINE_KEY_BYTES]
    return LetterRecord(short_key, value[:PREVIEW_BYTES], headers)


class OversizedPayloads:
    """Originals too large for their dead letter, in the database beside the event store (the
    SQLite file `events.views.sqlite`, or the store's PostgreSQL schema). Kept until an operator
    deletes them: the CDR topic's retention must not be the only copy of a rejected CDR."""

    def __init__(self, database: ViewDatabase) -> None:
        self.database = database
        blob = "BYTEA" if database.postgres else "BLOB"
        database.create_tables([
            f"CREATE TABLE IF NOT EXISTS {PAYLOADS_TABLE} (sha256 TEXT PRIMARY KEY, source_topic TEXT NOT NULL, "
            f"source_partition INTEGER NOT NULL, source_offset BIGINT NOT NULL, key {blob}, value {blob} NOT NULL, "
            "parked_at TEXT NOT NULL)"])

    def keep(self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes) -> str:
        """Store the original (once: a redone batch finds it there) and return its digest."""
        digest = payload_digest(key, value)
        with self.database.transaction() as cursor:
            cursor.execute(f"INSERT INTO {PAYLOADS_TABLE} (sha256, source_topic, source_partition, source_offset, "
                           "key, value, parked_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sha256) DO NOTHING",
                           (digest, topic, partition, offset, key, value,
                            datetime.now(timezone.utc).isoformat(timespec="seconds")))
        return digest

    def get(self, digest: str) -> ParkedPayload | None:
        rows = self.database.query(f"SELECT sha256, source_topic, source_partition, source_offset, key, value, "
                                   f"parked_at FROM {PAYLOADS_TABLE} WHERE sha256 = ?", (digest,))
        if not rows:
            return None
        sha256, topic, partition, offset, key, value, parked_at = rows[0]
        return ParkedPayload(sha256, topic, partition, offset, _bytes(key), _bytes(value), parked_at)

    def list(self, limit: int) -> list[ParkedPayload]:
        rows = self.database.query(f"SELECT sha256, source_topic, source_partition, source_offset, NULL, '', "
                                   f"parked_at FROM {PAYLOADS_TABLE} ORDER BY parked_at, sha256 LIMIT {int(limit)}")
        return [ParkedPayload(sha, topic, partition, offset, None, b"", at)
                for sha, topic, partition, offset, _, _, at in rows]

    def close(self) -> None:
        self.database.close()


def _bytes(value) -> bytes | None:
    return None if value is None else bytes(value)


STORE_ERRORS = (sqlite3.Error, psycopg.Error)
