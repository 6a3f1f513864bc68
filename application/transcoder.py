"""An orjson transcoder for the event store.

Event payloads are plain JSON (amounts and times are strings already); only the library's own
`timestamp` and snapshot state carry richer types. Those documents are written whole inside a
`{"$t": ...}` envelope, their rich values as tagged objects (`{"$dec": "1.5"}`), and every key of
the data that starts with `$` escaped with one more `$` — so a user named `$dec` is never read
back as a tag, and every round trip is the identity.
"""

import dataclasses
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.persistence import Transcoder

from domain.auto_recharge import AutoRechargeSettings
from domain.lots import Lot
from domain.reservations import Reservation

_DATACLASSES: dict[str, type] = {cls.__name__: cls for cls in (Lot, AutoRechargeSettings, Reservation)}
_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS


def _tag(obj: Any) -> Any:
    """orjson's `default`: called only for types it does not write itself."""
    if isinstance(obj, Decimal):
        return {"$dec": str(obj)}
    if isinstance(obj, datetime):
        return {"$dt": obj.isoformat()}
    if isinstance(obj, (set, frozenset)):
        return {"$set": sorted(obj)}
    if dataclasses.is_dataclass(obj) and type(obj).__name__ in _DATACLASSES:
        return {"$dc": type(obj).__name__, "f": {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}}
    raise TypeError(f"cannot store a {type(obj).__name__} in an event: {obj!r}")


def _untag(obj: Any) -> Any:
    if isinstance(obj, dict):
        if len(obj) <= 2 and obj:
            key = next(iter(obj))
            if key == "$dec":
                return Decimal(obj[key])
            if key == "$dt":
                return datetime.fromisoformat(obj[key])
            if key == "$set":
                return {_untag(item) for item in obj[key]}
            if key == "$uuid":
                return UUID(obj[key])
            if key == "$dc":
                return _DATACLASSES[obj["$dc"]](**{name: _untag(value) for name, value in obj["f"].items()})
        return {_unescape(key): _untag(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_untag(value) for value in obj]
    return obj


def _prepare(obj: Any) -> Any:
    """Escape the data's own `$` keys and tag UUIDs (orjson would write them as plain strings)."""
    if isinstance(obj, UUID):
        return {"$uuid": str(obj)}
    if isinstance(obj, dict):
        return {_escape(key): _prepare(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_prepare(value) for value in obj]
    return obj


def _escape(key: Any) -> Any:
    return "$" + key if isinstance(key, str) and key.startswith("$") else key


def _unescape(key: Any) -> Any:
    return key[1:] if isinstance(key, str) and key.startswith("$$") else key


_ENVELOPE = b'{"$t":'


class OrjsonTranscoder(Transcoder):
    """Events take a fast path: their only rich value is the library's top-level `timestamp`,
    written by orjson natively and restored by name. Anything else (snapshots) is tagged."""

    def encode(self, obj: Any) -> bytes:
        if _is_plain_event(obj):
            return orjson.dumps(obj, default=_tag, option=_EVENT_OPTIONS)
        return orjson.dumps({"$t": _prepare(obj)}, default=_tag, option=_OPTIONS)

    def decode(self, data: bytes) -> Any:
        obj = orjson.loads(data)
        if data.startswith(_ENVELOPE):
            return _untag(obj["$t"])
        timestamp = obj.get("timestamp") if isinstance(obj, dict) else None
        if isinstance(timestamp, str):
            obj["timestamp"] = datetime.fromisoformat(timestamp)
        return obj


_EVENT_OPTIONS = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_NON_STR_KEYS
_UTC_SUFFIX = "+00:00"


def decode_with_text_timestamp(data: bytes) -> dict[str, Any] | None:
    """A plain event's state with its `timestamp` left as text, in the form an ISO 8601 writer
    with `Z` for UTC gives (`2026-01-16T08:00:00.5Z`): what the relay and the projections put in
    an event document, without making a datetime to write it out again. None for anything else
    (an enveloped document, a timestamp not in UTC): decode it with `decode`."""
    if data.startswith(_ENVELOPE):
        return None
    obj = orjson.loads(data)
    timestamp = obj.get("timestamp") if isinstance(obj, dict) else None
    if not isinstance(timestamp, str) or not timestamp.endswith(_UTC_SUFFIX):
        return None
    obj["timestamp"] = timestamp[:-len(_UTC_SUFFIX)] + "Z"
    return obj


def _is_plain_event(obj: Any) -> bool:
    """True when the only datetime is the top-level `timestamp` and no value needs a tag."""
    if not isinstance(obj, dict) or not isinstance(obj.get("timestamp"), datetime):
        return False
    for key, value in obj.items():  # a loop, not all(...): this runs for every event stored
        if type(value) in _EXACT_PLAIN_TYPES or key == "timestamp":
            continue
        if not (isinstance(value, _PLAIN_SCALARS) or (isinstance(value, (list, dict)) and _is_plain(value))):
            return False
    return True


_PLAIN_SCALARS = (str, int, float, bool, type(None))
_EXACT_PLAIN_TYPES = frozenset(_PLAIN_SCALARS)  # the common case, decided by one set look-up


def _is_plain(value: Any) -> bool:
    if isinstance(value, dict):
        return all(isinstance(key, str) and not key.startswith("$") for key in value) and all(
            _is_plain(item) for item in value.values())
    if isinstance(value, list):
        return all(_is_plain(item) for item in value)
    return isinstance(value, _PLAIN_SCALARS) and not isinstance(value, float)
