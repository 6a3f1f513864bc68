"""Alert webhooks against real HTTP servers: the test receiver, an HTTPS server with a trustme
certificate, and a raw socket server that takes a request and never answers. The commit point is
what these tests pin down: before it the receiver has nothing, after it the outcome is the
receiver's status or "uncertain"."""

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme

from consumers.alerts.delivery_errors import DeliveryFailed, DeliveryUncertain
from consumers.alerts.webhook_delivery import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    WebhookSender,
    verify_signature,
    webhook_secret,
)
from tests.webhook_receiver import SHUTDOWN_POLL_S, WebhookReceiver

TIMEOUT_S = 5.0  # the sender's timeout: generous for a loaded CI machine, short enough to fail fast
SHORT_TIMEOUT_S = 0.5  # the sender's timeout where a test waits for it to expire
ARRIVAL_TIMEOUT_S = 5.0  # how long a test waits for a hook to arrive
SETTLE_S = 0.3  # how long a test waits to be sure that nothing arrives
MASTER = b"master-secret-for-tests"
SECRET = webhook_secret(MASTER, "org-1")
BODY = b'{"id":"1234.recharge_failed","kind":"recharge_failed","org":"org-1","amount":"12.5000"}'


def no_op() -> None:
    pass


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def post(url: str, *, at_commit: Callable[[], None] = no_op, body: bytes = BODY,
         sender: WebhookSender | None = None, delivery_id: str = "1234.recharge_failed.webhook") -> int:
    return (sender or WebhookSender(TIMEOUT_S)).post(url, body, secret=SECRET, delivery_id=delivery_id,
                                                     at_commit=at_commit)


@pytest.fixture
def receiver() -> Iterator[Callable[..., WebhookReceiver]]:
    receivers: list[WebhookReceiver] = []

    def start(**options) -> WebhookReceiver:
        receivers.append(WebhookReceiver(**options).start())
        return receivers[-1]
    yield start
    for each in receivers:
        each.stop()


def test_a_hook_arrives_signed(receiver) -> None:
    hooks = receiver()

    status = post(f"{hooks.url}/alerts/org-1?v=1")

    [hook] = hooks.received
    assert status == 200
    assert (hook.path, hook.body) == ("/alerts/org-1?v=1", BODY)
    assert hook.headers["content-type"] == "application/json"
    assert hook.headers["content-length"] == str(len(BODY))
    assert hook.headers["user-agent"] == "commcredits-alerts"
    assert hook.headers[DELIVERY_HEADER.lower()] == "1234.recharge_failed.webhook"
    verify_signature(webhook_secret(MASTER, "org-1"), hook.headers[SIGNATURE_HEADER.lower()], hook.body,
                     now=int(time.time()))


def test_the_signature_carries_the_given_clock(receiver) -> None:
    hooks = receiver()

    WebhookSender(TIMEOUT_S).post(hooks.url, BODY, secret=SECRET, delivery_id="d", at_commit=no_op,
                                  now=lambda: 1_800_000_000.9)

    signature = hooks.received[0].headers[SIGNATURE_HEADER.lower()]
    assert signature.startswith("t=1800000000,v1=")
    verify_signature(SECRET, signature, BODY, now=1_800_000_000)


@pytest.mark.parametrize(("status", "code", "permanent"), [
    (500, "webhook_http_500", False),
    (503, "webhook_http_503", False),
    (429, "webhook_http_429", False),
    (408, "webhook_http_408", False),
    (404, "webhook_http_404", True),
    (400, "webhook_http_400", True),
    (410, "webhook_http_410", True),
    (302, "webhook_redirect", True),
    (301, "webhook_redirect", True),
])
def test_what_a_refusing_status_means(receiver, status, code, permanent) -> None:
    hooks = receiver(status_for=lambda path: status)
    committed: list[bool] = []

    with pytest.raises(DeliveryFailed) as failed:
        post(hooks.url, at_commit=lambda: committed.append(True))

    assert (failed.value.code, failed.value.permanent) == (code, permanent)
    assert committed == [True]
    assert len(hooks.received) == 1  # the receiver answered: it had the whole request


def test_any_2xx_is_success(receiver) -> None:
    assert post(receiver(status_for=lambda path: 202).url) == 202


def test_nothing_listening_is_transient() -> None:
    committed: list[bool] = []

    with pytest.raises(DeliveryFailed) as failed:
        post(f"http://127.0.0.1:{free_port()}/", at_commit=lambda: committed.append(True))

    assert (failed.value.code, failed.value.permanent) == ("webhook_unreachable", False)
    assert committed == []


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/hook", "http:///no-host", "https://user:pw@127.0.0.1/",
                                 "http://127.0.0.1:99999/", "127.0.0.1/hook"])
def test_a_bad_url_is_permanent(url) -> None:
    with pytest.raises(DeliveryFailed) as failed:
        post(url)

    assert (failed.value.code, failed.value.permanent) == ("webhook_bad_url", True)


def test_an_at_commit_that_raises_leaves_nothing_at_the_receiver(receiver) -> None:
    hooks = receiver()

    def crash() -> None:
        raise RuntimeError("the store is down")

    with pytest.raises(RuntimeError, match="the store is down"):
        post(hooks.url, at_commit=crash, delivery_id="first")
    time.sleep(SETTLE_S)
    assert hooks.received == []
    post(hooks.url, delivery_id="second")
    time.sleep(SETTLE_S)
    assert [hook.headers[DELIVERY_HEADER.lower()] for hook in hooks.wait_for(1, ARRIVAL_TIMEOUT_S)] == ["second"]


def test_the_receiver_has_the_hook_only_after_the_commit_point(receiver) -> None:
    hooks = receiver()
    seen_at_commit: list[int] = []

    def at_commit() -> None:
        time.sleep(SETTLE_S)  # time enough for the receiver to act, if it could
        seen_at_commit.append(len(hooks.received))

    post(hooks.url, at_commit=at_commit)

    assert seen_at_commit == [0]
    assert len(hooks.received) == 1


class SilentAfterRequest:
    """A raw HTTP server that reads one whole request and then either hangs up (`hold=False`) or
    keeps the connection open without answering (`hold=True`). `body` grows as bytes arrive."""

    def __init__(self, *, hold: bool) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}/hook"
        self.body = b""
        self._hold = hold
        self._release = threading.Event()
        self._thread = threading.Thread(target=self._serve_one, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._release.set()
        self._listener.close()
        self._thread.join(TIMEOUT_S)

    def _serve_one(self) -> None:
        connection, _ = self._listener.accept()
        connection.settimeout(TIMEOUT_S)
        with connection, connection.makefile("rb") as stream:
            length = 0
            while (line := stream.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            while len(self.body) < length and (chunk := stream.read1(length - len(self.body))):
                self.body += chunk
            if self._hold:
                self._release.wait(TIMEOUT_S)


@pytest.mark.parametrize("hold", [False, True], ids=["hangs up", "never answers"])
def test_no_response_after_the_last_byte_is_uncertain(hold) -> None:
    server = SilentAfterRequest(hold=hold)
    body_at_commit: list[bytes] = []

    def at_commit() -> None:
        time.sleep(SETTLE_S)  # time enough for all that was sent to arrive
        body_at_commit.append(server.body)

    try:
        with pytest.raises(DeliveryUncertain) as uncertain:
            post(server.url, at_commit=at_commit, sender=WebhookSender(SHORT_TIMEOUT_S))
    finally:
        server.close()

    assert uncertain.value.code == "webhook_no_response"
    assert body_at_commit == [BODY[:-1]]  # the commit point: all but the last byte
    assert server.body == BODY


class _NoContent(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def https_url(ca: trustme.CA) -> Iterator[str]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoContent)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, args=(SHUTDOWN_POLL_S,), daemon=True)
    thread.start()
    yield f"https://localhost:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()
    thread.join()


def test_https_with_the_receivers_ca(https_url, ca, tmp_path) -> None:
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))

    assert post(https_url, sender=WebhookSender(TIMEOUT_S, ca_file=str(ca_file))) == 204


def test_https_with_an_untrusted_certificate_is_transient(https_url) -> None:
    with pytest.raises(DeliveryFailed) as failed:
        post(https_url)

    assert (failed.value.code, failed.value.permanent) == ("webhook_tls_failed", False)
