"""The rate card (SPEC §6 step 4, §11): longest prefix, then latest effective date."""

import bisect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from domain.codes import parse_currency
from domain.errors import InvalidInput
from domain.money import format_money, parse_money
from domain.timestamps import encode_timestamp, parse_timestamp

RATE_KINDS = ("outbound", "dialout", "tollfree")
RATE_CARD_COLUMNS = ("prefix", "kind", "rate_per_minute", "connection_fee", "currency", "effective_from")
MAX_PREFIX_DIGITS = 15
_PREFIX_TEXT = re.compile(r"[0-9]{1,15}")


class RateCardError(ValueError):
    """A rate card that does not load; names the row (1-based, the header is row 1)."""

    def __init__(self, row: int, problem: str) -> None:
        super().__init__(f"row {row}: {problem}")
        self.row = row
        self.problem = problem


@dataclass(frozen=True, slots=True)
class RateRow:
    prefix: str
    kind: str
    rate_per_minute: Decimal
    connection_fee: Decimal
    currency: str
    effective_from: datetime

    def as_event_data(self) -> dict[str, str]:
        """What a `CallRated` event keeps of the row, so an auditor can recompute the charge."""
        return {
            "prefix": self.prefix,
            "kind": self.kind,
            "rate_per_minute": format_money(self.rate_per_minute),
            "connection_fee": format_money(self.connection_fee),
            "currency": self.currency,
            "effective_from": encode_timestamp(self.effective_from),
        }


class RateCard:
    """Rows indexed by (currency, kind, prefix), each list sorted by effective date."""

    def __init__(self, rows: Iterable[RateRow]) -> None:
        self._rows: dict[tuple[str, str, str], list[RateRow]] = {}
        for row in rows:
            self._rows.setdefault((row.currency, row.kind, row.prefix), []).append(row)
        for versions in self._rows.values():
            versions.sort(key=lambda row: row.effective_from)
        self._starts = {key: [row.effective_from for row in versions] for key, versions in self._rows.items()}

    def __len__(self) -> int:
        return sum(len(versions) for versions in self._rows.values())

    def find(self, currency: str, kind: str, digits: str, at: datetime) -> RateRow | None:
        """The row with the longest prefix of `digits` effective at `at`, latest version first."""
        for length in range(min(len(digits), MAX_PREFIX_DIGITS), 0, -1):
            key = (currency, kind, digits[:length])
            starts = self._starts.get(key)
            if starts is None:
                continue
            position = bisect.bisect_right(starts, at)
            if position:
                return self._rows[key][position - 1]
        return None


def parse_rate_rows(records: Iterable[Mapping[str, str | None]]) -> RateCard:
    """Build a card from CSV records (header already read); raises `RateCardError`."""
    rows: list[RateRow] = []
    seen: set[tuple[str, str, str, datetime]] = set()
    for row_number, record in enumerate(records, start=2):
        row = _parse_rate_row(row_number, record)
        identity = (row.prefix, row.kind, row.currency, row.effective_from)
        if identity in seen:
            raise RateCardError(row_number, f"duplicate row for prefix {row.prefix}, kind {row.kind}, "
                                            f"currency {row.currency}, effective_from {encode_timestamp(row.effective_from)}")
        seen.add(identity)
        rows.append(row)
    return RateCard(rows)


def check_rate_card_header(columns: Iterable[str] | None) -> None:
    if columns is None or tuple(columns) != RATE_CARD_COLUMNS:
        raise RateCardError(1, f"header must be {','.join(RATE_CARD_COLUMNS)}, got {','.join(columns or [])!r}")


def _parse_rate_row(row_number: int, record: Mapping[str, str | None]) -> RateRow:
    if None in record or any(record.get(column) is None for column in RATE_CARD_COLUMNS):
        raise RateCardError(row_number, f"expected {len(RATE_CARD_COLUMNS)} columns")
    prefix, kind = record["prefix"], record["kind"]
    if not _PREFIX_TEXT.fullmatch(prefix):
        raise RateCardError(row_number, f"prefix must be 1-15 digits, got {prefix!r}")
    if kind not in RATE_KINDS:
        raise RateCardError(row_number, f"kind must be one of {', '.join(RATE_KINDS)}, got {kind!r}")
    try:
        return RateRow(
            prefix=prefix,
            kind=kind,
            rate_per_minute=parse_money(record["rate_per_minute"], field="rate_per_minute", allow_zero=True),
            connection_fee=parse_money(record["connection_fee"], field="connection_fee", allow_zero=True),
            currency=parse_currency(record["currency"]),
            effective_from=parse_timestamp(record["effective_from"], field="effective_from"),
        )
    except InvalidInput as error:
        raise RateCardError(row_number, error.message) from None
