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


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_succeeds(command, tmp_path):
    argv = shlex.split(command)
    environment = {**os.environ, "COMMCREDITS_DATA_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "commcredits.cli", *argv[1:]], cwd=ROOT, env=environment,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
