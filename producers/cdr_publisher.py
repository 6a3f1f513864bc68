"""Publish a file of CDRs (SPEC §10) to the CDR topic, as a call-switch integration would.

Steps and guarantees of `publish_cdrs`:
1. The input is streamed line by line (JSON Lines or CSV): memory does not grow with the file.
2. Each line is read into (key = the `org`, value = the CDR's bytes). JSON Lines values are the
   line's bytes as given, not re-serialised: the consumer is the one that validates. Lines whose
   `type` is present and not `cdr` (commands of a simulate scenario) are skipped and counted;
   blank lines are ignored. A line that is not a JSON object with a non-empty string `org` is
   not published: it is reported through `on_error` with its line number and reading goes on.
3. Sends are asynchronous, with at most `MAX_IN_FLIGHT_MESSAGES` unanswered at once (kafka-python
   3 has no `buffer_memory` bound of its own). Outcomes are counted by callbacks, not by keeping
   futures, and the producer is flushed at the end: `published` counts only messages the broker
   confirmed (acks=all, idempotent, so a retried batch is not written twice).
4. The first delivery failure stops the reading (the broker is failing); the messages already in
   flight are still flushed and counted. Re-publishing the whole file is safe: the rater
   acknowledges a duplicate `usage_id` and changes nothing (SPEC §6).
"""

import csv
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import orjson
from kafka import KafkaProducer
from kafka.errors import KafkaError

from application.bounded_lines import OverlongLine, bounded_lines

CDR_FIELDS = ("usage_id", "org", "user", "call_type", "number_type", "caller_number", "destination_number",
              "start_time", "end_time", "duration_seconds", "call_id", "conference_id")
INTEGER_FIELDS = frozenset({"duration_seconds"})

# Producer settings (create_producer). Measured with 100,000 CDRs on the embedded broker:
# linger makes no difference here (0-50 ms), batches of 256 KiB publish ~50% faster than the
# default 16 KiB, 1 MiB no faster.
LINGER_MS = 5
BATCH_SIZE_BYTES = 256 * 1024
MAX_BLOCK_MS = 15_000  # send() waiting for topic metadata
BOOTSTRAP_TIMEOUT_MS = 10_000
REQUEST_TIMEOUT_MS = 15_000
DELIVERY_TIMEOUT_MS = 30_000  # a message not confirmed by then fails (and stops the run)

# The in-flight bound: ~300-byte CDRs make it ~6 MB of pending messages at most.
MAX_IN_FLIGHT_MESSAGES = 20_000
IN_FLIGHT_WAIT_TIMEOUT_S = DELIVERY_TIMEOUT_MS / 1000 + 10
IN_FLIGHT_POLL_INTERVAL_S = 0.001
FLUSH_TIMEOUT_S = DELIVERY_TIMEOUT_MS / 1000 + 10
ABORT_FLUSH_TIMEOUT_S = 5  # after a failure: the broker is not coming back in time
CLOSE_TIMEOUT_S = 10

PROGRESS_EVERY_LINES = 1_000
MAX_CDR_BYTES = 1_000_000  # below the producer's max_request_size (1 MiB) with room for the key

_INTEGER = re.compile(r"-?[0-9]+")
_UTF8_BOM = b"\xef\xbb\xbf"


class PublishError(Exception):
    """The input cannot be read at all (unknown CSV columns, ...): nothing was published."""


@dataclass(frozen=True, slots=True)
class Cdr:
    line: int
    key: bytes
    value: bytes


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    reason: str


@dataclass(frozen=True, slots=True)
class Skipped:
    line: int


Outcome = Cdr | LineError | Skipped


@dataclass(frozen=True)
class PublishSummary:
    topic: str
    published: int
    skipped: int
    errors: int
    failed: int
    elapsed_s: float
    failure: str | None = None

    @property
    def rate_per_s(self) -> float:
        return self.published / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def line(self) -> str:
        return (f"published {self.published} CDRs to {self.topic} (skipped {self.skipped} non-CDR lines, "
                f"{self.errors} errors) in {self.elapsed_s:.2f} s ({self.rate_per_s:.0f}/s)")


