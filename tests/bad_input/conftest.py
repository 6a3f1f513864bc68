"""The bad-input suite: one file per kind of hostile input (docs/bad-input.md is the index).

It reuses the CLI fixtures of the end-to-end tests: a fresh SQLite file or PostgreSQL schema per
test, and `cli(...)` to run one `commcredits` command against it.
"""

from tests.e2e.conftest import cli, database_url  # noqa: F401  (fixtures)
