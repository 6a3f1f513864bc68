"""The README's example commands run as written."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = [line[2:] for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("$ commcredits ")]


def test_readme_has_examples():
    assert COMMANDS


@pytest.mark.slow
def test_readme_commands_succeed_in_order(tmp_path):
    """In order, on one fresh store, as a reader following the README would type them."""
    environment = {**os.environ, "COMMCREDITS_DATA_DIR": str(tmp_path)}
    environment.pop("COMMCREDITS_DATABASE_URL", None)
    for command in COMMANDS:
        argv = shlex.split(command)
        result = subprocess.run([sys.executable, "-m", "commcredits.cli", *argv[1:]], cwd=ROOT, env=environment,
                                capture_output=True, text=True)
        assert result.returncode == 0, (command, result.stderr)
        assert result.stdout.strip(), command
