"""Item 7: input lines are read with a bound; a longer line is rejected by number and the rest
of the file goes on, in flat memory.

Before: `simulate /dev/zero` and `publish-cdrs /dev/zero` read a whole line before checking its
size and ended in `MemoryError` near 4 GB; a 100 MB line cost 487 MB.
"""

import io
import json
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from application.bounded_lines import MAX_LINE_BYTES, OverlongLine, bounded_lines
from tests.support import SPEC_EXAMPLES

HUGE_LINE_BYTES = 120_000_000
MEMORY_SLACK_KB = 40_000  # what a 120 MB line may cost above a run without it (the old reader: ~600 MB)
# Runs the CLI in this process and reports the process's peak memory on stderr as it exits.
PEAK_MEMORY_RUNNER = (
    "import atexit, sys\n"
    "atexit.register(lambda: sys.stderr.write('\\n' + next(l for l in open('/proc/self/status') if l.startswith('VmHWM'))))\n"
    "from commcredits.cli import main\n"
    "sys.argv = ['commcredits', *sys.argv[1:]]\n"
    "main()\n")


@pytest.mark.parametrize("data, expected", [
    (b"", []),
    (b"abcd", [b"abcd"]),  # exactly the limit, no line end
    (b"abcd\n", [b"abcd\n"]),
    (b"abcd\r\n", [b"abcd\r\n"]),  # the line end does not count
    (b"abcde\nab\n", [OverlongLine(5), b"ab\n"]),
    (b"abcde", [OverlongLine(5)]),
    (b"abcdefghijklmnop\r\nx", [OverlongLine(16), b"x"]),
    (b"\n\n", [b"\n", b"\n"]),
])
def test_bounded_lines_marks_lines_over_the_limit(data, expected):
    assert list(bounded_lines(io.BytesIO(data), max_bytes=4)) == expected


@given(st.lists(st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"")), max_size=20), st.integers(1, 30))
def test_every_line_comes_out_once_whole_or_as_its_length(lines, limit):
    data = b"".join(line + b"\n" for line in lines)
    out = list(bounded_lines(io.BufferedReader(io.BytesIO(data), buffer_size=16), max_bytes=limit))
    assert len(out) == len(lines)
    for line, item in zip(lines, out):
        content = line.rstrip(b"\r")
        if len(content) <= limit:
            assert item == line + b"\n"
        else:
            assert item == OverlongLine(len(content))


def file_with_a_huge_first_line(tmp_path, rest: bytes, size: int = HUGE_LINE_BYTES):
    """A sparse file: `size` zero bytes (one line, never in memory here), a line end, then `rest`."""
    path = tmp_path / "input.jsonl"
    with open(path, "wb") as handle:
        handle.seek(size)
        handle.write(b"\n" + rest)
    return path


def run_measured(*arguments, stdin=None) -> tuple[subprocess.CompletedProcess, int]:
    result = subprocess.run([sys.executable, "-c", PEAK_MEMORY_RUNNER, *map(str, arguments)], capture_output=True,
                            stdin=stdin, timeout=300)
    peak_kb = int(result.stderr.decode().strip().splitlines()[-1].split()[1])
    return result, peak_kb


def test_simulate_rejects_a_huge_line_and_goes_on_in_flat_memory(tmp_path):
    basics = (SPEC_EXAMPLES / "01-basics.jsonl").read_bytes()
    huge = file_with_a_huge_first_line(tmp_path, basics)
    plain = tmp_path / "plain.jsonl"
    plain.write_bytes(b"{}\n" + basics)
    result, peak_kb = run_measured("simulate", huge)
    baseline, baseline_kb = run_measured("simulate", plain)
    assert result.returncode == 0, result.stderr[-2000:]
    report, expected = json.loads(result.stdout), json.loads(baseline.stdout)
    assert report["rejected"][0] == {"line": 1, "code": "invalid_input"}
    assert report == expected  # line 1 rejected either way, every other line as without it
    assert peak_kb < baseline_kb + MEMORY_SLACK_KB, (peak_kb, baseline_kb)


def test_simulate_reads_stdin_with_the_same_bound(tmp_path):
    huge = file_with_a_huge_first_line(tmp_path, b'{"type":"clock","at":"2026-01-01T00:00:00Z"}\n',
                                       size=MAX_LINE_BYTES + 1)
    with open(huge, "rb") as stdin:
        result, _ = run_measured("simulate", "-", stdin=stdin)
    assert result.returncode == 0
    assert json.loads(result.stdout)["rejected"] == [{"line": 1, "code": "invalid_input"}]


@pytest.mark.parametrize("file_format, rest", [
    ("jsonl", b'{"usage_id":"u1","org":"contoso"}\n'),
    ("csv", None),
])
def test_publish_cdrs_reports_a_huge_line_and_publishes_the_rest_in_flat_memory(tmp_path, kafka_broker,
                                                                                   unique_topics, file_format, rest):
    if file_format == "csv":  # the header first, then the huge row, then a good row
        path = tmp_path / "cdrs.csv"
        with open(path, "wb") as handle:
            handle.write(b"usage_id,org\n")
            handle.seek(13 + HUGE_LINE_BYTES)
            handle.write(b"\nu1,contoso\n")
        huge_line = 2
    else:
        path, huge_line = file_with_a_huge_first_line(tmp_path, rest), 1
    result, peak_kb = run_measured("publish-cdrs", path, "--format", file_format, "--bootstrap-servers",
                                   kafka_broker.bootstrap_servers, "--topic", unique_topics.cdrs, "--quiet")
    plain = tmp_path / f"plain.{file_format}"
    plain.write_bytes(b"usage_id,org\nu1,contoso\n" if file_format == "csv" else rest)
    _, baseline_kb = run_measured("publish-cdrs", plain, "--format", file_format, "--bootstrap-servers",
                                  kafka_broker.bootstrap_servers, "--topic", unique_topics.cdrs, "--quiet")
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert f":{huge_line}: line of {HUGE_LINE_BYTES} bytes or more, longer than the limit" in stderr
    assert result.stdout.decode().startswith("published 1 CDRs")
    assert peak_kb < baseline_kb + MEMORY_SLACK_KB, (peak_kb, baseline_kb)
