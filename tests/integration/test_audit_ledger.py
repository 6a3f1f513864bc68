"""The audit ledger on SQLite and PostgreSQL: balanced, chained entries derived from the money
events; `verify` passes on an intact history and names the first thing that is wrong when a
stored event or a ledger row was changed, added or removed."""

import sqlite3
from decimal import Decimal

import orjson
import psycopg
import pytest

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from commcredits.simulate import Simulation
from projections.balance_view import BalanceView
from projections.ledger import Ledger
from projections.ledger_rules import ACCOUNTS, PREPAID, entry_hash
from projections.ledger_verify import verify_ledger
from projections.projector import Projector
from projections.runner import catch_up
from projections.sources import StoreLog
from projections.view_database import ViewDatabase
from tests.support import SPEC_EXAMPLES, SPEC_RATES

EXAMPLES = sorted(path.stem for path in SPEC_EXAMPLES.glob("*.jsonl"))


class Audited:
    """A store with a history, its ledger and balance view caught up, and raw SQL access to
    both databases (what a tamperer would use)."""

    def __init__(self, store, example: str = "02-expiry-and-recharge") -> None:
        self.store = store
        self.app = BillingApplication(env=store.env)
        Simulation(self.app, SPEC_RATES, load_catalog(None)).run((SPEC_EXAMPLES / f"{example}.jsonl").read_bytes().splitlines())
        self.database = ViewDatabase.for_store(store)
        self.ledger, self.balances = Ledger(), BalanceView()
        for projection in (self.ledger, self.balances):
            catch_up(Projector(projection, self.database), StoreLog(self.app))

    def verify(self):
        return verify_ledger(self.app, self.database, self.ledger, self.balances)

    def entries(self) -> list[tuple]:
        return self.database.query(f"SELECT number, position, org, event_type, event_digest, lines, previous_hash, "
                                   f"hash FROM {self.ledger.entries} ORDER BY number")

    def in_views(self, sql: str, params=()) -> None:
        with self.database.transaction() as cursor:
            cursor.execute(sql, params)

    def in_store(self, sql: str, params=()) -> None:
        """`{table}` in `sql` is the events table, `{id}` its notification id column (SQLite's rowid)."""
        env, table = self.store.env, self.app.recorder.events_table_name
        if env["PERSISTENCE_MODULE"] == "eventsourcing.sqlite":
            with sqlite3.connect(env["SQLITE_DBNAME"]) as connection:
                connection.execute(sql.format(table=table, id="rowid"), params)
            return
        with psycopg.connect(dbname=env["POSTGRES_DBNAME"], host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"],
                             user=env["POSTGRES_USER"], options=f"-c search_path={env['POSTGRES_SCHEMA']}",
                             autocommit=True) as connection:
            connection.execute(sql.format(table=table, id="notification_id").replace("?", "%s"), params)

    def stored_state(self, position: int) -> bytes:
        (notification,) = self.app.recorder.select_notifications(position, 1)
        return notification.state

    def close(self) -> None:
        self.database.close()
        self.app.close()


@pytest.fixture
def audited(store):
    history = Audited(store)
    yield history
    history.close()


def first_call_entry(audited: Audited) -> tuple:
    return next(entry for entry in audited.entries() if entry[3] == "CreditAccount.CallRated")


@pytest.mark.parametrize("example", EXAMPLES)
def test_an_intact_history_verifies_and_every_entry_balances(example, store):
    history = Audited(store, example)
    try:
        result = history.verify()
        entries = history.entries()
        report = orjson.loads((SPEC_EXAMPLES / f"{example}.expected.json").read_bytes())["organizations"]
    finally:
        history.close()
    assert result.ok, result.problems
    assert [entry[0] for entry in entries] == list(range(1, len(entries) + 1))
    for entry in entries:
        lines = orjson.loads(entry[5])
        assert {line["account"] for line in lines} <= set(ACCOUNTS)
        assert sum(Decimal(line["debit"]) for line in lines) == sum(Decimal(line["credit"]) for line in lines) > 0
    for org, organization in report.items():  # the ledger's prepaid credit is the SPEC report's balance
        prepaid = sum(Decimal(line["credit"]) - Decimal(line["debit"]) for entry in entries if entry[2] == org
                      for line in orjson.loads(entry[5]) if line["account"] == PREPAID)
        assert prepaid == Decimal(organization["balance"])


def test_a_stored_event_changed_after_it_was_journaled_is_named(audited):
    number, position = first_call_entry(audited)[:2]
    state = audited.stored_state(position)
    assert b'"debited":"0.3500"' in state  # 02-expiry-and-recharge's first call took 0.35 from the lots
    audited.in_store("UPDATE {table} SET state = ? WHERE {id} = ?",
                     (state.replace(b'"debited":"0.3500"', b'"debited":"0.0500"'), position))
    result = audited.verify()
    assert result.problems[0] == (f"event {position} (CreditAccount.CallRated): its stored contents changed after "
                                  f"it was journaled in entry {number}")


def test_a_ledger_line_changed_in_place_is_named(audited):
    number, position, _, _, _, lines, _, _ = first_call_entry(audited)
    forged = lines.replace('"0.3500"', '"0.0500"')
    audited.in_views(f"UPDATE {audited.ledger.entries} SET lines = ? WHERE number = ?", (forged, number))
    result = audited.verify()
    assert result.problems[0] == (f"entry {number} (event {position}, CreditAccount.CallRated): its hash does not "
                                  "match its contents: the entry was changed")


def test_a_changed_entry_with_its_hash_recomputed_breaks_the_chain_at_the_next_entry(audited):
    number, position, org, event_type, digest, lines, previous, _ = first_call_entry(audited)
    forged = orjson.loads(lines)
    forged[0]["debit"] = forged[1]["credit"] = "0.0500"  # still balanced
    forged_hash = entry_hash(number, position, event_type, digest, org, forged, previous)
    audited.in_views(f"UPDATE {audited.ledger.entries} SET lines = ?, hash = ? WHERE number = ?",
                     (orjson.dumps(forged, option=orjson.OPT_SORT_KEYS).decode(), forged_hash, number))
    result = audited.verify()
    assert result.problems[0] == f"entry {number} (event {position}, {event_type}): its lines are not what the event posts"
    following = audited.entries()[number]  # the entry after the forged one (numbers start at 1)
    assert (f"entry {following[0]} (event {following[1]}, {following[3]}): previous_hash does not match the hash of "
            "the entry before: the chain is broken") in result.problems
    assert any(problem.startswith("organization fabrikam: credit balance") for problem in result.problems)


def test_a_removed_entry_and_a_removed_event_are_named(audited):
    number, position = first_call_entry(audited)[:2]
    audited.in_views(f"DELETE FROM {audited.ledger.entries} WHERE number = ?", (number,))
    result = audited.verify()
    assert result.problems[0] == (f"event {position} (CreditAccount.CallRated) moves money but has no ledger entry")
    assert any("expected entry number" in problem for problem in result.problems)


def test_an_event_removed_from_the_store_is_named(audited):
    last = audited.entries()[-1]
    audited.in_store("DELETE FROM {table} WHERE {id} = ?", (last[1],))
    result = audited.verify()
    assert result.problems[0] == (f"entry {last[0]} (event {last[1]}, {last[3]}): the store holds no money event "
                                  f"at position {last[1]}")
