"""`commcredits serve` as a separate process on a test store, as an operator starts it: what the
concurrency, crash and fuzzing tests and the benchmark talk to over real HTTP."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from application.settings import StoreSettings
from commcredits.admin import Admin
from commcredits.api_keys import ApiKeys
from projections.view_database import ViewDatabase
from tests.alert_scenario import database_url_of

START_TIMEOUT_S = 60.0


def set_up(store: StoreSettings, lines) -> None:
    """Administrative lines applied to `store`, as the admin CLI would."""
    admin = Admin(store)
    try:
        for line in lines:
            admin.run(line)
    finally:
        admin.close()


def new_key(store: StoreSettings, org: str | None, role: str) -> str:
    """A new API key's text (`org` None: an operator's)."""
    keys = ApiKeys(ViewDatabase.for_store(store))
    try:
        return keys.create(org, role)[1]
    finally:
        keys.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class ServeProcess:
    def __init__(self, store: StoreSettings, data_dir: Path, *args: str) -> None:
        self.store, self.data_dir, self.args = store, data_dir, args
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log_path = data_dir / f"serve-{self.port}.log"

    def start(self) -> "ServeProcess":
        environment = {**os.environ, "COMMCREDITS_DATABASE_URL": database_url_of(self.store),
                       "COMMCREDITS_DATA_DIR": str(self.data_dir)}
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "commcredits.cli", "serve", "--port", str(self.port), *self.args],
                env=environment, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"serve exited with {self.process.returncode}: {self.log()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"serve did not answer in {START_TIMEOUT_S} s: {self.log()}")
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no clean-up, no last flush."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> int:
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()

    def __enter__(self) -> "ServeProcess":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
