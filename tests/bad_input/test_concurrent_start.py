"""Item 9: processes started together on one fresh store all start (`docker compose --scale`).

Before: each process created the store's tables as it started. On PostgreSQL eventsourcing's
`CREATE TYPE`, `CREATE TABLE IF NOT EXISTS` and `CREATE OR REPLACE FUNCTION`, and the view
tables, run by several sessions at the same moment failed with "tuple concurrently updated", a
duplicate key in `pg_type` or "relation already exists" (a third of the starts when eight start
at once; the process then exited 3). On a new SQLite file two processes both inserted
eventsourcing's tracking-migration row and one failed with IntegrityError. Now table set-up holds
the store's set-up lock (`application.schema_lock`).
"""

import multiprocessing
from typing import Any

import pytest

from application.billing_application import BillingApplication
from application.settings import StoreSettings
from commcredits.project_cli import PROJECTIONS
from consumers.alerts.outbox import AlertOutbox
from consumers.alerts.projection import AlertProjection
from projections.projector import Projector
from projections.view_database import ViewDatabase

STARTERS = 8
ROUNDS = 3
START_TIMEOUT_S = 120
STARTED = "started"


def start(env: dict[str, str], barrier: Any, outcomes: Any) -> None:
    """What a starting process sets up: the application, and the views and alert outbox beside it."""
    barrier.wait()
    try:
        app = BillingApplication(env=env)
        database = ViewDatabase.for_store(StoreSettings(env, "a fresh store"))
        for make in PROJECTIONS.values():
            Projector(make(), database)
        Projector(AlertProjection("alerts.v1"), database)
        AlertOutbox(database)
        database.close()
        app.close()
        outcomes.put(STARTED)
    except Exception as error:
        outcomes.put(f"{type(error).__name__}: {error}")


@pytest.mark.parametrize("round_number", range(ROUNDS))
def test_processes_starting_together_on_a_fresh_store_all_start(store, round_number):
    context = multiprocessing.get_context("fork")
    barrier, outcomes = context.Barrier(STARTERS), context.Queue()
    processes = [context.Process(target=start, args=(store.env, barrier, outcomes)) for _ in range(STARTERS)]
    for process in processes:
        process.start()
    results = [outcomes.get(timeout=START_TIMEOUT_S) for _ in processes]
    for process in processes:
        process.join(START_TIMEOUT_S)
    assert results == [STARTED] * STARTERS
    app = BillingApplication(env=store.env)  # and the store they set up works
    try:
        assert app.recorder.max_notification_id() in (None, 0) and app.recorder.last_seal() is None
    finally:
        app.close()
