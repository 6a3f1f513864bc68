"""Time rules (SPEC §2, §7): strict ISO 8601 with an offset, UTC inside, calendar months."""

import calendar
import re
from datetime import datetime, timedelta, timezone

from domain.errors import InvalidInput, shown

EARLIEST_YEAR = 2000
LATEST_YEAR = 2199
_TIMESTAMP_TEXT = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})T(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"(?:\.(?P<fraction>[0-9]+))?(?P<offset>Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
)


def parse_timestamp(text: object, *, field: str = "timestamp") -> datetime:
    """Accept only an explicit UTC offset: a local time without one is ambiguous for billing."""
    if not isinstance(text, str):
        raise InvalidInput(f"{field} must be an ISO 8601 timestamp string, got {shown(text)}")
    match = _TIMESTAMP_TEXT.fullmatch(text)
    if not match:
        raise InvalidInput(f"{field} must be ISO 8601 with a UTC offset (e.g. 2026-01-31T10:00:00Z), got {shown(text)}")
    fraction = (match["fraction"] or "")[:6].ljust(6, "0")
    offset = "+00:00" if match["offset"] == "Z" else match["offset"]
    try:
        moment = datetime.fromisoformat(f"{match['date']}T{match['time']}.{fraction}{offset}")
    except ValueError:
        raise InvalidInput(f"{field} is not a real date and time: {shown(text)}") from None
    try:
        moment = moment.astimezone(timezone.utc)
    except OverflowError:  # year 1 or 9999 shifted past datetime's range: out of range anyway
        raise InvalidInput(f"{field} must fall in the years {EARLIEST_YEAR}-{LATEST_YEAR} (UTC), got {shown(text)}") from None
    if not EARLIEST_YEAR <= moment.year <= LATEST_YEAR:
        raise InvalidInput(f"{field} must fall in the years {EARLIEST_YEAR}-{LATEST_YEAR} (UTC), got {shown(text)}")
    return moment


def format_timestamp(moment: datetime) -> str:
    """The output form of SPEC §11: whole seconds, `Z`."""
    return encode_timestamp(moment.replace(microsecond=0))


def encode_timestamp(moment: datetime) -> str:
    """The exact form kept in events: like `format_timestamp`, plus microseconds when present."""
    offset = moment.utcoffset()
    if offset is None:
        return moment.isoformat() + "Z"
    if offset:
        moment = moment.astimezone(timezone.utc)
    # isoformat() is several times faster than strftime(), and this is on every event's path (a
    # rated call encodes three or four): its "+00:00" is cut rather than a naive copy made.
    return moment.isoformat()[:-6] + "Z"


def decode_timestamp(text: str) -> datetime:
    """Read a timestamp this system wrote itself (an event field)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def add_calendar_months(moment: datetime, months: int) -> datetime:
    """Same time of day; a day missing in the target month becomes that month's last day."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def month_key(moment: datetime) -> str:
    """The calendar month (UTC) that pools are kept by: `YYYY-MM` (not strftime: a decision and a
    rated call ask for it several times, and strftime costs several times more)."""
    if moment.utcoffset():
        moment = moment.astimezone(timezone.utc)
    return f"{moment.year:04d}-{moment.month:02d}"


def first_instant_after_month(year: int, month: int) -> datetime:
    """A card valid through `YYYY-MM` is valid until (excluding) this instant."""
    last_day = calendar.monthrange(year, month)[1]
    return datetime(year, month, last_day, tzinfo=timezone.utc) + timedelta(days=1)
