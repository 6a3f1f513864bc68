"""`commcredits publish-cdrs FILE`: send a file of CDRs to the CDR topic (docs/pipeline-tools.md).

Exit status: 0 every CDR published; 1 some lines could not be read (reported on stderr with
their line numbers; the others were published); 2 bad usage, an unreadable file or CSV header;
3 the broker failed (no answer, or a message it did not confirm).
"""

import io
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path
from typing import Annotated, BinaryIO

import typer
from kafka.errors import KafkaError
from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from application.settings import SettingsError
from messaging.embedded_broker import BrokerError, ensure_topics, wait_until_answers
from messaging.topics import bootstrap_servers_from_environment, topics_from_environment
from producers.cdr_publisher import LineError, PublishError, PublishSummary, publish_cdrs

EXIT_LINE_ERRORS, EXIT_USAGE, EXIT_BROKER = 1, 2, 3
DEFAULT_PARTITIONS = 4
# Large reads: every refill of a small buffer gives up the GIL to the producer's I/O thread and
# waits to get it back; with 8 KiB reads that wait cost ~15% of the publish rate.
READ_BUFFER_BYTES = 1024 * 1024
BROKER_ANSWER_TIMEOUT_S = 10.0  # not the admin client's default 30 s of `ensure_topics`
PROGRESS_BAR_WIDTH = 24  # characters: the bar and its columns fit in 80
FORMAT_BY_SUFFIX = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv"}


class InputFormat(str, Enum):
    jsonl = "jsonl"
    csv = "csv"


def _fail(message: str, code: int) -> None:
    typer.echo(f"commcredits: {message}", err=True)
    raise typer.Exit(code)


def _format_of(file: Path, given: InputFormat | None) -> str:
    if given is not None:
        return given.value
    if str(file) == "-":
        return "jsonl"
    found = FORMAT_BY_SUFFIX.get(file.suffix.lower())
    if found is None:
        _fail(f"{file}: cannot tell the format from the extension; use --format jsonl or --format csv", EXIT_USAGE)
    return found


def _stdin() -> BinaryIO:
    try:
        return open(sys.stdin.fileno(), "rb", buffering=READ_BUFFER_BYTES, closefd=False)
    except (OSError, ValueError, io.UnsupportedOperation):  # not a real file (tests)
        return sys.stdin.buffer


@contextmanager
def _opened(file: Path) -> Iterator[tuple[BinaryIO, int | None]]:
    """The input as a binary stream and its size in bytes (None for stdin or a pipe)."""
    if str(file) == "-":
        yield _stdin(), None
        return
    try:
        stream = open(file, "rb", buffering=READ_BUFFER_BYTES)  # noqa: SIM115  (closed by the `with` below)
    except OSError as error:
        _fail(f"{file}: cannot be read: {error.strerror or error}", EXIT_USAGE)
    with stream:
        size = os.fstat(stream.fileno()).st_size
        yield stream, size if size > 0 else None


def _display_name(file: Path) -> str:
    return "<stdin>" if str(file) == "-" else str(file)


class LinesPerSecondColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        lines = task.fields.get("lines", 0)
        rate = lines / task.elapsed if task.elapsed else 0.0
        return Text(f"{lines:,} lines {rate:,.0f} lines/s")


def _progress(quiet: bool) -> Progress:
    console = Console(stderr=True)
    columns = (TextColumn("publishing"), BarColumn(bar_width=PROGRESS_BAR_WIDTH), TaskProgressColumn(),
               LinesPerSecondColumn(), TimeElapsedColumn())
    return Progress(*columns, console=console, disable=quiet or not sys.stderr.isatty())


def _publish(stream: BinaryIO, size: int | None, file_format: str, name: str, bootstrap: str, topic: str,
             quiet: bool) -> PublishSummary:
    with _progress(quiet) as progress:
        task = progress.add_task("publish", total=size, lines=0)

        def report(error: LineError) -> None:
            message = f"commcredits: {name}:{error.line}: {error.reason}"
            if progress.disable:
                print(message, file=sys.stderr)
            else:
                progress.console.print(message, markup=False, highlight=False, soft_wrap=True)

        def advance(lines: int, bytes_read: int) -> None:
            progress.update(task, completed=bytes_read, lines=lines)

        return publish_cdrs(stream, file_format, bootstrap, topic, on_error=report, on_progress=advance)


def publish_cdrs_command(
    file: Annotated[Path, typer.Argument(help="JSON Lines or CSV of CDRs (SPEC §10); - reads JSON Lines from stdin.")],
    file_format: Annotated[InputFormat | None, typer.Option(
        "--format", help="Input format (default: from the extension, .jsonl/.json/.ndjson or .csv).")] = None,
    bootstrap_servers: Annotated[str | None, typer.Option(
        help="Kafka host:port[,host:port...] (default: $KAFKA_BOOTSTRAP_SERVERS).")] = None,
    topic: Annotated[str | None, typer.Option(help="CDR topic (default: $COMMCREDITS_CDR_TOPIC or cdr.v1).")] = None,
    partitions: Annotated[int, typer.Option(
        min=1, help="Partitions of the topic if it has to be created.")] = DEFAULT_PARTITIONS,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Publish CDRs to the CDR topic, keyed by organization; commands of a scenario file are skipped."""
    try:
        bootstrap = bootstrap_servers or bootstrap_servers_from_environment()
        topic = topic or topics_from_environment().cdrs
    except SettingsError as error:
        _fail(str(error), EXIT_USAGE)
    if not bootstrap:
        _fail("no Kafka broker given: use --bootstrap-servers or set KAFKA_BOOTSTRAP_SERVERS", EXIT_USAGE)
    file_format = _format_of(file, file_format)
    with _opened(file) as (stream, size):
        try:
            wait_until_answers(bootstrap, timeout_s=BROKER_ANSWER_TIMEOUT_S)
            ensure_topics(bootstrap, {topic: partitions})
            summary = _publish(stream, size, file_format, _display_name(file), bootstrap, topic, quiet)
        except PublishError as error:
            _fail(f"{file}: {error}", EXIT_USAGE)
        except (KafkaError, BrokerError) as error:
            _fail(f"the Kafka broker at {bootstrap} failed: {error}", EXIT_BROKER)
    typer.echo(summary.line())
    if summary.failure is not None:
        _fail(f"the Kafka broker failed ({summary.failure}): {summary.failed} CDRs sent but not confirmed, "
              "the rest of the file not sent; publishing the file again is safe (duplicates are ignored)", EXIT_BROKER)
    if summary.errors:
        raise typer.Exit(EXIT_LINE_ERRORS)


def register(app: typer.Typer) -> None:
    app.command("publish-cdrs")(publish_cdrs_command)
