"""ISO 3166 alpha-2 and ISO 4217 codes (SPEC §2): upper case and real, or `invalid_input`."""

import re

import pycountry

from domain.errors import InvalidInput, shown

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
        raise InvalidInput(f"{field} must be an upper-case ISO 3166 alpha-2 code, got {shown(text)}")
    return text  # type: ignore[return-value]


def parse_currency(text: object, *, field: str = "currency") -> str:
    if (
        not isinstance(text, str)
        or not _UPPER_ALPHA_3.fullmatch(text)
        or pycountry.currencies.get(alpha_3=text) is None
    ):
        raise InvalidInput(f"{field} must be an upper-case ISO 4217 code, got {shown(text)}")
    return text


MAX_IDENTIFIER_CHARS = 128
# C0 and C1 control characters (SPEC §2): a NUL breaks PostgreSQL text columns, a newline or an
# escape sequence forges log lines and terminal output.
_CONTROL_CHARACTER = re.compile("[\x00-\x1f\x7f-\x9f]")


def parse_identifier(text: object, *, field: str) -> str:
    """SPEC §2: 1-128 code points, no control character, not only white space. Identifiers are
    keys (ids, idempotency keys) that end up in database columns, file names, log lines and
    URLs, so anything that could not be shown or stored as typed is refused, never cleaned up."""
    if not isinstance(text, str):
        raise InvalidInput(f"{field} must be a string, got {shown(text)}")
    if not 1 <= len(text) <= MAX_IDENTIFIER_CHARS:
        raise InvalidInput(f"{field} must be 1-{MAX_IDENTIFIER_CHARS} characters, got {len(text)}: {shown(text)}")
    control = _CONTROL_CHARACTER.search(text)
    if control:
        raise InvalidInput(f"{field} must not contain control characters, got U+{ord(control.group()):04X} "
                           f"at position {control.start()}: {shown(text)}")
    if text.isspace():
        raise InvalidInput(f"{field} must not be only white space, got {shown(text)}")
    return text


def parse_free_text(text: object, *, field: str, max_chars: int) -> str:
    """Display names and notes stay free (any script, punctuation, even escape codes, which are
    shown escaped) but lose NUL characters, which no PostgreSQL text column can hold."""
    if not isinstance(text, str):
        raise InvalidInput(f"{field} must be a string, got {shown(text)}")
    cleaned = text.replace("\x00", "")
    if len(cleaned) > max_chars:
        raise InvalidInput(f"{field} must be at most {max_chars} characters, got {len(cleaned)}: {shown(cleaned)}")
    return cleaned
