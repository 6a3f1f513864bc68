"""Loading the rate card and the licence catalogue from files (the I/O side of `domain.rates`
and `domain.catalog`). Errors name the file, the row and the problem."""

import csv
import io
from importlib import resources
from pathlib import Path

import orjson

from domain.catalog import Catalog, CatalogError, parse_catalog
from domain.rates import RateCard, RateCardError, check_rate_card_header, parse_rate_rows

DEFAULT_RATES_RESOURCE = "default-rates.csv"


class ReferenceDataError(ValueError):
    """A rate card or catalogue file that does not load."""


def load_rate_card(path: Path | None = None) -> RateCard:
    """The rate card at `path`, or the default card shipped with the package."""
    if path is None:
        text = resources.files("application.data").joinpath(DEFAULT_RATES_RESOURCE).read_text("utf-8")
        return _parse_rate_card_text(text, f"<built-in {DEFAULT_RATES_RESOURCE}>")
    return _parse_rate_card_text(_read_text(path, "rates file"), str(path))


def load_catalog(path: Path | None = None) -> Catalog:
    if path is None:
        return Catalog()
    try:
        document = orjson.loads(_read_bytes(path, "catalogue file"))
    except orjson.JSONDecodeError as error:
        raise ReferenceDataError(f"catalogue file {path}: not valid JSON: {error}") from None
    try:
        return parse_catalog(document)
    except CatalogError as error:
        raise ReferenceDataError(f"catalogue file {path}: {error}") from None


def _parse_rate_card_text(text: str, name: str) -> RateCard:
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    try:
        check_rate_card_header(reader.fieldnames)
        return parse_rate_rows(reader)
    except RateCardError as error:
        raise ReferenceDataError(f"rates file {name}: {error}") from None
    except csv.Error as error:
        raise ReferenceDataError(f"rates file {name}: row {reader.line_num}: malformed CSV: {error}") from None


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ReferenceDataError(f"{what} {path}: cannot be read: {error.strerror or error}") from None


def _read_text(path: Path, what: str) -> str:
    try:
        return _read_bytes(path, what).decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ReferenceDataError(f"{what} {path}: not UTF-8: {error}") from None