class ByteCounter:
    """Yields the stream's lines, each bounded (`application.bounded_lines`: an `OverlongLine`
    for a line longer than a message may be, read without keeping it), and counts the bytes
    read, for a progress bar's total."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.bytes_read = 0

    def __iter__(self) -> Iterator[bytes | OverlongLine]:
        for raw in bounded_lines(self.stream, MAX_CDR_BYTES):
            self.bytes_read += raw.length if isinstance(raw, OverlongLine) else len(raw)
            yield raw


# --- reading ------------------------------------------------------------------------------------

def _cdr_or_error(line: int, document: object, value: bytes) -> Cdr | LineError:
    if not isinstance(document, dict):
        return LineError(line, "not a JSON object")
    org = document.get("org")
    if not isinstance(org, str) or not org:
        return LineError(line, 'no "org" (a non-empty string)')
    if len(value) > MAX_CDR_BYTES:
        return LineError(line, f"{len(value)} bytes, more than a message may hold ({MAX_CDR_BYTES})")
    return Cdr(line, org.encode(), value)


def read_jsonl_line(line: int, raw: bytes | OverlongLine) -> Outcome | None:
    """One JSON Lines line: a CDR, a skipped command, an error, or None for a blank line."""
    if isinstance(raw, OverlongLine):
        return LineError(line, raw.reason(MAX_CDR_BYTES))
    value = raw.rstrip(b"\r\n")
    if not value.strip():
        return None
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError as error:
        return LineError(line, f"not JSON: {error.msg} at column {error.colno}")
    if isinstance(document, dict) and document.get("type", "cdr") != "cdr":
        return Skipped(line)
    return _cdr_or_error(line, document, value)


def read_jsonl(lines: Iterable[bytes | OverlongLine]) -> Iterator[Outcome]:
    for number, raw in enumerate(lines, start=1):
        outcome = read_jsonl_line(number, raw)
        if outcome is not None:
            yield outcome


def check_csv_header(header: list[str]) -> None:
    unknown = [name for name in header if name not in CDR_FIELDS]
    if unknown:
        raise PublishError(f"CSV header: unknown columns {', '.join(unknown)} "
                           f"(SPEC §10 fields: {', '.join(CDR_FIELDS)})")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise PublishError(f"CSV header: repeated columns {', '.join(repeated)}")
    if "org" not in header:
        raise PublishError("CSV header: no org column")


def csv_row_document(header: list[str], row: list[str]) -> dict[str, object]:
    """The row's non-empty cells as a CDR document; ValueError says what is wrong with the row."""
    if len(row) != len(header):
        raise ValueError(f"{len(row)} cells, the header has {len(header)}")
    document: dict[str, object] = {}
    for name, cell in zip(header, row):
        if cell == "":
            continue
        if name in INTEGER_FIELDS:
            if not _INTEGER.fullmatch(cell):
                raise ValueError(f"{name} is not an integer: {cell!r}")
            document[name] = int(cell)
        else:
            document[name] = cell
    return document


def read_csv_row(line: int, header: list[str], row: list[str]) -> Cdr | LineError | None:
    if not any(row):
        return None
    try:
        document = csv_row_document(header, row)
        value = orjson.dumps(document)
    except ValueError as error:
        return LineError(line, str(error))
    except orjson.JSONEncodeError:  # text decoded with surrogateescape: bytes that are not UTF-8
        return LineError(line, "not UTF-8")
    return _cdr_or_error(line, document, value)


def _decoded(lines: Iterable[bytes | OverlongLine], overlong: dict[int, OverlongLine]) -> Iterator[str]:
    """Lines as text; bytes that are not UTF-8 survive as surrogates and fail at encoding. An
    overlong line becomes an empty one, noted by its number in `overlong`."""
    for number, raw in enumerate(lines):
        if isinstance(raw, OverlongLine):
            overlong[number + 1] = raw
            yield "\n"
            continue
        if number == 0 and raw.startswith(_UTF8_BOM):
            raw = raw[len(_UTF8_BOM):]
        yield raw.decode("utf-8", "surrogateescape")


