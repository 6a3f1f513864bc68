"""Good and hostile CDR messages for the consumer's fuzz and property tests.

A message is (key, value): what a call switch, or an attacker with write access to `cdr.v1`,
could publish. Hostile ones are good CDRs with one to three fields replaced by any JSON value or
removed, or bytes that are not a CDR at all (not UTF-8, not JSON, not an object, a tombstone),
or CDRs for an unknown organization or user, without a rate, or repeating a usage id.

`as_simulate_line` gives the line `simulate` sees for the same message: the oracle. The only
check `simulate` cannot make is the consumer's key check (a message must be keyed by its
organization), so messages here are keyed by their own `org` whenever it is a string: a key
mismatch is tested on its own.
"""

import random
from datetime import datetime, timedelta, timezone
from typing import Any

import orjson

from tests.support import SPEC_EXAMPLES

SETUP_LINES = (SPEC_EXAMPLES / "01-basics.jsonl").read_bytes().splitlines()[:8]  # contoso, alice, bob, order
USERS = ("alice@contoso.com", "bob@contoso.com")
DESTINATIONS = ("+12065550123", "+442071234567", "+33142685300", "+4930123456", "+919812345678", "+447700900123",
                "+81312345678")  # the last has no rate
CALL_TYPES = ("user_out", "user_out", "user_out_transfer", "fmc_out", "conf_out", "ucap_out", "user_in", "emergency_out")
FIELDS = ("usage_id", "org", "user", "call_type", "number_type", "caller_number", "destination_number", "start_time",
          "end_time", "duration_seconds", "call_id", "conference_id")
HOSTILE_STRINGS = (
    "", " ", "\u00a0", "\n", "a\x00b", "\x1b[31mred", "é" * 129, "'; DROP TABLE events; --", "user_out\x00", "²",
    "NaN", "-1", "1e400", "9" * 5000, "2026-01-05T10:00:00", "2199-12-31T23:01:00Z", "+1", "+" + "1" * 20,
    "toll_free", "user_out", "ghost@contoso.com", "fabrikam", "\ud7ff", "\U0001f4de", "0x10", "true",
)
START = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def good_cdr(rng: random.Random, index: int) -> dict[str, Any]:
    start = START + timedelta(minutes=7 * index)
    duration = rng.choice((0, 1, 59, 60, 61, 300, 1800))
    call_type = rng.choice(CALL_TYPES)
    cdr = {"usage_id": f"g-{index}", "org": "contoso", "user": rng.choice(USERS), "call_type": call_type,
           "caller_number": "+14255550100",
           "destination_number": "112" if call_type == "emergency_out" else rng.choice(DESTINATIONS),
           "start_time": _stamp(start), "end_time": _stamp(start + timedelta(seconds=duration)),
           "duration_seconds": duration}
    if rng.random() < 0.2:
        cdr["call_id"] = f"call-{index}"
    return cdr


def any_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(9 if depth < 2 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice((True, False))
    if kind == 2:
        return rng.choice((0, -1, 1, 86400, 86401, 2**31, -(2**63), 2**64 - 1, 241))
    if kind == 3:
        return rng.choice((0.0, 1.5, -2.25, 1e300, 60.0))
    if kind in (4, 5):
        return rng.choice(HOSTILE_STRINGS)
    if kind == 6:
        return [any_json(rng, depth + 1) for _ in range(rng.randrange(3))]
    if kind == 7:
        return {rng.choice(("a", "type", "", "\x00")): any_json(rng, depth + 1) for _ in range(rng.randrange(3))}
    return rng.choice(("x" * 50_000, ["x"] * 2000))  # large, within a Kafka message


def mutated(rng: random.Random, cdr: dict[str, Any]) -> dict[str, Any]:
    changed = dict(cdr)
    for _ in range(rng.randint(1, 3)):
        field = rng.choice(FIELDS + ("extra",))
        if rng.random() < 0.25:
            changed.pop(field, None)
        else:
            changed[field] = any_json(rng)
    return changed


def raw_garbage(rng: random.Random) -> bytes | None:
    return rng.choice((
        None, b"", b"not json", b"\xff\xfe\x00", b"[1, 2]", b"null", b'"cdr"', b"{", b'{"usage_id": "x"',
        b"[" * 2000 + b"]" * 2000, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 64))),
        b'{"a": NaN}', b'{"org": "contoso", "usage_id": 1e400}',
    ))


def hostile_value(rng: random.Random, index: int) -> dict[str, Any] | bytes | None:
    roll = rng.random()
    if roll < 0.6:
        return mutated(rng, good_cdr(rng, 100_000 + index))
    if roll < 0.75:
        return raw_garbage(rng)
    if roll < 0.85:  # a business rejection: unknown organization or user, no rate
        cdr = good_cdr(rng, 100_000 + index)
        cdr.update(rng.choice(({"org": "nowhere"}, {"user": "ghost@contoso.com"},
                               {"destination_number": "+81312345678", "call_type": "user_out"})))
        return cdr
    return {**good_cdr(rng, rng.randrange(max(index, 1))), "usage_id": f"g-{rng.randrange(max(index, 1))}"}  # repeats


def message(value: dict[str, Any] | bytes | None) -> tuple[bytes | None, bytes | None]:
    """(key, value) as a switch would publish it: keyed by the CDR's org when that is a string."""
    if not isinstance(value, dict):
        return b"contoso", value
    org = value.get("org")
    key = org.encode() if isinstance(org, str) and org else None
    return key, orjson.dumps(value)


def as_simulate_line(value: bytes | None) -> bytes:
    """The `simulate` line of a message value: the same document with `"type": "cdr"` (a consumer
    ignores unknown fields); anything that is not a JSON object stays as it is (rejected either way)."""
    if value is None:
        return b"null"
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        flat = value.replace(b"\n", b" ").replace(b"\r", b" ")
        return flat if flat.strip() else b"not a line"  # simulate skips a blank line; the consumer rejects it
    if not isinstance(document, dict):
        return value
    return orjson.dumps({**document, "type": "cdr"})


def fuzz_messages(seed: int, good: int, hostile: int) -> list[tuple[bytes | None, bytes | None]]:
    rng = random.Random(seed)
    values: list[dict[str, Any] | bytes | None] = [good_cdr(rng, index) for index in range(good)]
    values += [hostile_value(rng, index) for index in range(hostile)]
    rng.shuffle(values)
    return [message(value) for value in values]
