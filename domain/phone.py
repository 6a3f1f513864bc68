"""Phone numbers (SPEC §2): strict E.164, country resolved by `phonenumbers`."""

import re
from functools import lru_cache

import phonenumbers

from domain.errors import InvalidInput, shown

# phonenumbers compiles its metadata's patterns on every use unless told to keep them; with the
# consumer's other patterns they fell out of the `re` module's own cache (3 % of a CDR's time went
# to recompiling them). The patterns come from fixed metadata: the cache is bounded.
phonenumbers.enable_pattern_cache()

_E164_TEXT = re.compile(r"\+[1-9][0-9]{1,14}")
_EMERGENCY_TEXT = re.compile(r"\+?[0-9]{2,15}")
_NO_REGION = {None, "ZZ", "001"}


def parse_e164(text: object, *, field: str) -> str:
    if not isinstance(text, str) or not _E164_TEXT.fullmatch(text):
        raise InvalidInput(f"{field} must be E.164 ('+' then 2-15 digits, the first not 0), got {shown(text)}")
    if _region_of(text) == "":
        raise InvalidInput(f"{field} is not a possible phone number: {shown(text)}")
    return text


def parse_emergency_number(text: object, *, field: str) -> str:
    if not isinstance(text, str) or not _EMERGENCY_TEXT.fullmatch(text):
        raise InvalidInput(f"{field} must be 2-15 digits with an optional '+', got {shown(text)}")
    return text


def country_of(number: str) -> str | None:
    """The number's ISO region, or None for a possible number with no region (reserved ranges,
    non-geographic services): such a number is domestic for no user."""
    region = _region_of(number)
    return region or None


def digits_of(number: str) -> str:
    return number.lstrip("+")


@lru_cache(maxsize=65536)
def _region_of(number: str) -> str | None:
    """'' when the number is not a possible number, None when it has no region."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_possible_number(parsed):
        return ""
    region = phonenumbers.region_code_for_number(parsed)
    return None if region in _NO_REGION else region
