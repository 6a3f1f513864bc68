"""Replay: a projection rebuilt from the whole history into fresh tables equals the live one,
table by table; a live table that drifted is named. Through the CLI too."""

import sqlite3

from typer.testing import CliRunner

from application.billing_application import BillingApplication
from application.reference_data import load_catalog, load_rate_card
from application.settings import sqlite_store
from commcredits.cli import app as cli
from commcredits.scenario import encoded, generate
from commcredits.simulate import Simulation
from projections.balance_view import BalanceView
from projections.ledger import Ledger
from projections.projector import Projector
from projections.replay import replay
from projections.runner import catch_up
from projections.sources import StoreLog
from projections.usage_report import UsageReport
from projections.view_database import ViewDatabase


def month(store) -> BillingApplication:
    app = BillingApplication(env=store.env)
    Simulation(app, load_rate_card(None), load_catalog(None)).run(
        encoded(line) for line in generate(organizations=3, users=30, cdrs=600, seed=4))
    return app


def test_rebuilt_projections_equal_the_live_ones_and_leave_no_tables_behind(store):
    app = month(store)
    database = ViewDatabase.for_store(store)
    try:
        for name, make in (("balance", BalanceView), ("ledger", Ledger), ("usage", UsageReport)):
            catch_up(Projector(make(name), database), StoreLog(app))  # live, built as events came
            result = replay(make, name, database, StoreLog(app))
            assert result.equal, (name, result.live, result.rebuilt)
            assert result.end == app.recorder.max_notification_id() and result.applied > 0
            leftovers = [table for table, _ in make(f"{name}_replay").checksummed if _exists(database, table)]
            assert leftovers == []
    finally:
        database.close()
        app.close()


def _exists(database: ViewDatabase, table: str) -> bool:
    try:
        database.query(f"SELECT 1 FROM {table} LIMIT 1")
        return True
    except Exception:
        return False


def test_a_live_table_that_drifted_is_named(store):
    app = month(store)
    database = ViewDatabase.for_store(store)
    view = BalanceView()
    try:
        catch_up(Projector(view, database), StoreLog(app))
        with database.transaction() as cursor:
            cursor.execute(f"UPDATE {view.lots} SET remaining = '1234.0000' WHERE lot_number = 1")
        result = replay(BalanceView, "balance", database, StoreLog(app))
    finally:
        database.close()
        app.close()
    assert not result.equal
    assert [table for table in result.live if result.live[table] != result.rebuilt[table]] == ["lots"]


def test_the_replay_command_reports_throughput_and_exits_1_on_a_difference(tmp_path):
    path = tmp_path / "events.sqlite"
    month(sqlite_store(path)).close()
    env = {"COMMCREDITS_DATABASE_URL": f"sqlite:///{path}"}
    runner = CliRunner()
    same = runner.invoke(cli, ["replay", "ledger"], env=env)
    assert same.exit_code == 0, same.output
    assert "events/s" in same.stdout and "DIFFERENT" not in same.stdout
    with sqlite3.connect(tmp_path / "events.views.sqlite") as connection:
        connection.execute("DELETE FROM view_ledger_entries WHERE number = 2")
    different = runner.invoke(cli, ["replay", "ledger"], env=env)
    assert different.exit_code == 1
    assert "entries" in different.stdout and "DIFFERENT" in different.stdout
    unknown = runner.invoke(cli, ["replay", "nothing"], env=env)
    assert unknown.exit_code == 2 and "there are: balance, usage, ledger, statements" in unknown.stderr
