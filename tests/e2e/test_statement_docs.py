"""docs/statements.md's example runs as written: the command's output is the block shown."""

import shlex
from pathlib import Path

from typer.testing import CliRunner

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from application.settings import sqlite_store
from commcredits.simulate import Simulation
from tests.e2e.test_statement_cli import statement_app
from tests.support import SPEC_EXAMPLES, SPEC_RATES

DOCUMENT = Path(__file__).resolve().parents[2] / "docs" / "statements.md"


def example() -> tuple[str, str]:
    """The first `$ commcredits statement` line and the lines after it up to the block's end."""
    lines = DOCUMENT.read_text().splitlines()
    start = next(number for number, line in enumerate(lines) if line.startswith("$ commcredits statement "))
    end = lines.index("```", start)
    return lines[start][2:], "\n".join(lines[start + 1:end]) + "\n"


def test_the_documented_statement_is_what_the_command_prints(tmp_path):
    path = tmp_path / "events.sqlite"
    billing = BillingApplication(env=sqlite_store(path).env)
    try:
        Simulation(billing, SPEC_RATES, load_catalog(None)).run(
            (SPEC_EXAMPLES / "01-basics.jsonl").read_bytes().splitlines())
    finally:
        billing.close()
    command, expected = example()
    result = CliRunner().invoke(statement_app(), shlex.split(command)[1:],
                                env={"COMMCREDITS_DATABASE_URL": f"sqlite:///{path}"})
    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected
