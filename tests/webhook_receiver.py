"""A real HTTP server that records the webhooks it answers: the tests' receiving end.

A request is recorded (and `on_request` called) only once all its Content-Length bytes arrived,
and before the response is sent; a client that stops short leaves nothing behind. Every answered
request is recorded, whatever `status_for(path)` answered.
"""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WAIT_POLL_S = 0.02  # how often `wait_for` looks at the received hooks
REQUEST_TIMEOUT_S = 10.0  # a client silent for this long is dropped, so `stop` never hangs
SHUTDOWN_POLL_S = 0.05  # how often the serving thread looks for `stop`: its longest delay


@dataclass(frozen=True)
class ReceivedHook:
    path: str
    headers: dict[str, str]  # lower-case names
    body: bytes


class WebhookReceiver:
    def __init__(self, *, status_for: Callable[[str], int] = lambda path: 200,
                 on_request: Callable[[ReceivedHook], None] | None = None) -> None:
        self._status_for = status_for
        self._on_request = on_request
        self._received: list[ReceivedHook] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._server.serve_forever, args=(SHUTDOWN_POLL_S,),
                                        daemon=True)

    def start(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def received(self) -> list[ReceivedHook]:
        with self._lock:
            return list(self._received)

    def wait_for(self, count: int, timeout_s: float) -> list[ReceivedHook]:
        """The received hooks once there are at least `count`; TimeoutError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        while len(received := self.received) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(received)} of {count} hooks after {timeout_s} s")
            time.sleep(WAIT_POLL_S)
        return received

    def _record(self, hook: ReceivedHook) -> int:
        if self._on_request is not None:
            self._on_request(hook)
        with self._lock:
            self._received.append(hook)
        return self._status_for(hook.path)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            timeout = REQUEST_TIMEOUT_S

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:
                    self.close_connection = True
                    return  # the client stopped short: no request to answer
                headers = {name.lower(): value for name, value in self.headers.items()}
                status = receiver._record(ReceivedHook(self.path, headers, body))
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler
