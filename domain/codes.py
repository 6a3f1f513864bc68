"""ISO 3166 alpha-2 and ISO 4217 codes (SPEC §2): upper case and real, or `invalid_input`."""

import re

import pycountry

from domain.errors import InvalidInput

_UPPER_ALPHA_2 = re.compile(r"[A-Z]{2}")
_UPPER_ALPHA_3 = re.compile(r"[A-Z]{3}")


def is_country_code(text: object) -> bool:
    return (
        isinstance(text, str)
        and _UPPER_ALPHA_2.fullmatch(text) is not None
        and pycountry.countries.get(alpha_2=text) is not None
    )


def parse_country(text: object, *, field: str = "country") -> str:
    if not is_country_code(text):
        raise InvalidInput(f"{field} must be an upper-case ISO 3166 alpha-2 code, got {text!r}")
    return text  # type: ignore[return-value]


def parse_currency(text: object, *, field: str = "currency") -> str:
    if (
        not isinstance(text, str)
        or not _UPPER_ALPHA_3.fullmatch(text)
        or pycountry.currencies.get(alpha_3=text) is None
    ):
        raise InvalidInput(f"{field} must be an upper-case ISO 4217 code, got {text!r}")
    return text


def parse_identifier(text: object, *, field: str) -> str:
    """Identifiers are non-empty strings; numbers, nulls or nested values are refused."""
    if not isinstance(text, str) or not text:
        raise InvalidInput(f"{field} must be a non-empty string, got {text!r}")
    return text
