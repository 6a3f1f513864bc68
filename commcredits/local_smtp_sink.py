"""A real SMTP server on this machine that keeps what it receives: the demo's and the tests' mailbox.

Built on aiosmtpd's threaded `Controller`. Guarantees:
- a message is recorded (and `on_message` called) before the server replies 250 to its DATA
  terminator; a client that drops the connection before the terminator leaves nothing behind.
  `on_message` runs on the server's thread; if it raises, the client gets a 500 and nothing is
  recorded (a test's way to make the server refuse a message);
- the port is chosen once: `stop()` then `start()` listens on the same port again ("the SMTP
  server went down and came back"); `stop()` also closes the open client connections, as a
  stopping server does;
- with a `tls_context`, STARTTLS is offered and required before MAIL; with `credentials`,
  AUTH LOGIN/PLAIN is required (over TLS when a `tls_context` is given).
"""

import hmac
import logging
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

WAIT_POLL_S = 0.02  # how often `wait_for` looks at the mailbox
logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command at INFO


@dataclass(frozen=True)
class ReceivedMail:
    envelope_from: str
    recipients: tuple[str, ...]
    message: EmailMessage
    message_id: str


class _Controller(Controller):
    """aiosmtpd's Controller that can also close its clients' connections when stopping."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sessions: weakref.WeakSet[SMTP] = weakref.WeakSet()  # bounded by the open connections

    def factory(self) -> SMTP:
        server = super().factory()
        self.sessions.add(server)
        return server

    def close_connections(self) -> None:
        def close_all() -> None:
            for server in list(self.sessions):
                if server.transport is not None:
                    server.transport.abort()
        self.loop.call_soon_threadsafe(close_all)


class LocalSmtpSink:
    """Start it, point an `SmtpSender` at `port`, read `received` or `wait_for` what arrives."""

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, tls_context: ssl.SSLContext | None = None,
                 credentials: tuple[str, str] | None = None,
                 on_message: Callable[[ReceivedMail], None] | None = None) -> None:
        self._host = host
        self._port = port or _free_port(host)
        self._tls_context = tls_context
        self._credentials = credentials
        self._on_message = on_message
        self._received: list[ReceivedMail] = []
        self._lock = threading.Lock()
        self._controller: _Controller | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def received(self) -> list[ReceivedMail]:
        with self._lock:
            return list(self._received)

    def start(self) -> "LocalSmtpSink":
        assert self._controller is None, "the sink is already running"
        controller = _Controller(self, hostname=self._host, port=self._port, **self._smtp_parameters())
        controller.start()
        self._controller = controller
        return self

    def stop(self) -> None:
        controller, self._controller = self._controller, None
        if controller is not None:
            controller.close_connections()
            controller.stop()

    def wait_for(self, count: int, timeout_s: float) -> list[ReceivedMail]:
        """The received mail once there are at least `count`; TimeoutError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while len(received := self.received) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(received)} of {count} messages after {timeout_s} s")
            time.sleep(WAIT_POLL_S)
        return received

    def _smtp_parameters(self) -> dict:
        parameters: dict = {}
        if self._tls_context is not None:
            parameters |= {"tls_context": self._tls_context, "require_starttls": True}
        if self._credentials is not None:
            parameters |= {"authenticator": self._authenticate, "auth_required": True,
                           "auth_require_tls": self._tls_context is not None}
        return parameters

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                      auth_data: object) -> AuthResult:
        assert self._credentials is not None
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        username, password = (value.encode() for value in self._credentials)
        success = hmac.compare_digest(auth_data.login, username) & hmac.compare_digest(auth_data.password, password)
        return AuthResult(success=bool(success), handled=False)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = (envelope.original_content or b"").replace(b"\r\n", b"\n")  # Python's own line ends
        message = BytesParser(policy=default_policy).parsebytes(raw)
        mail = ReceivedMail(envelope.mail_from or "", tuple(envelope.rcpt_tos), message,
                            str(message.get("Message-ID", "")))
        if self._on_message is not None:
            self._on_message(mail)
        with self._lock:
            self._received.append(mail)
        return "250 2.0.0 Message accepted"


def _free_port(host: str) -> int:
    """A port nobody listens on now, chosen once so that a restarted sink keeps its address."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]
