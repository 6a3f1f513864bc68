"""The kinds of value a setting may hold: strict parsers of an environment variable's text, for the
fields of the `EnvironmentSettings` models.

Why strict: `float()` takes `nan`, `inf`, `1e400` and ` 5 `, `int(float(...))` then crashes or
truncates, and a port of 99999 is only refused when the first connection is tried. Here a number
is plain digits (seconds may have a decimal point) within a range, a flag is `true`/`false`/`1`/
`0`, names and addresses are checked for their syntax, and every failure names what is expected.
Blank text means "unset" (the field's default) for names, paths and secrets, but is an error for a
number or a flag.
"""

import ipaddress
import os
import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import PlainValidator
from pydantic_core import PydanticCustomError, PydanticUseDefault

from application.environment_settings import SETTINGS_ERROR_CODE, shown_value

_WHOLE_NUMBER = re.compile(r"[0-9]{1,9}")
_DECIMAL_NUMBER = re.compile(r"[0-9]{1,9}(\.[0-9]{1,9})?")
_FLAGS = {"true": True, "1": True, "false": False, "0": False}
_HOST_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})")
_TOPIC_NAME = re.compile(r"[A-Za-z0-9._-]{1,249}")  # Kafka's own rule for topic names
_GROUP_ID = re.compile(r"[!-~]{1,255}")  # printable ASCII, no spaces
_EMAIL_ADDRESS = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9.-]{1,253}")
MIN_PORT, MAX_PORT = 1, 65535
WEBHOOK_SECRET_MIN_BYTES = 32  # the HMAC-SHA256 key's own size: a shorter master key is guessable


def invalid(expected: str, text: str, shown: str | None = None) -> PydanticCustomError:
    """The error a parser raises; `from_environment` turns it into `NAME must be <expected>, got <shown>`."""
    return PydanticCustomError(SETTINGS_ERROR_CODE, "{expected}",
                               {"expected": expected, "shown": shown or shown_value(text)})


def _setting(kind: type, parse: Callable[[str], Any]) -> Any:
    return Annotated[kind, PlainValidator(parse)]


def whole_number(minimum: int, maximum: int) -> Any:
    expected = f"a whole number from {minimum} to {maximum}"

    def parse(text: str) -> int:
        if _WHOLE_NUMBER.fullmatch(text) and minimum <= int(text) <= maximum:
            return int(text)
        raise invalid(expected, text)
    return _setting(int, parse)


def seconds(minimum: float, maximum: float) -> Any:
    expected = f"a number of seconds from {minimum:g} to {maximum:g}, written like 10 or 0.5"

    def parse(text: str) -> float:
        if _DECIMAL_NUMBER.fullmatch(text) and minimum <= float(text) <= maximum:
            return float(text)
        raise invalid(expected, text)
    return _setting(float, parse)


def _flag(text: str) -> bool:
    if text.lower() in _FLAGS:
        return _FLAGS[text.lower()]
    raise invalid("true or false (or 1 or 0)", text)


def text_matching(expected: str, valid: Callable[[str], bool]) -> Any:
    """Text that `valid` accepts; blank is unset."""
    def parse(text: str) -> str:
        if not text:
            raise PydanticUseDefault()
        if valid(text):
            return text
        raise invalid(expected, text)
    return _setting(str | None, parse)


def _is_host(text: str) -> bool:
    if ":" not in text:
        return _HOST_NAME.fullmatch(text) is not None
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _is_host_and_port(text: str) -> bool:
    host, colon, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    return bool(colon) and _is_host(host) and _WHOLE_NUMBER.fullmatch(port) is not None \
        and MIN_PORT <= int(port) <= MAX_PORT


def _is_readable_file(text: str) -> bool:
    return os.path.isfile(text) and os.access(text, os.R_OK)


def _webhook_secret(text: str) -> str:
    if not text:
        raise PydanticUseDefault()
    size = len(text.encode())
    if size >= WEBHOOK_SECRET_MIN_BYTES:
        return text
    raise invalid(f"at least {WEBHOOK_SECRET_MIN_BYTES} bytes (e.g. `openssl rand -hex 32`)", text,
                  shown=f"a secret of {size} bytes")


Port = whole_number(MIN_PORT, MAX_PORT)
Flag = _setting(bool, _flag)
Text = text_matching("text", lambda _text: True)
HostName = text_matching("a host name or IP address, without a port", _is_host)
BootstrapServers = text_matching(
    f"host:port[,host:port...] without spaces, ports from {MIN_PORT} to {MAX_PORT}",
    lambda text: all(_is_host_and_port(server) for server in text.split(",")))
TopicName = text_matching("a Kafka topic name: 1 to 249 of A-Z a-z 0-9 . _ -",
                          lambda text: _TOPIC_NAME.fullmatch(text) is not None)
GroupId = text_matching("a Kafka group id: 1 to 255 printable ASCII characters without spaces",
                        lambda text: _GROUP_ID.fullmatch(text) is not None)
EmailAddress = text_matching("an ASCII e-mail address such as billing-alerts@example.com (no display name)",
                             lambda text: _EMAIL_ADDRESS.fullmatch(text) is not None)
ReadableFile = text_matching("the path of a readable file", _is_readable_file)
WebhookSecret = _setting(str | None, _webhook_secret)
