"""Alert webhooks: a signed JSON POST with a commit point, so a hook is neither sent twice nor lost.

Signing: each organization has its own key, `webhook_secret(master_secret, org)`, given to its
developers. A POST carries `Commcredits-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key,
f"{t}." + body)>` and `Commcredits-Delivery: <delivery identity>` (for receivers to de-duplicate);
`verify_signature` is the check receivers (and our tests) run.

`WebhookSender.post` steps, on a connection of its own:
1. connect (HTTPS: the certificate is checked against the URL's host);
2. the request line, the headers and the body except its last byte: the receiver cannot act
   before it has Content-Length bytes;
3. `at_commit()`: the caller durably records that this hook is being committed;
4. the last byte, then the response.

Guarantees: a failure in steps 1-2 is `DeliveryFailed` (transient) and an `at_commit` that raises
is re-raised as is, the connection closed without the last byte either way; after step 4 a 2xx
returns its status, 3xx (never followed), 4xx and 5xx are `DeliveryFailed` (transient for 408,
429 and 5xx), and no response at all is `DeliveryUncertain`: not to be sent again.
"""

import hashlib
import hmac
import http.client
import re
import socket
import ssl
import time
from collections.abc import Callable
from urllib.parse import SplitResult, urlsplit

from consumers.alerts.delivery_errors import DeliveryFailed, DeliveryUncertain

SIGNATURE_HEADER = "Commcredits-Signature"
DELIVERY_HEADER = "Commcredits-Delivery"
SIGNATURE_TOLERANCE_S = 300  # a signature older or further in the future than this is expired
DEFAULT_TIMEOUT_S = 10.0  # connect, each send and the wait for the response
MAX_RESPONSE_BODY_BYTES = 64 * 1024  # read (and ignored) of a response, so the connection ends cleanly
USER_AGENT = "commcredits-alerts"
_TRANSIENT_4XX = frozenset({408, 429})
# A signature header is read strictly and within bounds (`_parse_signature`):
MAX_SIGNATURE_HEADER_CHARS = 1024  # t=, a few v1= and other schemes' values
MAX_SIGNATURES = 8  # v1 values in one header (more than one while a key is being changed)
MAX_TIMESTAMP_DIGITS = 12  # unix seconds have 10 digits until the year 2286
_HEADER_ITEM = re.compile(r"[ \t]*([A-Za-z0-9]+)=([!-~]+)[ \t]*", re.ASCII)  # `key=value`, spaces around it
_TIMESTAMP = re.compile(rf"0|[1-9][0-9]{{0,{MAX_TIMESTAMP_DIGITS - 1}}}", re.ASCII)
_HEX_SIGNATURE = re.compile(r"[0-9a-f]{64}", re.ASCII)  # what `hexdigest()` of SHA-256 writes


class InvalidSignature(ValueError):
    """A webhook whose signature does not prove it came from us, now. `code` is stable:
    "signature_missing", "signature_malformed", "signature_mismatch", "signature_expired"."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def webhook_secret(master_secret: bytes, org: str) -> bytes:
    """The organization's signing key: HMAC-SHA256(master_secret, b"commcredits-webhook:" + org)."""
    return hmac.digest(master_secret, b"commcredits-webhook:" + org.encode(), hashlib.sha256)


def signature_header(secret: bytes, body: bytes, timestamp: int) -> str:
    return f"t={timestamp},v1={_signature(secret, body, timestamp)}"


