"""Alert e-mail over SMTP, with a commit point so that a message is neither sent twice nor lost.

`SmtpSender.send` steps, on a connection kept open between sends:
1. connect when there is no open connection: TCP, EHLO, STARTTLS (required when configured; the
   certificate is checked against `SmtpSettings.host`), AUTH when a username is configured, and
   only over TLS unless `allow_plaintext_auth` (else `DeliveryFailed("smtp_auth_needs_tls")`,
   permanent, before a byte of the credentials is sent);
2. MAIL FROM (a reused connection the server closed while idle is reopened once, here), RCPT TO,
   DATA (354 expected);
3. the message, dot-stuffed with CRLF line ends (as `smtplib.SMTP.data` sends it), all but the
   terminating CRLF.CRLF;
4. `at_commit()`: the caller durably records that this message is being committed;
5. the terminator, then the server's reply.

Guarantees:
- a failure in steps 1-3 is `DeliveryFailed` (permanent for a 5xx reply) and an `at_commit` that
  raises is re-raised as is; either way the connection is closed without the terminator, so the
  server discards the unfinished message (RFC 5321 4.1.1.4: no terminator, no message). No RSET:
  inside DATA it would be taken as message text, and closing discards the transaction anyway;
- after the terminator, a 2xx reply returns; a 4xx/5xx reply is `DeliveryFailed` (the server
  answered, so it does not have the message); no reply is `DeliveryUncertain`: not to be resent.
- after any failure the connection is dropped; the next `send` reconnects.
"""

import email.policy
import email.utils
import re
import smtplib
import socket
import ssl
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from types import MappingProxyType

from consumers.alerts.delivery_errors import DeliveryFailed, DeliveryUncertain

DEFAULT_TIMEOUT_S = 10.0  # each connect, command and reply; a hung server costs at most this per step
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})
_TERMINATOR = b"\r\n.\r\n"
_LINE_ENDS = re.compile(rb"\r\n|\n|\r(?!\n)")
_LINE_STARTING_WITH_DOT = re.compile(rb"(?m)^\.")
_UNSAFE_ID_LEFT = re.compile(r"[^A-Za-z0-9._-]")
_UNSAFE_ID_RIGHT = re.compile(r"[^A-Za-z0-9.-]")
_DOT_RUNS = re.compile(r"\.{2,}")


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 587
    starttls: bool = True  # required when True: a server without it is DeliveryFailed("smtp_tls_failed")
    username: str | None = None  # AUTH only when set (after STARTTLS)
    password: str | None = None
    sender: str = "billing-alerts@localhost"
    timeout_s: float = DEFAULT_TIMEOUT_S
    ca_file: str | None = None  # the CA bundle STARTTLS trusts instead of the system's (tests: trustme)
    allow_plaintext_auth: bool = False  # AUTH over a connection without TLS (the password in clear)


def build_email(*, sender: str, recipient: str, subject: str, text: str, html: str, message_id: str,
                headers: Mapping[str, str] = _NO_HEADERS) -> EmailMessage:
    """A multipart/alternative (text, then HTML) UTF-8 message with the Message-ID `<message_id>`.

    `message_id` is the alert's delivery identity ("1234.recharge_failed.email-3f2a@commcredits"):
    characters a Message-ID may not hold are replaced by "-", so the same identity always gives
    the same header. Header values with line breaks are refused (ValueError) by the e-mail policy.
    """
    message = EmailMessage(policy=email.policy.default)
    message["From"] = sender
    message["To"] = recipient
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate(usegmt=True)
    message["Message-ID"] = f"<{safe_message_id(message_id)}>"
    for name, value in headers.items():
        message[name] = value
    message.set_content(text, cte="quoted-printable")  # 7-bit clean: no 8BITMIME needed
    message.add_alternative(html, subtype="html", cte="quoted-printable")
    return message


def safe_message_id(message_id: str) -> str:
    """`message_id` with only [A-Za-z0-9._-] left of the last "@" and [A-Za-z0-9.-] right of it."""
    left, _, right = message_id.rpartition("@")
    safe = f"{_dot_atom(_UNSAFE_ID_LEFT.sub('-', left))}@{_dot_atom(_UNSAFE_ID_RIGHT.sub('-', right))}"
    assert not safe.startswith("@") and not safe.endswith("@"), f"not a message identity: {message_id!r}"
    return safe


def _dot_atom(text: str) -> str:
    return _DOT_RUNS.sub(".", text).strip(".")


def _wire_body(message: EmailMessage) -> bytes:
    """The message as DATA carries it (CRLF line ends, dot-stuffed), without the final CRLF."""
    raw = _LINE_ENDS.sub(b"\r\n", message.as_bytes(policy=email.policy.SMTP))
    return _LINE_STARTING_WITH_DOT.sub(b"..", raw).removesuffix(b"\r\n")


class _CommitSMTP(smtplib.SMTP):
    """`smtplib.SMTP` whose DATA is split at the commit point: `smtplib.SMTP.data` in two halves."""

    def data_before_commit(self, wire_body: bytes) -> None:
        code, reply = self.docmd("data")
        if code != 354:
            raise smtplib.SMTPDataError(code, reply)
        self.send(wire_body)

    def data_commit(self) -> tuple[int, bytes]:
        self.send(_TERMINATOR)
        return self.getreply()


