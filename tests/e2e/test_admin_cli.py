"""The administrator's commands on a persistent store (a SQLite file and real PostgreSQL).

Every invocation is a separate run against the store, as an operator would type them; the
state they leave is checked against hand-computed figures and against `simulate` on the same
steps written as JSON lines.
"""

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from commcredits.cli import app
from tests.support import simulate_commands

ORG = "contoso"
T0 = "2025-01-01T09:00:00Z"


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def balance(cli) -> dict:
    return orjson.loads(cli("balance", ORG, "--json").stdout)


def create_contoso(cli, *, commerce: str = "legacy") -> None:
    cli("org", "create", ORG, "--name", "Contoso Ltd", "--country", "US", "--currency", "USD",
        "--commerce", commerce, "--agreement", "EA-1", "--at", T0)


def test_the_seed_steps_leave_the_state_simulate_computes_for_the_same_steps(cli, tmp_path):
    users = write_csv(tmp_path / "users.csv", "user,usage_location\nalice@contoso.com,US\nbob@contoso.com,GB\n")
    create_contoso(cli)
    cli("users", "import", ORG, str(users), "--at", T0)
    cli("licences", "assign", ORG, "--licence", "E5", "--licence", "CALLING_PLAN_DOMESTIC",
        "--users-csv", str(users), "--at", T0)
    placed = cli("order", "place", ORG, "--order", "o-1", "--funds", "500", "--auto-recharge",
                 "--recharge-amount", "100", "--trigger-amount", "200", "--agreement", "EA-1", "--po", "PO-7",
                 "--at", "2025-01-02T00:00:00Z")
    assert "balance 500.0000 USD" in placed.stdout
    cli("licences", "assign", ORG, "--licence", "COMMUNICATIONS_CREDITS", "--user", "alice@contoso.com",
        "--at", "2025-01-03T00:00:00Z")
    added = cli("funds", "add", ORG, "99.5", "--request-id", "r-1", "--at", "2025-02-01T00:00:00Z")
    assert "balance 599.5000 USD" in added.stdout
    repeat = cli("funds", "add", ORG, "99.5", "--request-id", "r-1", "--at", "2025-02-01T00:00:00Z")
    assert "nothing changed" in repeat.stdout
    # 2026-01-02: the order's lot (500) expires; 99.5 < trigger 200 → one recharge of 100.
    cli("payment-method", "set", ORG, "--agreement", "EA-1", "--po", "PO-8", "--at", "2026-01-03T00:00:00Z")

    shown = balance(cli)
    assert shown["balance"] == "199.5000"  # 500 + 99.5 + 100 − 500 expired
    assert shown["totals"] == {"funds_added": "699.5000", "charged": "0.0000", "expired": "500.0000",
                               "uncollected": "0.0000", "overage": "0.0000"}
    assert shown["recharges"] == {"triggered": 1, "succeeded": 1, "failed": 0}
    assert [lot["source"] for lot in shown["lots"]] == ["order", "manual", "auto_recharge"]
    assert shown["payment"] == {"method": "enterprise_agreement", "agreement": "EA-1", "po": "PO-8"}

    simulated = simulate_commands([
        {"type": "organization.created", "org": ORG, "name": "Contoso Ltd", "country": "US", "currency": "USD",
         "commerce": "legacy", "agreements": ["EA-1"], "at": T0},
        {"type": "user.added", "org": ORG, "user": "alice@contoso.com", "usage_location": "US", "at": T0},
        {"type": "user.added", "org": ORG, "user": "bob@contoso.com", "usage_location": "GB", "at": T0},
        {"type": "licences.assigned", "org": ORG, "users": ["alice@contoso.com", "bob@contoso.com"],
         "licences": ["E5", "CALLING_PLAN_DOMESTIC"], "at": T0},
        {"type": "order.placed", "org": ORG, "order": "o-1", "funds": "500",
         "auto_recharge": {"enabled": True, "recharge_amount": "100", "trigger_amount": "200"},
         "payment": {"method": "enterprise_agreement", "agreement": "EA-1", "po": "PO-7"},
         "at": "2025-01-02T00:00:00Z"},
        {"type": "licences.assigned", "org": ORG, "users": ["alice@contoso.com"],
         "licences": ["COMMUNICATIONS_CREDITS"], "at": "2025-01-03T00:00:00Z"},
        {"type": "funds.added", "org": ORG, "amount": "99.5", "request_id": "r-1", "at": "2025-02-01T00:00:00Z"},
        {"type": "funds.added", "org": ORG, "amount": "99.5", "request_id": "r-1", "at": "2025-02-01T00:00:00Z"},
        {"type": "payment_method.updated", "org": ORG,
         "payment": {"method": "enterprise_agreement", "agreement": "EA-1", "po": "PO-8"},
         "at": "2026-01-03T00:00:00Z"},
    ])
    assert simulated["rejected"] == []
    expected = simulated["organizations"][ORG]
    assert {key: shown[key] for key in expected} == expected


