"""Item 1 (validation): any JSON value in any field of any line ends as a command or as
`invalid_input`, never as another exception.

The consumer and `simulate` both go through `application.inputs`; an exception other than
`InvalidInput` there (a `TypeError` from `[] in frozenset(...)`, say) was what made a batch's
recovery path lose CDRs and `simulate` exit 1 without a report. These laws feed hostile values
into every field (and every nested field) of otherwise good lines.
"""

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.inputs import cdr_from_document, command_from_document, decode_json_object
from domain.errors import InvalidInput
from tests.support import SPEC_EXAMPLES


def _good_lines() -> list[dict[str, Any]]:
    """The spec examples' lines that validate (some are malformed on purpose)."""
    good = []
    for name in ("01-basics", "03-nce-pools-bulk", "04-idempotent-retries"):
        for raw in (SPEC_EXAMPLES / f"{name}.jsonl").read_bytes().splitlines():
            try:
                command_from_document(decode_json_object(raw))
            except InvalidInput:
                continue
            good.append(orjson.loads(raw))
    return good


GOOD_LINES = _good_lines()
LINE_TYPES = sorted({line["type"] for line in GOOD_LINES})
HOSTILE_TEXT = st.sampled_from([
    "", " ", "\u00a0", "\n", "a\x00b", "\x1b[31mred", "a" * 129, "é" * 128, "'; DROP TABLE events; --",
    "user_out\x00", "²", "NaN", "Infinity", "-1", "1e400", "9" * 5000, "\ud800".encode("utf-8", "surrogatepass").decode("utf-8", "replace"),
    "2026-01-05T10:00:00", "2199-12-31T23:01:00Z", "+1", "+" + "1" * 20, "toll_free", "user_out",
])
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20) | HOSTILE_TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8)


def _paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path to a value inside a line: top-level fields, nested object fields, list items."""
    paths = [prefix] if prefix else []
    if isinstance(value, dict):
        for key, child in value.items():
            paths += _paths(child, prefix + (key,))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            paths += _paths(child, prefix + (index,))
    return paths


def _replace(document: Any, path: tuple, new: Any, delete: bool) -> Any:
    copy = orjson.loads(orjson.dumps(document))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return copy


@st.composite
def hostile_lines(draw) -> dict[str, Any]:
    line = draw(st.sampled_from(GOOD_LINES))
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(line)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        line = _replace(line, path, draw(JSON_VALUES), delete=draw(st.booleans()))
    return line


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_lines())
def test_any_value_in_any_field_is_a_command_or_invalid_input(line):
    try:
        command_from_document(line)
    except InvalidInput:
        pass


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from([line for line in GOOD_LINES if line["type"] == "cdr"]),
       st.sampled_from(["usage_id", "org", "user", "call_type", "number_type", "caller_number",
                        "destination_number", "start_time", "end_time", "duration_seconds", "call_id",
                        "conference_id"]),
       JSON_VALUES)
def test_any_value_in_any_cdr_field_is_a_cdr_or_invalid_input(cdr, field, value):
    try:
        cdr_from_document({**cdr, field: value})
    except InvalidInput:
        pass


@pytest.mark.parametrize("raw", [b"", b"[]", b"1", b'"x"', b"null", b"\xff\xfe", b"{", b'{"a":NaN}',
                                 b'{"a":1e400}', b'{"a":' + b"9" * 5000 + b"}", b"[" * 10000 + b"]" * 10000,
                                 b'{"a":"\\ud800"}'])
def test_any_bytes_are_an_object_or_invalid_input(raw):
    try:
        document = decode_json_object(raw)
    except InvalidInput:
        return
    assert isinstance(document, dict)


@pytest.mark.parametrize("call_type", [[], {}, [1], {"a": 1}, ["user_out"]])
def test_a_call_type_that_is_not_a_string_is_invalid_input(call_type):
    cdr = next(line for line in GOOD_LINES if line["type"] == "cdr")
    with pytest.raises(InvalidInput, match="call_type"):
        cdr_from_document({**cdr, "call_type": call_type})


def test_simulate_reports_the_batch_of_the_issue_instead_of_exiting(tmp_path):
    """The reported reproduction: `simulate` exited 1 with `TypeError: unhashable type: 'list'`."""
    import subprocess
    import sys

    setup = (SPEC_EXAMPLES / "01-basics.jsonl").read_bytes().splitlines()[:8]
    cdr = next(line for line in GOOD_LINES if line["type"] == "cdr")
    names = ["A1", "A2", "X", "B1", "B2", "Y", "C1", "D1", "Z", "E1"]
    bad = {"X": [], "Y": {}, "Z": [1]}
    lines = [orjson.dumps({**cdr, "usage_id": name, "call_type": bad.get(name, cdr["call_type"])}) for name in names]
    scenario = tmp_path / "scenario.jsonl"
    scenario.write_bytes(b"\n".join(setup + lines) + b"\n")
    result = subprocess.run([sys.executable, "-m", "commcredits.cli", "simulate", str(scenario), "--rates",
                             str(SPEC_EXAMPLES / "rates.csv")], capture_output=True)
    assert result.returncode == 0, result.stderr
    report = orjson.loads(result.stdout)
    assert sorted(report["calls"]) == sorted(name for name in names if name not in bad)
    assert [entry for entry in report["rejected"] if entry["line"] > len(setup)] == [
        {"line": len(setup) + 1 + names.index(name), "code": "invalid_input"} for name in ("X", "Y", "Z")]
