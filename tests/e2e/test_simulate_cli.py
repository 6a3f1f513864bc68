"""`commcredits simulate` as a user meets it: exit codes, messages, streaming."""

import io
import json
import subprocess
import sys
import tracemalloc

import pytest

from application.reference_data import load_catalog, load_rate_card
from application.settings import sqlite_store
from commcredits import simulate as simulate_module
from examples.generate_scenario import generate
from tests.support import SPEC_EXAMPLES, as_lines

BASICS = SPEC_EXAMPLES / "01-basics.jsonl"


def run_cli(*arguments):
    return subprocess.run([sys.executable, "-m", "commcredits.cli", "simulate", *map(str, arguments)],
                          capture_output=True, text=True)


@pytest.mark.parametrize("rates_text, problem", [
    ("prefix,kind,rate_per_minute,connection_fee,currency,effective_from\n1,outbound,0.01,0,USD,2025-01-01T00:00:00Z\n"
     "1,outbound,0.02,0,USD,2025-01-01T00:00:00Z\n", "row 3: duplicate row"),
    ("prefix,kind,rate_per_minute,connection_fee,currency,effective_from\n1,mobile,0.01,0,USD,2025-01-01T00:00:00Z\n",
     "row 2: kind must be one of"),
    ("prefix,kind,rate_per_minute,connection_fee,currency,effective_from\n+1,outbound,0.01,0,USD,2025-01-01T00:00:00Z\n",
     "row 2: prefix must be 1-15 digits"),
    ("prefix,kind,rate_per_minute,connection_fee,currency,effective_from\n1,outbound,0.00001,0,USD,2025-01-01T00:00:00Z\n",
     "row 2: rate_per_minute"),
    ("prefix,kind,rate_per_minute,connection_fee,currency,effective_from\n1,outbound,0.01,0,usd,2025-01-01T00:00:00Z\n",
     "row 2: currency"),
    ("prefix,kind,rate_per_minute,connection_fee,currency,effective_from\n1,outbound,0.01,0,USD,2025-01-01T00:00:00\n",
     "row 2: effective_from"),
    ("prefix,kind,rate\n1,outbound,0.01\n", "row 1: header must be"),
])
def test_a_rates_file_that_does_not_load_exits_2_naming_file_and_row(tmp_path, rates_text, problem):
    rates = tmp_path / "rates.csv"
    rates.write_text(rates_text)
    result = run_cli(BASICS, "--rates", rates)
    assert result.returncode == 2
    assert result.stdout == ""
    assert str(rates) in result.stderr and problem in result.stderr


@pytest.mark.parametrize("catalog_text, problem", [
    ('{"minutes": {"DOMESTIC": {"us": 3000}}}', "'us' is not an ISO 3166"),
    ('{"minutes": {"LOCAL": {"*": 1}}}', "unknown pool kind 'LOCAL'"),
    ('{"minutes": {"DIALOUT": {"*": 1.5}}}', "whole minutes"),
    ('{"minutes": {"DIALOUT": {"*": -1}}}', "whole minutes"),
    ('{"dialout_countries": "US"}', "dialout_countries must be a list"),
    ('{"extra": 1}', "unknown key"),
    ('not json', "not valid JSON"),
])
def test_a_catalogue_that_does_not_load_exits_2(tmp_path, catalog_text, problem):
    catalog = tmp_path / "catalog.json"
    catalog.write_text(catalog_text)
    result = run_cli(BASICS, "--catalog", catalog)
    assert result.returncode == 2 and result.stdout == ""
    assert str(catalog) in result.stderr and problem in result.stderr


def test_missing_files_exit_2_with_a_message(tmp_path):
    for arguments, name in [((tmp_path / "none.jsonl",), "none.jsonl"),
                            ((BASICS, "--rates", tmp_path / "none.csv"), "none.csv"),
                            ((BASICS, "--catalog", tmp_path / "none.json"), "none.json")]:
        result = run_cli(*arguments)
        assert result.returncode == 2 and result.stdout == "" and name in result.stderr
        assert "Traceback" not in result.stderr


def test_input_from_stdin(tmp_path):
    result = subprocess.run([sys.executable, "-m", "commcredits.cli", "simulate", "-", "--rates",
                             str(SPEC_EXAMPLES / "rates.csv")], input=BASICS.read_bytes(), capture_output=True)
    assert result.returncode == 0
    assert json.loads(result.stdout) == json.loads((SPEC_EXAMPLES / "01-basics.expected.json").read_text())


def _peak_memory_of_simulating(cdrs: int, tmp_path) -> int:
    source = io.BytesIO(b"\n".join(as_lines(generate(organizations=2, users=20, cdrs=cdrs, seed=3))))
    tmp_path.mkdir(exist_ok=True)
    store = sqlite_store(tmp_path / f"events-{cdrs}.sqlite")
    rate_card, catalog = load_rate_card(None), load_catalog(None)
    tracemalloc.start()
    try:
        simulate_module.simulate(source, store, rate_card, catalog, io.BytesIO())
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_input_length(tmp_path, monkeypatch):
    """Four times the CDRs must not need anywhere near four times the memory: call results are
    spooled to disk and events live in the store, not in the process. Parsed phone numbers are
    cached, up to a fixed bound (`domain.phone`) that these inputs do not reach: the cache is
    filled with their numbers first, so that it does not count as growth."""
    monkeypatch.setattr(simulate_module, "SPOOL_IN_MEMORY_BYTES", 64 * 1024)
    monkeypatch.setattr(simulate_module, "FLUSH_EVERY_LINES", 200)
    _peak_memory_of_simulating(6000, tmp_path / "warm-up")
    small = _peak_memory_of_simulating(1500, tmp_path)
    large = _peak_memory_of_simulating(6000, tmp_path)
    assert large < small * 1.6, (small, large)
