"""Item 11: the audit chain is anchored outside the views: `audit verify` names a stored event
changed after it was stored, whenever it was changed; `audit checkpoint` / `verify --checkpoint`
catch a rewrite with every later seal recomputed; an event of the wrong type is named, never a
traceback. On SQLite and PostgreSQL (`database_url`).

Before: the only anchor of an event was the digest the ledger projection wrote when it journaled
it, in the views database. An event changed before the projection read it, or changed after and
followed by deleting `events.views.sqlite`, was journaled as changed and `verify` passed; an event
stored with a wrong type made `verify` crash (TypeError, KeyError) or blamed a balance.
"""

import os
import sqlite3
import threading
from pathlib import Path
from urllib.parse import urlparse
from uuid import UUID

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from typer.testing import CliRunner

from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from application.seal_chain import GENESIS_SEAL, batch_entries, batch_seal
from application.settings import store_from_url
from commcredits.cli import app as commcredits
from commcredits.simulate import Simulation
from domain.credit_account import CreditAccount
from projections.store_verify import verify_store
from tests.support import SPEC_EXAMPLES, SPEC_RATES

FUNDS_ADDED, FUNDS_EXPIRED = (f"domain.credit_account:CreditAccount.{name}" for name in ("FundsAdded", "FundsExpired"))


