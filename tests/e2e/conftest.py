"""Fixtures of the CLI tests that run commands against a persistent store, one invocation each."""

import pytest
from typer.testing import CliRunner

from commcredits.cli import app
from tests.conftest import POSTGRES_URL


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path) -> str:
    """A fresh store: a SQLite file, or a schema of its own on the PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store' / 'events.sqlite'}"
    return f"{POSTGRES_URL}?schema={request.getfixturevalue('postgres_schema')}"


@pytest.fixture
def cli(database_url):
    """`cli("org", "create", ...)`: one `commcredits` run on `database_url`, with the exit status expected."""
    runner = CliRunner()

    def invoke(*args: str, expect: int = 0):
        result = runner.invoke(app, list(args), env={"COMMCREDITS_DATABASE_URL": database_url})
        assert result.exit_code == expect, (args, result.exit_code, result.stdout, result.stderr, result.exception)
        return result

    return invoke
