"""Alert e-mail against real SMTP servers: the local sink, aiosmtpd with scripted replies, and a raw
socket server that goes silent after DATA. The commit point is what these tests pin down: before
it the server keeps nothing, after it the outcome is the server's answer or "uncertain"."""

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from email.message import EmailMessage

import pytest
import trustme
from aiosmtpd.controller import Controller

from commcredits.local_smtp_sink import LocalSmtpSink
from consumers.alerts.delivery_errors import DeliveryFailed, DeliveryUncertain
from consumers.alerts.smtp_delivery import SmtpSender, SmtpSettings, build_email

TIMEOUT_S = 5.0  # the sender's timeout: generous for a loaded CI machine, short enough to fail fast
ARRIVAL_TIMEOUT_S = 5.0  # how long a test waits for a message to arrive
SETTLE_S = 0.3  # how long a test waits to be sure that nothing arrives
RECIPIENT = "billing@example.com"


def alert_email(number: int) -> EmailMessage:
    return build_email(sender="Commcredits <billing-alerts@localhost>", recipient=RECIPIENT,
                       subject=f"Recharge failed #{number} – €12.50", text=f"Plain text {number}\n.line with a dot",
                       html=f"<p>HTML {number} &euro;</p>", message_id=f"{number}.recharge_failed.email@commcredits",
                       headers={"X-Commcredits-Alert": f"alert-{number}"})


def plain_settings(port: int, **overrides) -> SmtpSettings:
    return SmtpSettings(**({"host": "127.0.0.1", "port": port, "starttls": False, "timeout_s": TIMEOUT_S}
                           | overrides))


def no_op() -> None:
    pass


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


@pytest.fixture
def sink() -> Iterator[LocalSmtpSink]:
    sink = LocalSmtpSink().start()
    yield sink
    sink.stop()


@pytest.fixture
def sender() -> Iterator[Callable[[SmtpSettings], SmtpSender]]:
    senders: list[SmtpSender] = []

    def make(settings: SmtpSettings) -> SmtpSender:
        senders.append(SmtpSender(settings))
        return senders[-1]
    yield make
    for each in senders:
        each.close()


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_sink(ca: trustme.CA) -> Iterator[LocalSmtpSink]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    sink = LocalSmtpSink(tls_context=context, credentials=("alerts", "s3cret")).start()
    yield sink
    sink.stop()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def test_a_message_arrives_with_both_bodies(sink, sender) -> None:
    sender(plain_settings(sink.port)).send(alert_email(1), RECIPIENT, no_op)

    [mail] = sink.wait_for(1, ARRIVAL_TIMEOUT_S)
    assert mail.recipients == (RECIPIENT,)
    assert mail.envelope_from == "billing-alerts@localhost"
    assert mail.message_id == "<1.recharge_failed.email@commcredits>"
    assert mail.message["X-Commcredits-Alert"] == "alert-1"
    assert mail.message["Subject"] == "Recharge failed #1 – €12.50"
    assert mail.message.get_body(("plain",)).get_content() == "Plain text 1\n.line with a dot\n"
    assert mail.message.get_body(("html",)).get_content() == "<p>HTML 1 &euro;</p>\n"


def test_the_message_id_is_sanitised() -> None:
    message = build_email(sender="a@localhost", recipient=RECIPIENT, subject="s", text="t", html="<p>h</p>",
                          message_id="12 34/recharge..failed.<email>@comm credits")

    assert message["Message-ID"] == "<12-34-recharge.failed.-email-@comm-credits>"


def test_starttls_and_auth(tls_sink, sender, ca_file) -> None:
    settings = plain_settings(tls_sink.port, starttls=True, username="alerts", password="s3cret", ca_file=ca_file)

    sender(settings).send(alert_email(1), RECIPIENT, no_op)

    assert [mail.message_id for mail in tls_sink.wait_for(1, ARRIVAL_TIMEOUT_S)] == [
        "<1.recharge_failed.email@commcredits>"]