class Store:
    """A store with a history (SPEC example 02, one organization) and raw SQL access to it: what
    a tamperer with the database's credentials would use."""

    def __init__(self, database_url: str) -> None:
        self.url = database_url
        self.app = BillingApplication(env=store_from_url(database_url).env)
        self.events, self.seals = self.app.recorder.events_table_name, self.app.recorder.seals_table_name
        self.postgres = database_url.startswith("postgresql")
        self.id_column = "notification_id" if self.postgres else "rowid"

    def simulate(self, example: str) -> None:
        Simulation(self.app, SPEC_RATES, load_catalog(None)).run(
            (SPEC_EXAMPLES / f"{example}.jsonl").read_bytes().splitlines())

    def sql(self, statement: str, params: tuple = ()) -> list[tuple]:
        """`{events}`, `{seals}` and `{id}` name the tables and the events' position column."""
        statement = statement.format(events=self.events, seals=self.seals, id=self.id_column)
        if not self.postgres:
            with sqlite3.connect(urlparse(self.url).path) as connection:
                return connection.execute(statement, params).fetchall()
        url, _, schema = self.url.partition("?schema=")
        with psycopg.connect(url, options=f"-c search_path={schema}", autocommit=True) as connection:
            cursor = connection.execute(statement.replace("?", "%s"), params)
            return cursor.fetchall() if cursor.description else []

    def first(self, event_type: str) -> tuple[int, UUID, int, bytes]:
        """(position, aggregate, version, state) of the first stored event of the type."""
        position, aggregate, version, state = self.sql(
            "SELECT {id}, originator_id, originator_version, state FROM {events} WHERE topic = ? ORDER BY {id} "
            "LIMIT 1", (f"domain.credit_account:CreditAccount.{event_type}",))[0]
        return position, UUID(str(aggregate)), version, bytes(state)

    def change_first_call(self) -> tuple[int, UUID, int]:
        """Make the first call cost 0.05 instead of 0.35, everywhere in its event, so that the
        ledger, the balance view and the account rebuilt from the events all agree."""
        position, aggregate, version, state = self.first("CallRated")
        assert state.count(b'"0.3500"') == 3  # charge, the lot's debit, debited
        self.sql("UPDATE {events} SET state = ? WHERE {id} = ?", (state.replace(b'"0.3500"', b'"0.0500"'), position))
        return position, aggregate, version

    def reseal_everything_from(self, position: int) -> None:
        """What a tamperer who knows `application.seal_chain` does next: recompute the digests and
        seals of the batch holding `position` and of every batch after it."""
        previous, after = GENESIS_SEAL, 0
        for last, entries, seal in self.app.recorder.select_seals(0, 1000):
            if last >= position:
                entries = batch_entries(self.app.recorder.select_records(after, 10_000, last))
                seal = batch_seal(previous, entries)
                self.sql("UPDATE {seals} SET entries = ?, seal = ? WHERE position = ?", (entries, seal, last))
            previous, after = seal, last

    def delete_views(self) -> None:
        if not self.postgres:
            for path in Path(urlparse(self.url).path).parent.glob("events.views.sqlite*"):
                os.remove(path)
            return
        for (table,) in self.sql("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                                 "AND tablename LIKE ?", ("view%",)):
            self.sql(f"DROP TABLE {table}")

    def close(self) -> None:
        self.app.close()


@pytest.fixture
def history(database_url):
    opened = Store(database_url)
    opened.simulate("02-expiry-and-recharge")
    yield opened
    opened.close()


def audit(history: Store, *args: str, expect: int):
    result = CliRunner().invoke(commcredits, ["audit", *args], env={"COMMCREDITS_DATABASE_URL": history.url})
    assert result.exit_code == expect, (args, result.stdout, result.stderr, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception  # no traceback
    return result


def first_problem(result) -> str:
    return result.stderr.splitlines()[0].removeprefix("commcredits: audit_failed: ")


def changed(position: int, aggregate: UUID, version: int) -> str:
    return (f"event {position} (CreditAccount.CallRated, aggregate {aggregate} version {version}) changed after it "
            "was stored: it no longer matches its seal")


def test_an_untouched_history_passes_verify_and_its_checkpoints_as_it_grows(history):
    audit(history, "verify", expect=0)
    token = audit(history, "checkpoint", expect=0).stdout.strip()
    assert token.startswith("ck1-28-")  # the example stores 28 events, sealed in one batch
    history.simulate("01-basics")  # more history after the checkpoint
    later = audit(history, "checkpoint", expect=0).stdout.strip()
    result = audit(history, "verify", "--checkpoint", token, "--checkpoint", later, expect=0)
    assert result.stdout.splitlines()[1] == (f"store verified: 40 events match their seals in 2 sealed batch(es), "
                                             f"2 checkpoint(s) matched; seal chain head {later}")


def test_an_event_changed_before_the_ledger_journaled_it_is_named(history):
    event = history.change_first_call()  # no projection has read it yet
    assert first_problem(audit(history, "verify", expect=1)) == changed(*event)


def test_an_event_changed_after_it_was_journaled_is_named_when_the_views_are_deleted(history):
    audit(history, "verify", expect=0)  # the ledger journals every money event
    event = history.change_first_call()
    history.delete_views()  # the ledger is rebuilt from the changed event
    assert first_problem(audit(history, "verify", expect=1)) == changed(*event)


def test_an_event_rewritten_with_every_later_seal_recomputed_fails_an_earlier_checkpoint(history):
    token = audit(history, "checkpoint", expect=0).stdout.strip()
    history.simulate("01-basics")
    position, _, _ = history.change_first_call()
    history.reseal_everything_from(position)
    history.delete_views()
    audit(history, "verify", expect=0)  # seals, ledger and balances agree with each other: only an anchor helps
    problem = first_problem(audit(history, "verify", "--checkpoint", token, expect=1))
    assert problem.startswith(f"checkpoint {token}: the events up to position 28 no longer hash to it (now ")
    assert problem.endswith("): history before the checkpoint was changed since it was taken")


def test_an_event_stored_with_the_wrong_type_is_named(history):
    """A FundsAdded state stored as the account's next event with the FundsExpired topic (the
    balance view then crashed with TypeError), through the recorder: it is sealed, so only its
    type is wrong."""
    _, account, _, state = history.first("FundsAdded")
    version = history.sql("SELECT max(originator_version) FROM {events} WHERE originator_id = ?",
                        (account if history.postgres else account.hex,))[0][0] + 1
    (position,) = history.app.recorder.insert_events([StoredEvent(account, version, FUNDS_EXPIRED, state)])
    problem = first_problem(audit(history, "verify", expect=1))
    assert problem == (f"event {position} (CreditAccount.FundsExpired, aggregate {account} version {version}): its "
                       "state is not a CreditAccount.FundsExpired: missing at; unexpected added_at, expires_at, "
                       "payment_reference, request_id, source")


@pytest.mark.parametrize(("topic", "state", "what"), [
    ("domain.credit_account:CreditAccount.FundsRefunded", b"{}",
     "its topic 'domain.credit_account:CreditAccount.FundsRefunded' is not an event of ours"),
    (FUNDS_ADDED, b"\xff\xfe not JSON", "it cannot be decoded: MapperDeserialisationError: "),
])
def test_an_event_of_an_unknown_topic_or_an_undecodable_state_is_named(history, topic, state, what):
    aggregate = CreditAccount.create_id("nobody")
    (position,) = history.app.recorder.insert_events([StoredEvent(aggregate, 1, topic, state)])
    problem = first_problem(audit(history, "verify", expect=1))
    assert problem.startswith(f"event {position} ({topic.rpartition(':')[2]}, aggregate {aggregate} version 1): {what}")


def test_a_store_of_the_previous_version_is_sealed_when_first_opened(history):
    history.sql("DROP TABLE {seals}")  # what the previous version left: events, no seals
    history.close()
    history.app = BillingApplication(env=store_from_url(history.url).env)
    result = audit(history, "verify", expect=0)
    assert result.stdout.splitlines()[1].startswith("store verified: 28 events match their seals in 1 sealed batch(es)")


def test_an_event_whose_type_was_changed_in_the_store_is_named_not_a_type_error(history):
    """The first FundsAdded relabelled FundsExpired: the balance view then crashed with
    TypeError on the calls that debit its lot."""
    position, account, version, _ = history.first("FundsAdded")
    history.sql("UPDATE {events} SET topic = ? WHERE {id} = ?", (FUNDS_EXPIRED, position))
    problems = audit(history, "verify", expect=1).stderr.splitlines()
    where = f"event {position} (CreditAccount.FundsExpired, aggregate {account} version {version})"
    assert problems[0] == (f"commcredits: audit_failed: {where} changed after it was stored: it no longer "
                           "matches its seal")
    assert problems[1] == (f"  also: {where}: its state is not a CreditAccount.FundsExpired: missing at; unexpected "
                           "added_at, expires_at, payment_reference, request_id, source")


def test_writers_saving_at_the_same_time_keep_one_unbroken_chain(history):
    """Each transaction reads the last seal only once it holds the events table's write lock."""
    writers, saves = 4, 25
    barrier = threading.Barrier(writers)
    _, account, _, state = history.first("FundsAdded")

    def write(writer: int) -> None:
        app = BillingApplication(env=store_from_url(history.url).env)
        barrier.wait()
        for save in range(saves):
            aggregate = CreditAccount.create_id(f"writer-{writer}-{save}")
            app.recorder.insert_events([StoredEvent(aggregate, version, FUNDS_ADDED, state) for version in (1, 2)])
        app.close()

    threads = [threading.Thread(target=write, args=(writer,)) for writer in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result = verify_store(history.app, readable=False)
    assert result.problems == [] and result.events == 28 + writers * saves * 2 and result.batches == 1 + writers * saves
