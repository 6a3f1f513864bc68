"""Item 5: a CSV row with more cells than its header is refused with exit 2 and the row named.

Before: `,,X` under the header `user,usage_location` crashed `users import` and
`licences --users-csv` with `AttributeError` (exit 1): `csv.DictReader` files extra cells under
the key None as a list.
"""

import pytest

ROWS = {
    "extra cell on an empty row": b",,X\n",
    "extra cell after a good row": b"alice@contoso.com,US,X\n",
    "many extra cells": b"a,US,1,2,3,4\n",
}


def _organization(cli):
    cli("org", "create", "contoso", "--name", "Contoso", "--country", "US", "--currency", "USD",
        "--at", "2026-01-01T00:00:00Z")


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_users_import_refuses_a_row_longer_than_the_header(cli, tmp_path, row):
    users = tmp_path / "users.csv"
    users.write_bytes(b"user,usage_location\nbob@contoso.com,US\n" + row)
    _organization(cli)
    result = cli("users", "import", "contoso", str(users), expect=2)
    assert "row 3 has" in result.stderr and "the header names 2" in result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


@pytest.mark.parametrize("row", ROWS.values(), ids=ROWS.keys())
def test_licences_users_csv_refuses_a_row_longer_than_the_header(cli, tmp_path, row):
    users = tmp_path / "users.csv"
    users.write_bytes(b"user,usage_location\n" + row)
    _organization(cli)
    result = cli("licences", "assign", "contoso", "--licence", "E5", "--users-csv", str(users), expect=2)
    assert "row 2 has" in result.stderr


def test_a_short_row_is_read_with_empty_cells(cli, tmp_path):
    """Fewer cells than the header is a missing value: the rules say which (invalid_input)."""
    users = tmp_path / "users.csv"
    users.write_bytes(b"user,usage_location\nbob@contoso.com\n")
    _organization(cli)
    result = cli("users", "import", "contoso", str(users), expect=1)
    assert "invalid_input" in result.stderr and "row 2" in result.stderr