def test_balance_as_text_names_the_figures_an_administrator_needs(cli):
    create_contoso(cli)
    cli("order", "place", ORG, "--order", "o-1", "--funds", "250.5", "--card", "visa-1", "--card-expires", "2027-12",
        "--at", "2026-01-31T10:00:00Z")
    text = cli("balance", ORG).stdout
    assert "Balance: 250.5000 USD" in text
    assert "Auto-recharge: off" in text
    assert "card visa-1 (expires 2027-12)" in text
    # 2026-01-31 + 12 months keeps the time of day.
    assert "expires 2027-01-31T10:00:00Z" in text


def test_a_card_that_expired_before_the_order_is_declined_and_nothing_changes(cli):
    create_contoso(cli)
    # valid through the last instant of 2026-01; the order is on 2026-02-01.
    declined = cli("order", "place", ORG, "--order", "o-1", "--funds", "100", "--card", "visa-old",
                   "--card-expires", "2026-01", "--at", "2026-02-01T00:00:00Z", expect=1)
    assert declined.stderr.startswith("commcredits: payment_declined: ")
    shown = balance(cli)
    assert shown["credits_active"] is False and shown["lots"] == []


@pytest.mark.parametrize("args, code", [
    (["org", "create", ORG, "--name", "X", "--country", "US", "--currency", "USD", "--at", T0],
     "duplicate_organization"),
    (["org", "create", "fabrikam", "--name", "F", "--country", "us", "--currency", "USD"], "invalid_input"),
    (["users", "add", "nobody-org", "a@b.c", "--location", "US"], "unknown_organization"),
    (["users", "add", ORG, "alice@contoso.com", "--location", "US"], "duplicate_user"),
    (["funds", "add", ORG, "10"], "credits_not_active"),
    (["auto-recharge", "set", ORG, "--disable"], "credits_not_active"),
    (["order", "place", ORG, "--order", "o-1", "--funds", "12.34567", "--agreement", "EA-1"], "invalid_input"),
    (["order", "place", ORG, "--order", "o-1", "--funds", "10", "--agreement", "EA-9"], "unknown_agreement"),
    (["order", "place", ORG, "--order", "o-1", "--funds", "10", "--auto-recharge", "--agreement", "EA-1"],
     "invalid_input"),
    (["order", "place", ORG, "--order", "o-1", "--funds", "10", "--card", "decline-7", "--card-expires", "2099-12"],
     "payment_declined"),
    (["licences", "assign", ORG, "--licence", "CALLING_PLAN_DOMESTIC", "--user", "alice@contoso.com"],
     "licence_prerequisite"),
    (["licences", "assign", ORG, "--licence", "TELEPATHY", "--user", "alice@contoso.com"], "invalid_input"),
    (["licences", "remove", ORG, "--licence", "E5", "--user", "alice@contoso.com"], "licence_not_held"),
    (["balance", "nobody-org"], "unknown_organization"),
])
def test_a_rejected_step_exits_1_with_the_spec_code_and_changes_nothing(cli, args, code):
    create_contoso(cli)
    cli("users", "add", ORG, "alice@contoso.com", "--location", "US", "--at", T0)
    before = balance(cli)
    result = cli(*args, expect=1)
    assert result.stderr.startswith(f"commcredits: {code}: "), result.stderr
    assert result.stdout == ""
    assert balance(cli) == before


def test_an_nce_organization_cannot_order_credits(cli):
    create_contoso(cli, commerce="nce")
    result = cli("order", "place", ORG, "--order", "o-1", "--funds", "10", "--agreement", "EA-1", expect=1)
    assert result.stderr.startswith("commcredits: nce_not_eligible: ")


def test_repeating_an_order_is_a_no_op_and_a_second_order_is_refused(cli):
    create_contoso(cli)
    order = ["order", "place", ORG, "--funds", "100", "--agreement", "EA-1", "--at", "2026-01-02T00:00:00Z"]
    cli(*order, "--order", "o-1")
    assert "already placed" in cli(*order, "--order", "o-1").stdout
    assert cli(*order, "--order", "o-2", expect=1).stderr.startswith("commcredits: already_configured: ")
    assert balance(cli)["totals"]["funds_added"] == "100.0000"