def _signature(secret: bytes, body: bytes, timestamp: int) -> str:
    return hmac.new(secret, f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def verify_signature(secret: bytes, header: str | None, body: bytes, *, now: int,
                     tolerance_s: int = SIGNATURE_TOLERANCE_S) -> None:
    """Raise `InvalidSignature` unless `header` signs `body` with `secret` within `tolerance_s` of
    `now` (either way: a clock ahead of ours is no excuse). Exactly at the tolerance is accepted."""
    if not header:
        raise InvalidSignature("signature_missing", f"no {SIGNATURE_HEADER} header")
    timestamp, signatures = _parse_signature(header)
    expected = _signature(secret, body, timestamp)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise InvalidSignature("signature_mismatch", "the signature does not match the body")
    if abs(now - timestamp) > tolerance_s:
        raise InvalidSignature("signature_expired", f"signed at {timestamp}, now is {now}")


def _parse_signature(header: str) -> tuple[int, list[str]]:
    """(t, [v1, ...]) of "t=<unix seconds>,v1=<hex>[,v1=<hex>...]", or `signature_malformed`
    and never another exception. Strict, because the header is the sender's to choose: ASCII
    only; `key=value` items separated by commas, with spaces or tabs allowed only around them;
    exactly one t, of 1 to MAX_TIMESTAMP_DIGITS decimal digits 0-9 without sign or leading zero
    (`str.isdigit` also takes "²" and other scripts' digits, and `int` refuses more than 4300
    digits); 1 to MAX_SIGNATURES v1 of 64 lower-case hex digits; other keys (other schemes)
    ignored; at most MAX_SIGNATURE_HEADER_CHARS in all."""
    pairs = _header_items(header)
    timestamps = [value for key, value in pairs if key == "t"]
    signatures = [value for key, value in pairs if key == "v1"]
    if len(timestamps) != 1 or not _TIMESTAMP.fullmatch(timestamps[0]) or not 1 <= len(signatures) <= MAX_SIGNATURES \
            or not all(_HEX_SIGNATURE.fullmatch(signature) for signature in signatures):
        raise _malformed(header)
    return int(timestamps[0]), signatures


def _header_items(header: str) -> list[tuple[str, str]]:
    items = [_HEADER_ITEM.fullmatch(item) for item in header.split(",")] \
        if len(header) <= MAX_SIGNATURE_HEADER_CHARS else [None]
    if None in items:
        raise _malformed(header)
    return [(item.group(1), item.group(2)) for item in items]


def _malformed(header: str) -> InvalidSignature:
    return InvalidSignature("signature_malformed", f"expected t=<unix seconds>,v1=<hex>: {header[:100]!r}")


class WebhookSender:
    """POSTs one hook per connection (no keep-alive). Thread-safe: it holds no connection."""

    def __init__(self, timeout_s: float = DEFAULT_TIMEOUT_S, ca_file: str | None = None) -> None:
        self._timeout_s = timeout_s
        self._ca_file = ca_file

    def post(self, url: str, body: bytes, *, secret: bytes, delivery_id: str, at_commit: Callable[[], None],
             now: Callable[[], float] = time.time) -> int:
        """Deliver `body` to `url`; `at_commit` runs at the commit point (module docstring).
        Returns the 2xx status."""
        assert body, "a webhook body is never empty: its last byte is the commit"
        connection = self._connection(url)
        try:
            self._send_until_commit(connection, _target(urlsplit(url)), body,
                                    signature_header(secret, body, int(now())), delivery_id)
            at_commit()
        except BaseException:
            connection.close()
            raise
        try:
            return _status_outcome(self._commit(connection, body[-1:]))
        finally:
            connection.close()

    def _connection(self, url: str) -> http.client.HTTPConnection:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1 or parts.username:
            raise DeliveryFailed("webhook_bad_url", f"not an http(s) URL without credentials: {url!r}",
                                 permanent=True)
        if parts.scheme == "http":
            return http.client.HTTPConnection(parts.hostname, port, timeout=self._timeout_s)
        context = ssl.create_default_context(cafile=self._ca_file)
        return http.client.HTTPSConnection(parts.hostname, port, timeout=self._timeout_s, context=context)

    @staticmethod
    def _send_until_commit(connection: http.client.HTTPConnection, target: str, body: bytes,
                           signature: str, delivery_id: str) -> None:
        """Steps 1-2; every failure is transient: the receiver lacks at least the last byte."""
        try:
            connection.connect()
            _no_delay(connection.sock)
            connection.putrequest("POST", target, skip_accept_encoding=True)
            for name, value in (("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                ("User-Agent", USER_AGENT), ("Connection", "close"),
                                (SIGNATURE_HEADER, signature), (DELIVERY_HEADER, delivery_id)):
                connection.putheader(name, value)
            connection.endheaders(message_body=body[:-1])
        except TimeoutError as error:
            raise DeliveryFailed("webhook_timeout", str(error) or "timed out", permanent=False) from error
        except ssl.SSLError as error:
            raise DeliveryFailed("webhook_tls_failed", str(error), permanent=False) from error
        except (OSError, http.client.HTTPException) as error:
            raise DeliveryFailed("webhook_unreachable", str(error) or type(error).__name__,
                                 permanent=False) from error

    @staticmethod
    def _commit(connection: http.client.HTTPConnection, last_byte: bytes) -> int:
        """Step 4. A failed send is not yet uncertain: a receiver that answered early is still read."""
        try:
            connection.send(last_byte)
        except OSError:
            pass
        try:
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as error:
            raise DeliveryUncertain("webhook_no_response", str(error) or type(error).__name__) from error
        try:
            response.read(MAX_RESPONSE_BODY_BYTES)
        except (OSError, http.client.HTTPException):
            pass  # the status is the answer; the body is only drained
        return response.status


def _target(parts: SplitResult) -> str:
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _status_outcome(status: int) -> int:
    """The 2xx status, or the `DeliveryFailed` a received non-2xx status means."""
    if 200 <= status < 300:
        return status
    if 300 <= status < 400:
        raise DeliveryFailed("webhook_redirect", f"HTTP {status} (redirects are not followed)", permanent=True)
    transient = status in _TRANSIENT_4XX or status >= 500
    raise DeliveryFailed(f"webhook_http_{status}", f"HTTP {status}", permanent=not transient)


def _no_delay(sock: socket.socket) -> None:
    """The last byte goes out in a write of its own: without TCP_NODELAY, Nagle's algorithm holds
    it until the receiver acknowledges the rest, which a delayed ACK puts off by up to 40 ms."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