def _csv_rows(reader) -> Iterator[tuple[int, list[str] | csv.Error]]:
    """(first line of the row, its cells or the csv module's complaint): a bad row (a cell over the
    field size limit, ...) must not end the file."""
    first_line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            row = error
        yield first_line, row
        first_line = reader.line_num + 1


def read_csv(lines: Iterable[bytes | OverlongLine]) -> Iterator[Outcome]:
    """CSV with a header of SPEC §10 field names; line numbers are the file's (header = line 1)."""
    overlong: dict[int, OverlongLine] = {}
    reader = csv.reader(_decoded(lines, overlong))
    header = next(reader, None)
    if 1 in overlong:
        raise PublishError(f"CSV header: {overlong[1].reason(MAX_CDR_BYTES)}")
    if header is None:
        return
    header = [name.strip() for name in header]
    check_csv_header(header)
    for line, row in _csv_rows(reader):
        if line in overlong:
            outcome = LineError(line, overlong.pop(line).reason(MAX_CDR_BYTES))
        elif isinstance(row, csv.Error):
            outcome = LineError(line, f"not CSV: {row}")
        else:
            outcome = read_csv_row(line, header, row)
        if outcome is not None:
            yield outcome


READERS: dict[str, Callable[[Iterable[bytes | OverlongLine]], Iterator[Outcome]]] = {"jsonl": read_jsonl, "csv": read_csv}


# --- publishing ---------------------------------------------------------------------------------

class Deliveries:
    """Counts the broker's answers and bounds the messages sent but not yet answered.

    The answers come on the producer's I/O thread, or on the sending thread when a future is
    already resolved as its callback is added: the counters are updated under a plain lock. (A
    semaphore per message, the obvious bound, cost a quarter of the throughput.)
    """

    def __init__(self, max_in_flight: int = MAX_IN_FLIGHT_MESSAGES) -> None:
        self.max_in_flight = max_in_flight
        self._lock = threading.Lock()
        self.sent = 0
        self.confirmed = 0
        self.failed = 0
        self.first_failure: str | None = None
        self._given_up = False

    @property
    def in_flight(self) -> int:
        return self.sent - self.confirmed - self.failed

    def wait_for_room(self) -> bool:
        """True once fewer than `max_in_flight` messages are unanswered; False after the timeout."""
        if self.in_flight < self.max_in_flight:
            return True
        deadline = time.monotonic() + IN_FLIGHT_WAIT_TIMEOUT_S
        while self.in_flight >= self.max_in_flight:
            if time.monotonic() > deadline:
                return False
            time.sleep(IN_FLIGHT_POLL_INTERVAL_S)
        return True

    def confirm(self, _metadata) -> None:
        with self._lock:
            if not self._given_up:
                self.confirmed += 1

    def fail(self, error: BaseException) -> None:
        with self._lock:
            if not self._given_up:
                self.failed += 1
            self.note_failure(describe(error))

    def note_failure(self, reason: str) -> None:
        self.first_failure = self.first_failure or reason

    def give_up(self) -> None:
        """Count every message still unanswered as failed, and ignore answers that come later."""
        with self._lock:
            if self.in_flight > 0:
                self.note_failure(f"{self.in_flight} messages unanswered after {self.flush_timeout_s:.0f} s")
                self.failed += self.in_flight
            self._given_up = True

    @property
    def flush_timeout_s(self) -> float:
        """Once the broker failed, waiting long for the rest is pointless."""
        return ABORT_FLUSH_TIMEOUT_S if self.first_failure else FLUSH_TIMEOUT_S


def create_producer(bootstrap_servers: str) -> KafkaProducer:
    """The delivery settings, written out: every message is on all in-sync replicas before it
    counts (acks=all), and retries never duplicate it (idempotence)."""
    return KafkaProducer(
        bootstrap_servers=bootstrap_servers.split(","),
        acks="all",
        enable_idempotence=True,
        linger_ms=LINGER_MS,
        batch_size=BATCH_SIZE_BYTES,
        max_block_ms=MAX_BLOCK_MS,
        bootstrap_timeout_ms=BOOTSTRAP_TIMEOUT_MS,
        request_timeout_ms=REQUEST_TIMEOUT_MS,
        delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
    )