@pytest.mark.parametrize(("overrides", "code", "permanent"), [
    ({"password": "wrong"}, "smtp_auth_failed", True),
    ({"ca_file": None}, "smtp_tls_failed", False),  # the system's CAs do not know the test CA
    ({"username": None}, "smtp_rejected", True),  # 530: authentication required
    ({"starttls": False}, "smtp_auth_needs_tls", True),  # the password is never sent in clear
    ({"starttls": False, "username": None}, "smtp_rejected", True),  # 530: STARTTLS first
], ids=["wrong password", "untrusted certificate", "no auth", "auth without starttls", "no starttls"])
def test_what_the_secure_server_refuses(tls_sink, sender, ca_file, overrides, code, permanent) -> None:
    settings = plain_settings(tls_sink.port, **({"starttls": True, "username": "alerts", "password": "s3cret",
                                                 "ca_file": ca_file} | overrides))

    with pytest.raises(DeliveryFailed) as failed:
        sender(settings).send(alert_email(1), RECIPIENT, no_op)

    assert (failed.value.code, failed.value.permanent) == (code, permanent)
    time.sleep(SETTLE_S)
    assert tls_sink.received == []


def test_a_server_without_starttls_is_refused_when_tls_is_required(sink, sender) -> None:
    with pytest.raises(DeliveryFailed) as failed:
        sender(plain_settings(sink.port, starttls=True)).send(alert_email(1), RECIPIENT, no_op)

    assert (failed.value.code, failed.value.permanent) == ("smtp_tls_failed", False)
    assert sink.received == []


def test_nothing_listening_is_transient(sender) -> None:
    with pytest.raises(DeliveryFailed) as failed:
        sender(plain_settings(free_port())).send(alert_email(1), RECIPIENT, no_op)

    assert (failed.value.code, failed.value.permanent) == ("smtp_unreachable", False)


def test_an_at_commit_that_raises_leaves_nothing_on_the_server(sink, sender) -> None:
    smtp = sender(plain_settings(sink.port))

    def crash() -> None:
        raise RuntimeError("the store is down")

    with pytest.raises(RuntimeError, match="the store is down"):
        smtp.send(alert_email(1), RECIPIENT, crash)
    time.sleep(SETTLE_S)
    assert sink.received == []
    smtp.send(alert_email(2), RECIPIENT, no_op)
    time.sleep(SETTLE_S)
    assert [mail.message_id for mail in sink.wait_for(1, ARRIVAL_TIMEOUT_S)] == [
        "<2.recharge_failed.email@commcredits>"]


def test_the_server_has_the_message_only_after_the_commit_point(sink, sender) -> None:
    seen_at_commit: list[int] = []

    def at_commit() -> None:
        time.sleep(SETTLE_S)  # time enough for the server to act, if it could
        seen_at_commit.append(len(sink.received))

    sender(plain_settings(sink.port)).send(alert_email(1), RECIPIENT, at_commit)

    assert seen_at_commit == [0]
    assert len(sink.received) == 1  # the 250 came after the sink recorded it


def test_a_server_that_went_down_and_came_back(sink, sender) -> None:
    smtp = sender(plain_settings(sink.port))
    smtp.send(alert_email(1), RECIPIENT, no_op)
    sink.stop()

    with pytest.raises(DeliveryFailed) as failed:
        smtp.send(alert_email(2), RECIPIENT, no_op)
    sink.start()
    smtp.send(alert_email(3), RECIPIENT, no_op)

    assert (failed.value.code, failed.value.permanent) == ("smtp_unreachable", False)
    assert [mail.message_id for mail in sink.wait_for(2, ARRIVAL_TIMEOUT_S)] == [
        "<1.recharge_failed.email@commcredits>", "<3.recharge_failed.email@commcredits>"]


class ScriptedHandler:
    """aiosmtpd handler: refuses recipients named unknown@..., answers DATA with `data_reply`, and
    records each accepted message with the client's address (to tell connections apart)."""

    def __init__(self, data_reply: str = "250 OK") -> None:
        self.data_reply = data_reply
        self.accepted: list[tuple[tuple[str, int], bytes]] = []

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address.startswith("unknown@"):
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        if self.data_reply.startswith("250"):
            self.accepted.append((session.peer, envelope.content))
        return self.data_reply


@pytest.fixture
def scripted() -> Iterator[Callable[..., Controller]]:
    controllers: list[Controller] = []

    def start(handler: ScriptedHandler, **smtp_parameters) -> Controller:
        controllers.append(Controller(handler, hostname="127.0.0.1", port=free_port(), **smtp_parameters))
        controllers[-1].start()
        return controllers[-1]
    yield start
    for controller in controllers:
        controller.stop()


