"""Item 4: identifiers follow SPEC §2 wherever input enters; display names lose NULs and are
shown safely.

Before: a NUL in a user id of `users import` was stored, and every later read of a PostgreSQL
store (`balance`, `project --once`, `audit verify`) failed for every organization with
`DataError: PostgreSQL text fields cannot contain NUL`; `" "`, newlines, escape codes and
100,000-character ids were accepted.
"""

import pytest

from domain.codes import parse_identifier
from domain.errors import InvalidInput
from tests.support import simulate_commands

AT = "2026-01-01T00:00:00Z"
ORG = {"type": "organization.created", "at": AT, "org": "contoso", "name": "Contoso", "country": "US",
       "currency": "USD", "commerce": "legacy", "agreements": ["EA-1"]}
USER = {"type": "user.added", "at": AT, "org": "contoso", "user": "alice@contoso.com", "usage_location": "US"}
ORDER = {"type": "order.placed", "at": AT, "org": "contoso", "order": "o-1", "funds": "10",
         "auto_recharge": {"enabled": False}, "payment": {"method": "card", "card": "visa-1", "expires": "2030-01"}}
FUNDS = {"type": "funds.added", "at": AT, "org": "contoso", "amount": "5", "request_id": "r-1"}
CDR = {"type": "cdr", "usage_id": "u1", "org": "contoso", "user": "alice@contoso.com", "call_type": "user_out",
       "caller_number": "+14255550100", "destination_number": "+12065550123", "start_time": "2026-01-05T10:00:00Z",
       "end_time": "2026-01-05T10:01:00Z", "duration_seconds": 60, "call_id": "c-1"}
LICENCES = {"type": "licences.assigned", "at": AT, "org": "contoso", "users": ["alice@contoso.com"],
            "licences": ["E5"]}
EA_PAYMENT = {"type": "payment_method.updated", "at": AT, "org": "contoso",
              "payment": {"method": "enterprise_agreement", "agreement": "EA-1", "po": "PO-1"}}

BAD_IDENTIFIERS = {
    "empty": "", "space": " ", "only white space": "\u00a0\u2003\t", "NUL": "a\x00b", "newline": "alice\n",
    "carriage return": "a\rb", "escape code": "\x1b[31mred", "DEL": "a\x7f", "C1 control": "a\x85b",
    "last C1 control": "a\x9fb", "129 code points": "é" * 129, "100,000 characters": "x" * 100_000,
    "number": 12, "null": None, "list": ["a"], "object": {"a": "b"}, "bool": True,
}
GOOD_IDENTIFIERS = {"128 code points": "é" * 128, "one character": "a", "SQL": "'; DROP TABLE events; --",
                    "inner spaces": "a b", "emoji": "☎️📞", "right-to-left": "שלום"}

# (line, the path of an identifier field inside it); every identifier field SPEC §2 lists
FIELDS = [
    ("org", ORG, ("org",)), ("user", USER, ("user",)), ("users item", LICENCES, ("users", 0)),
    ("agreements item", ORG, ("agreements", 0)), ("order", ORDER, ("order",)), ("request_id", FUNDS, ("request_id",)),
    ("usage_id", CDR, ("usage_id",)), ("call_id", CDR, ("call_id",)), ("payment.card", ORDER, ("payment", "card")),
    ("payment.agreement", EA_PAYMENT, ("payment", "agreement")), ("payment.po", EA_PAYMENT, ("payment", "po")),
    ("cdr user", CDR, ("user",)), ("cdr org", CDR, ("org",)),
]


def _with(line: dict, path: tuple, value) -> dict:
    import copy
    changed = copy.deepcopy(line)
    parent = changed
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = value
    return changed


def _setup_for(line: dict) -> list[dict]:
    if line is ORG:
        return []
    setup = [ORG, USER]
    if line in (FUNDS, EA_PAYMENT):
        setup.append(ORDER)
    return setup


@pytest.mark.parametrize("value", BAD_IDENTIFIERS.values(), ids=BAD_IDENTIFIERS.keys())
def test_parse_identifier_refuses(value):
    with pytest.raises(InvalidInput):
        parse_identifier(value, field="org")


@pytest.mark.parametrize("value", GOOD_IDENTIFIERS.values(), ids=GOOD_IDENTIFIERS.keys())
def test_parse_identifier_accepts(value):
    assert parse_identifier(value, field="org") == value


@pytest.mark.parametrize("value", [v for k, v in BAD_IDENTIFIERS.items() if k not in ("null",)],
                         ids=[k for k in BAD_IDENTIFIERS if k not in ("null",)])
@pytest.mark.parametrize("name,line,path", FIELDS, ids=[field[0] for field in FIELDS])
def test_every_identifier_field_of_every_line_refuses_bad_values(name, line, path, value):
    if name == "request_id" and value is None:
        pytest.skip("request_id is optional: null means absent")
    setup = _setup_for(line)
    report = simulate_commands([*setup, _with(line, path, value)])
    assert report["rejected"] == [{"line": len(setup) + 1, "code": "invalid_input"}]


@pytest.mark.parametrize("value", GOOD_IDENTIFIERS.values(), ids=GOOD_IDENTIFIERS.keys())
def test_good_identifiers_are_accepted_in_cdrs(value):
    report = simulate_commands([ORG, USER, ORDER, LICENCES, _with(CDR, ("usage_id",), value)])
    assert report["rejected"] == [] and list(report["calls"]) == [value]


def test_a_display_name_loses_its_nuls_and_keeps_the_rest():
    report = simulate_commands([{**ORG, "name": "Con\x00toso \x1b[31m Ltd"}])
    assert report["rejected"] == []


@pytest.mark.parametrize("name", ["", " ", "\x00", 12, None, ["Contoso"], "x" * 257])
def test_a_display_name_that_is_empty_not_text_or_too_long_is_invalid_input(name):
    report = simulate_commands([{**ORG, "name": name}])
    assert report["rejected"] == [{"line": 1, "code": "invalid_input"}]


def test_a_nul_in_an_imported_user_id_is_refused_and_the_store_stays_readable(cli, tmp_path):
    """The reported reproduction, on SQLite and PostgreSQL: the import is refused (nothing
    applied, the row named), and every read of the store still works afterwards."""
    users = tmp_path / "users.csv"
    users.write_bytes(b"user,usage_location\nalice@contoso.com,US\nbad\x00user@contoso.com,US\n")
    cli("org", "create", "contoso", "--name", "Contoso \x1b[2J Ltd", "--country", "US", "--currency", "USD",
        "--at", "2026-01-01T00:00:00Z")
    refused = cli("users", "import", "contoso", str(users), "--at", "2026-01-01T00:00:00Z", expect=1)
    assert "invalid_input" in refused.stderr and "row 3" in refused.stderr and "control character" in refused.stderr
    cli("users", "add", "contoso", "carol@contoso.com", "--location", "US", "--at", "2026-01-01T00:00:00Z")
    page = cli("balance", "contoso").stdout
    assert "\x1b" not in page and "Contoso \\x1b[2J Ltd (contoso)" in page
    cli("project", "--once")
    cli("audit", "verify")


@pytest.mark.parametrize("org", ["", " ", "a\nb", "x" * 129, "\x1b[31m"])
def test_the_admin_cli_refuses_a_bad_organization_id(cli, org):
    result = cli("org", "create", org, "--name", "X", "--country", "US", "--currency", "USD", expect=1)
    assert result.stderr.startswith("commcredits: invalid_input: org ")