def test_importing_users_is_all_or_nothing_and_names_every_bad_row(cli, tmp_path):
    create_contoso(cli)
    bad = write_csv(tmp_path / "bad.csv", "user,usage_location\nalice@contoso.com,US\nbob@contoso.com,gb\n"
                                          "carol@contoso.com,FR\ndave@contoso.com,XX\n")
    result = cli("users", "import", ORG, str(bad), "--at", T0, expect=1)
    assert result.stderr.startswith("commcredits: invalid_input: 2 of the users rejected, nothing applied")
    assert "row 3:" in result.stderr and "row 5:" in result.stderr and "row 2:" not in result.stderr
    # Nothing was stored: the corrected file imports every user, none is a duplicate.
    good = write_csv(tmp_path / "good.csv", "\ufeffuser,usage_location,department\nalice@contoso.com,US,sales\n"
                                           "bob@contoso.com,GB,\n\ncarol@contoso.com,FR,ops\n")
    assert "added 3 users" in cli("users", "import", ORG, str(good), "--at", T0).stdout
    cli("licences", "assign", ORG, "--licence", "PHONE_SYSTEM", "--users-csv", str(good), "--at", T0)


def test_a_bulk_licence_change_lists_every_failing_user(cli):
    create_contoso(cli)
    cli("users", "add", ORG, "alice@contoso.com", "--location", "US", "--at", T0)
    result = cli("licences", "assign", ORG, "--licence", "PHONE_SYSTEM", "--user", "ghost@contoso.com",
                 "--user", "alice@contoso.com", "--user", "casper@contoso.com", expect=1)
    assert result.stderr.startswith("commcredits: unknown_user: ")
    assert "ghost@contoso.com" in result.stderr and "casper@contoso.com" in result.stderr
    # alice got nothing: removing PHONE_SYSTEM from her is 'not held'.
    assert cli("licences", "remove", ORG, "--licence", "PHONE_SYSTEM", "--user", "alice@contoso.com",
               expect=1).stderr.startswith("commcredits: licence_not_held: ")


def test_an_earlier_at_is_applied_at_the_engines_clock_and_says_so(cli):
    create_contoso(cli)
    # 12:00+02:00 is 10:00Z, after T0 (09:00Z): applied as asked, nothing to say.
    result = cli("users", "add", ORG, "alice@contoso.com", "--location", "US", "--at", "2026-01-01T12:00:00+02:00")
    assert result.stderr == ""
    result = cli("users", "add", ORG, "bob@contoso.com", "--location", "US", "--at", "2025-06-01T00:00:00Z")
    assert "the engine's clock is at 2026-01-01T10:00:00Z" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["order", "place", ORG, "--order", "o", "--funds", "1", "--card", "c", "--card-expires", "2030-01",
      "--agreement", "EA-1"], "exactly one payment method"),
    (["order", "place", ORG, "--order", "o", "--funds", "1", "--card", "c"], "needs --card-expires"),
    (["payment-method", "set", ORG], "exactly one payment method"),
    (["licences", "assign", ORG, "--licence", "E5"], "--user"),
    (["users", "import", ORG, "missing.csv"], "missing.csv: cannot be read"),
    (["users", "import", ORG, "{no_user_column}"], "must name the column(s) user"),
    (["users", "import", ORG, "{header_only}"], "no rows after the header"),
])
def test_bad_usage_and_unreadable_files_exit_2(cli, tmp_path, args, message):
    files = {"{no_user_column}": write_csv(tmp_path / "a.csv", "upn,usage_location\na@b.c,US\n"),
             "{header_only}": write_csv(tmp_path / "b.csv", "user,usage_location\n")}
    create_contoso(cli)
    result = cli(*[str(files.get(arg, arg)) for arg in args], expect=2)
    assert message in result.stderr


def test_an_unusable_store_setting_exits_2_and_an_unreachable_server_exits_3():
    runner = CliRunner()
    wrong = runner.invoke(app, ["balance", ORG], env={"COMMCREDITS_DATABASE_URL": "mysql://db/x"})
    assert wrong.exit_code == 2 and "COMMCREDITS_DATABASE_URL must start with" in wrong.stderr
    down = runner.invoke(app, ["balance", ORG], env={"COMMCREDITS_DATABASE_URL": "postgresql://postgres@127.0.0.1:9/test"})
    assert down.exit_code == 3 and "event store unavailable" in down.stderr