def test_a_refused_recipient_is_permanent(scripted, sender) -> None:
    handler = ScriptedHandler()
    smtp = sender(plain_settings(scripted(handler).port))

    with pytest.raises(DeliveryFailed) as failed:
        smtp.send(alert_email(1), "unknown@example.com", no_op)
    smtp.send(alert_email(2), RECIPIENT, no_op)

    assert (failed.value.code, failed.value.permanent) == ("smtp_rejected", True)
    assert [b"2.recharge_failed" in content for _, content in handler.accepted] == [True]


@pytest.mark.parametrize(("data_reply", "permanent"), [("554 5.6.0 Content refused", True),
                                                       ("451 4.3.0 Try again later", False)])
def test_a_refusal_after_the_terminator_is_a_failure_not_an_uncertainty(scripted, sender, data_reply,
                                                                        permanent) -> None:
    committed: list[bool] = []
    smtp = sender(plain_settings(scripted(ScriptedHandler(data_reply)).port))

    with pytest.raises(DeliveryFailed) as failed:
        smtp.send(alert_email(1), RECIPIENT, lambda: committed.append(True))

    assert committed == [True]
    assert (failed.value.code, failed.value.permanent) == ("smtp_rejected", permanent)


def test_one_connection_carries_several_messages(scripted, sender) -> None:
    handler = ScriptedHandler()
    smtp = sender(plain_settings(scripted(handler).port))

    smtp.send(alert_email(1), RECIPIENT, no_op)
    smtp.send(alert_email(2), RECIPIENT, no_op)

    [(first_peer, _), (second_peer, _)] = handler.accepted
    assert first_peer == second_peer


def test_a_connection_the_server_closed_while_idle_is_reopened(scripted, sender) -> None:
    handler = ScriptedHandler()
    smtp = sender(plain_settings(scripted(handler, timeout=0.2).port))  # aiosmtpd closes after 0.2 s idle

    smtp.send(alert_email(1), RECIPIENT, no_op)
    time.sleep(SETTLE_S * 2)
    smtp.send(alert_email(2), RECIPIENT, no_op)

    [(first_peer, _), (second_peer, _)] = handler.accepted
    assert first_peer != second_peer


class SilentAfterData:
    """A raw SMTP server that takes one whole message, terminator included, then hangs up without a
    reply: the case where the client cannot know whether the message was taken. `data` holds the
    bytes received after the 354, as they arrive."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.data = b""
        self._thread = threading.Thread(target=self._serve_one, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._listener.close()
        self._thread.join(TIMEOUT_S)

    def _serve_one(self) -> None:
        connection, _ = self._listener.accept()
        connection.settimeout(TIMEOUT_S)
        with connection, connection.makefile("rb") as stream:
            connection.sendall(b"220 silent ESMTP\r\n")
            while not (line := stream.readline()).upper().startswith((b"DATA", b"QUIT")) and line:
                connection.sendall(b"250 OK\r\n")
            if line.upper().startswith(b"DATA"):
                connection.sendall(b"354 Go ahead\r\n")
                while not self.data.endswith(b"\r\n.\r\n") and (chunk := stream.read1(65536)):
                    self.data += chunk


def test_no_reply_after_the_terminator_is_uncertain(sender) -> None:
    server = SilentAfterData()
    data_at_commit: list[bytes] = []

    def at_commit() -> None:
        time.sleep(SETTLE_S)  # time enough for the whole message to arrive
        data_at_commit.append(server.data)

    try:
        with pytest.raises(DeliveryUncertain) as uncertain:
            sender(plain_settings(server.port)).send(alert_email(1), RECIPIENT, at_commit)
    finally:
        server.close()

    assert uncertain.value.code == "smtp_no_reply_after_data"
    [before_commit] = data_at_commit
    assert b"Message-ID: <1.recharge_failed.email@commcredits>" in before_commit
    assert b"\r\n..line with a dot" in before_commit  # dot-stuffed
    assert before_commit.endswith(b"--")  # the whole message: its closing MIME boundary
    assert server.data == before_commit + b"\r\n.\r\n"  # after the commit point, only the terminator
