"""API keys of the HTTP API: who may call it, for which organization, in which role.

A key is `cc_<key id>_<secret>`: the id finds the row, the secret (32 random bytes) proves the
holder. Only the secret's SHA-256 is kept, in the database beside the event store (like the
alert outbox), never in the event history that is relayed to Kafka. A key is scoped to one
organization, except an operator's, which reaches every organization. Revoking a key is
immediate for every server that asks here (servers cache a verified key for at most
`CACHE_TTL_S`).
"""

import hashlib
import hmac
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone

from projections.view_database import ViewDatabase

SWITCH, READER, ADMIN, AUDITOR, OPERATOR = "switch", "reader", "admin", "auditor", "operator"
ORGANIZATION_ROLES = (SWITCH, READER, ADMIN, AUDITOR)
KEYS_TABLE = "api_keys"
KEY_PREFIX = "cc"
SECRET_BYTES = 32
CACHE_TTL_S = 5.0
_KEY = re.compile(r"cc_([0-9a-f]{16})_([A-Za-z0-9_-]{43})")


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    org: str | None  # None: an operator's key, for every organization
    role: str
    created_at: str
    revoked_at: str | None

    def may_reach(self, org: str) -> bool:
        return self.role == OPERATOR or self.org == org


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class ApiKeys:
    def __init__(self, database: ViewDatabase) -> None:
        self.database = database
        database.create_tables([
            f"CREATE TABLE IF NOT EXISTS {KEYS_TABLE} (key_id TEXT PRIMARY KEY, org TEXT, role TEXT NOT NULL, "
            "secret_sha256 TEXT NOT NULL, created_at TEXT NOT NULL, revoked_at TEXT)"])
        self._cache: dict[str, tuple[float, ApiKey | None, str]] = {}  # key id → (read at, key, digest)
        self._lock = threading.Lock()
        # One connection, shared by the server's request threads: one query at a time (a second
        # BEGIN on the same connection fails).
        self._database_lock = threading.Lock()

    def create(self, org: str | None, role: str) -> tuple[ApiKey, str]:
        """A new key and its text, which is shown once and kept nowhere."""
        assert (role == OPERATOR) == (org is None) and role in (*ORGANIZATION_ROLES, OPERATOR), (org, role)
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(SECRET_BYTES)
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._database_lock, self.database.transaction() as cursor:
            cursor.execute(f"INSERT INTO {KEYS_TABLE} (key_id, org, role, secret_sha256, created_at) VALUES (?, ?, ?, ?, ?)",
                           (key_id, org, role, _digest(secret), now))
        return ApiKey(key_id, org, role, now, None), f"{KEY_PREFIX}_{key_id}_{secret}"

    def list(self, org: str | None) -> list[ApiKey]:
        """The keys of `org` (None: the operators'), oldest first; no secret, no digest."""
        condition = "org IS NULL" if org is None else "org = ?"
        with self._database_lock:
            rows = self.database.query(f"SELECT key_id, org, role, created_at, revoked_at FROM {KEYS_TABLE} "
                                       f"WHERE {condition} ORDER BY created_at, key_id", () if org is None else (org,))
        return [ApiKey(*row) for row in rows]

    def revoke(self, key_id: str) -> ApiKey | None:
        now = datetime.now(timezone.utc).isoformat(timespec="seconds")
        with self._database_lock:
            with self.database.transaction() as cursor:
                cursor.execute(f"UPDATE {KEYS_TABLE} SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL",
                               (now, key_id))
            rows = self.database.query(f"SELECT key_id, org, role, created_at, revoked_at FROM {KEYS_TABLE} "
                                       "WHERE key_id = ?", (key_id,))
        with self._lock:
            self._cache.pop(key_id, None)
        return ApiKey(*rows[0]) if rows else None

    def verify(self, text: str) -> ApiKey | None:
        """The live key `text` is, or None (malformed, unknown, wrong secret or revoked)."""
        match = _KEY.fullmatch(text)
        if match is None:
            return None
        key_id, secret = match.groups()
        with self._lock:
            cached = self._cache.get(key_id)
        if cached is None or time.monotonic() - cached[0] > CACHE_TTL_S:
            cached = (time.monotonic(), *self._load(key_id))
            with self._lock:
                self._cache[key_id] = cached
        _, key, digest = cached
        if key is None or not hmac.compare_digest(digest, _digest(secret)):
            return None
        return key

    def _load(self, key_id: str) -> tuple[ApiKey | None, str]:
        with self._database_lock:
            rows = self.database.query(f"SELECT key_id, org, role, created_at, revoked_at, secret_sha256 FROM {KEYS_TABLE} "
                                       "WHERE key_id = ?", (key_id,))
        if not rows or rows[0][4] is not None:
            return None, ""
        return ApiKey(*rows[0][:5]), rows[0][5]

    def close(self) -> None:
        self.database.close()