@contextmanager
def _failing_as(code: str, *, lost_code: str = "smtp_connection_lost") -> Iterator[None]:
    """Translate smtplib's and the socket's errors before the commit point into `DeliveryFailed`."""
    try:
        yield
    except smtplib.SMTPResponseException as error:
        raise DeliveryFailed(code, _reply_text(error.smtp_code, error.smtp_error),
                             permanent=500 <= error.smtp_code < 600) from error
    except smtplib.SMTPServerDisconnected as error:  # also read timeouts: smtplib reports them so
        raise DeliveryFailed(lost_code, str(error), permanent=False) from error
    except smtplib.SMTPException as error:  # the server lacks what we need (e.g. AUTH)
        raise DeliveryFailed(code, str(error), permanent=True) from error
    except OSError as error:  # refused, reset, timeouts (SMTPException is an OSError: caught above)
        raise DeliveryFailed(lost_code, str(error) or type(error).__name__, permanent=False) from error


def _reply_text(code: int, reply: bytes | str) -> str:
    return f"{code} {reply.decode('utf-8', 'replace') if isinstance(reply, bytes) else reply}"


class SmtpSender:
    """Sends one message at a time over a connection kept open between sends (reconnects when the
    server closed it). Not thread-safe: one sender per thread."""

    def __init__(self, settings: SmtpSettings) -> None:
        self._settings = settings
        self._smtp: _CommitSMTP | None = None

    def send(self, message: EmailMessage, recipient: str, at_commit: Callable[[], None]) -> None:
        """Deliver `message` to `recipient`; `at_commit` runs at the commit point (module docstring)."""
        if not (recipient.isascii() and self._settings.sender.isascii()):
            raise DeliveryFailed("smtp_address_not_ascii", f"cannot send to {recipient!r} (no SMTPUTF8)",
                                 permanent=True)
        wire_body = _wire_body(message)
        try:
            smtp = self._open_transaction(recipient)
            with _failing_as("smtp_rejected"):
                smtp.data_before_commit(wire_body)
            at_commit()
        except BaseException:
            self._drop()
            raise
        self._commit(smtp)

    def close(self) -> None:
        """QUIT and close the connection, if one is open; never raises for a dead connection."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()

    def _open_transaction(self, recipient: str) -> _CommitSMTP:
        """MAIL FROM and RCPT TO, on the open connection or, if the server closed it, a new one."""
        smtp = self._smtp
        if smtp is not None:
            with _failing_as("smtp_rejected"):
                try:
                    self._mail_from(smtp)
                except smtplib.SMTPServerDisconnected:
                    self._drop()
                    smtp = None
        if smtp is None:
            smtp = self._connect()
            with _failing_as("smtp_rejected"):
                self._mail_from(smtp)
        with _failing_as("smtp_rejected"):
            code, reply = smtp.rcpt(recipient)
            if code not in (250, 251):
                raise smtplib.SMTPResponseException(code, reply)
        return smtp

    def _mail_from(self, smtp: _CommitSMTP) -> None:
        code, reply = smtp.mail(self._settings.sender)
        if code == 421:  # the server is closing the connection (idle timeout, shutdown)
            raise smtplib.SMTPServerDisconnected(_reply_text(code, reply))
        if code != 250:
            raise smtplib.SMTPSenderRefused(code, reply, self._settings.sender)

    def _connect(self) -> _CommitSMTP:
        settings = self._settings
        with _failing_as("smtp_rejected", lost_code="smtp_unreachable"):
            self._smtp = _CommitSMTP(settings.host, settings.port, timeout=settings.timeout_s)
            # the terminator goes out in a write of its own: Nagle's algorithm would hold it until
            # the server acknowledged the body, which a delayed ACK puts off by up to 40 ms
            self._smtp.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._smtp.ehlo_or_helo_if_needed()
        if settings.starttls:
            self._starttls(self._smtp)
        if settings.username is not None:
            self._refuse_auth_in_clear(self._smtp)
            with _failing_as("smtp_auth_failed"):
                self._smtp.login(settings.username, settings.password or "")
        return self._smtp

    def _refuse_auth_in_clear(self, smtp: _CommitSMTP) -> None:
        """Defence in depth beside the settings' check: whatever `starttls` says, AUTH goes only
        over a socket that is TLS, unless plaintext AUTH is explicitly allowed."""
        if not isinstance(smtp.sock, ssl.SSLSocket) and not self._settings.allow_plaintext_auth:
            raise DeliveryFailed("smtp_auth_needs_tls", f"not sending the password for {self._settings.username!r} "
                                 "over a connection without TLS (allow_plaintext_auth is off)", permanent=True)

    def _starttls(self, smtp: _CommitSMTP) -> None:
        context = ssl.create_default_context(cafile=self._settings.ca_file)
        try:
            smtp.starttls(context=context)
            smtp.ehlo()
        except (smtplib.SMTPException, OSError) as error:  # not offered, refused, certificate, handshake
            raise DeliveryFailed("smtp_tls_failed", str(error) or type(error).__name__, permanent=False) from error

    def _commit(self, smtp: _CommitSMTP) -> None:
        """Step 5: send the terminator and read the reply; uncertain when none comes."""
        try:
            code, reply = smtp.data_commit()
        except (smtplib.SMTPServerDisconnected, OSError) as error:
            self._drop()
            raise DeliveryUncertain("smtp_no_reply_after_data", str(error) or type(error).__name__) from error
        if 200 <= code < 300:
            return
        self._drop()
        if 400 <= code < 600:
            raise DeliveryFailed("smtp_rejected", _reply_text(code, reply), permanent=code >= 500)
        raise DeliveryUncertain("smtp_no_reply_after_data", f"unreadable reply {_reply_text(code, reply)}")

    def _drop(self) -> None:
        """Close the connection without QUIT or terminator: the server discards an unfinished DATA."""
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()
