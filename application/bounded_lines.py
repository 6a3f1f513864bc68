"""Lines of a file, each read with a bound, so that one endless line cannot take the memory.

`for line in stream` reads a whole line before anyone can look at its size: `/dev/zero` ends in
`MemoryError` near 4 GB and a 100 MB line costs about 487 MB. Here a line longer than
`MAX_LINE_BYTES` (its end-of-line not counted) is read and thrown away in chunks, and an
`OverlongLine` stands in its place, so the caller can reject it (`invalid_input`) by number and
go on with the next line. Memory stays bounded by the limit, whatever the input.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

MAX_LINE_BYTES = 1_000_000  # a CDR must also fit a Kafka message (1 MB), so no longer line is useful
DRAIN_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class OverlongLine:
    length: int  # bytes before the line's end (or the end of the input)

    def reason(self, limit: int = MAX_LINE_BYTES) -> str:
        return f"line of {self.length} bytes or more, longer than the limit of {limit} bytes"


def bounded_lines(stream: BinaryIO, max_bytes: int = MAX_LINE_BYTES) -> Iterator[bytes | OverlongLine]:
    """The stream's lines (with their line ending, as `for line in stream` gives them), or an
    `OverlongLine` for each line longer than `max_bytes`."""
    while True:
        line = stream.readline(max_bytes + 2)  # room for "\r\n" after a line of exactly max_bytes
        if not line:
            return
        if len(line.rstrip(b"\r\n")) <= max_bytes:
            yield line
        elif line.endswith(b"\n"):
            yield OverlongLine(len(line.rstrip(b"\r\n")))
        else:
            yield OverlongLine(len(line) + _drain_line(stream))


def _drain_line(stream: BinaryIO) -> int:
    """Read the rest of the current line (up to and including its newline), keeping none of it."""
    drained = 0
    while True:
        chunk = stream.readline(DRAIN_CHUNK_BYTES)
        if not chunk:
            return drained
        if chunk.endswith(b"\n"):
            return drained + len(chunk.rstrip(b"\r\n"))
        drained += len(chunk)