def send_one(producer: KafkaProducer, topic: str, cdr: Cdr, deliveries: Deliveries) -> bool:
    """Send without waiting; False when the producer cannot take the message (the broker fails)."""
    if not deliveries.wait_for_room():
        deliveries.note_failure(f"no broker answer for {IN_FLIGHT_WAIT_TIMEOUT_S:.0f} s")
        return False
    try:
        future = producer.send(topic, value=cdr.value, key=cdr.key)
    except KafkaError as error:
        deliveries.note_failure(describe(error))
        return False
    deliveries.sent += 1
    future.add_callback(deliveries.confirm)
    future.add_errback(deliveries.fail)
    return True


def flush(producer: KafkaProducer, deliveries: Deliveries) -> None:
    """Wait for every answer; a message still unanswered after the timeout counts as failed."""
    try:
        producer.flush(timeout=deliveries.flush_timeout_s)
    except KafkaError:
        pass  # counted by give_up
    deliveries.give_up()


def close(producer: KafkaProducer, deliveries: Deliveries) -> None:
    """Close without raising: kafka-python 3.0.12's close() raises (and leaves its daemon I/O
    thread running) when batches are still pending, which happens only after a broker failure
    that flush() has already counted."""
    try:
        producer.close(timeout=0 if deliveries.first_failure else CLOSE_TIMEOUT_S)
    except KafkaError:
        pass


def describe(error: BaseException) -> str:
    text = str(error)
    return text if text.startswith(type(error).__name__) else f"{type(error).__name__}: {text}"


def publish_outcomes(producer: KafkaProducer, topic: str, outcomes: Iterable[Outcome], deliveries: Deliveries,
                     on_error: Callable[[LineError], None], on_line: Callable[[], None]) -> tuple[int, int]:
    """Send every CDR of `outcomes`, counting answers in `deliveries`; returns (skipped, errors).
    Stops at the first delivery failure."""
    skipped, errors = 0, 0
    for outcome in outcomes:
        on_line()
        if isinstance(outcome, Cdr):
            if deliveries.first_failure or not send_one(producer, topic, outcome, deliveries):
                break
        elif isinstance(outcome, Skipped):
            skipped += 1
        else:
            errors += 1
            on_error(outcome)
    flush(producer, deliveries)
    return skipped, errors


def _ignore(*_args) -> None:
    pass


def publish_cdrs(stream: BinaryIO, file_format: str, bootstrap_servers: str, topic: str, *,
                 on_error: Callable[[LineError], None] = _ignore,
                 on_progress: Callable[[int, int], None] = _ignore) -> PublishSummary:
    """Publish the CDRs of `stream` (binary, `file_format` "jsonl" or "csv") to `topic`.

    `on_error` gets each unreadable line; `on_progress(lines, bytes_read)` is called every
    `PROGRESS_EVERY_LINES` lines and at the end. Raises PublishError for an unusable CSV header
    and kafka.errors.KafkaError when no broker answers at all.
    """
    assert file_format in READERS, file_format
    started = time.perf_counter()
    counter = ByteCounter(stream)
    lines = 0

    def count_line() -> None:
        nonlocal lines
        lines += 1
        if lines % PROGRESS_EVERY_LINES == 0:
            on_progress(lines, counter.bytes_read)

    producer, deliveries = create_producer(bootstrap_servers), Deliveries()
    try:
        skipped, errors = publish_outcomes(producer, topic, READERS[file_format](counter), deliveries,
                                           on_error, count_line)
    finally:
        close(producer, deliveries)
    on_progress(lines, counter.bytes_read)
    return PublishSummary(topic, deliveries.confirmed, skipped, errors, deliveries.failed,
                          time.perf_counter() - started, deliveries.first_failure)
