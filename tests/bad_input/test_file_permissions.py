"""Item 12: the event store, its views database, their SQLite sidecar files and the webhook key are
readable by their owner only, whatever the process umask; directories commcredits creates (and
the default data directory) are 0700, a directory the user chose is left as it is.

Before: under the usual umask 0o022 `events.sqlite` and `events.views.sqlite` (and their `-wal`
and `-shm` files) were created 0644 in a 0755 data directory: every local user could read every
organization's billing history.
"""

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from application import settings as settings_module
from application.billing_application import BillingApplication
from application.reference_data import load_catalog
from application.settings import store_from_environment
from commcredits.simulate import Simulation
from consumers.alerts.outbox import AlertOutbox
from consumers.alerts.settings import master_secret_from_environment
from projections.balance_view import BalanceView
from projections.projector import Projector
from projections.runner import catch_up
from projections.sources import StoreLog
from projections.view_database import ViewDatabase
from tests.support import SPEC_EXAMPLES, SPEC_RATES

USUAL_UMASK = 0o022
LINES = (SPEC_EXAMPLES / "02-expiry-and-recharge.jsonl").read_bytes().splitlines()
CLI_TIMEOUT_S = 120
LOCK_FILE_SUFFIX = ".setup-lock"


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most systems start processes with: without explicit modes, files come out 0644."""
    previous = os.umask(USUAL_UMASK)
    yield
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes_in(directory: Path) -> dict[str, int]:
    """The mode of every file in `directory`, but the empty `<store>.setup-lock` files that
    `application.schema_lock` flocks: they hold no data (and are still created with the umask's mode)."""
    return {entry.name: mode(entry) for entry in directory.iterdir()
            if not (entry.name.endswith(LOCK_FILE_SUFFIX) and entry.stat().st_size == 0)}


def test_a_fresh_store_its_views_and_sidecars_are_private(tmp_path, usual_umask):
    data = tmp_path / "new" / "data"  # neither exists yet: both are made by commcredits
    environ = {"COMMCREDITS_DATA_DIR": str(data)}
    store = store_from_environment(environ)
    app = BillingApplication(env=store.env)
    views = ViewDatabase.for_store(store)
    try:
        Simulation(app, SPEC_RATES, load_catalog(None)).run(LINES)
        catch_up(Projector(BalanceView(), views), StoreLog(app))
        AlertOutbox(views)
        master_secret_from_environment(environ)
        files = modes_in(data)  # while the connections are open: the -wal and -shm files exist
    finally:
        views.close()
        app.close()

    assert {"events.sqlite", "events.sqlite-wal", "events.sqlite-shm", "events.views.sqlite",
            "events.views.sqlite-wal", "events.views.sqlite-shm", "webhook-signing.key"} <= set(files)
    assert files == dict.fromkeys(files, 0o600)
    assert mode(data) == 0o700 and mode(data.parent) == 0o700


def test_the_cli_creates_a_private_data_directory(tmp_path):
    """As a user runs it: a new process, started with the usual umask, on a data directory that does not exist."""
    data = tmp_path / "data"
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("COMMCREDITS_", "KAFKA_"))}
    environment["COMMCREDITS_DATA_DIR"] = str(data)
    command = str(Path(sys.executable).with_name("commcredits"))
    for argv in (["org", "create", "contoso", "--name", "Contoso", "--country", "US", "--currency", "USD"],
                 ["project", "--once"], ["alerts", "webhook-secret", "contoso"]):
        result = subprocess.run([command, *argv], env=environment, capture_output=True, text=True,
                                timeout=CLI_TIMEOUT_S, preexec_fn=lambda: os.umask(USUAL_UMASK))
        assert result.returncode == 0, (argv, result.stderr)

    files = modes_in(data)
    assert {"events.sqlite", "events.views.sqlite", "webhook-signing.key"} <= set(files)
    assert files == dict.fromkeys(files, 0o600) and mode(data) == 0o700


def test_the_default_data_directory_is_made_private_even_if_it_exists(tmp_path, usual_umask, monkeypatch):
    """It is ours (only commcredits uses ~/.local/share/commcredits): an older version made it 0755."""
    default = tmp_path / "share" / "commcredits"
    default.mkdir(parents=True, mode=0o755)
    monkeypatch.setattr(settings_module, "DEFAULT_DATA_DIR", default)

    store_from_environment({})

    assert mode(default) == 0o700 and mode(default / "events.sqlite") == 0o600
    assert mode(default.parent) == 0o755  # its parent already existed: not ours to change


def test_a_directory_the_user_chose_is_not_changed_but_the_files_are_private(tmp_path, usual_umask):
    chosen = tmp_path / "shared"
    chosen.mkdir(mode=0o755)
    os.chmod(chosen, 0o755)

    store = store_from_environment({"COMMCREDITS_DATA_DIR": str(chosen)})
    ViewDatabase.for_store(store).close()

    assert mode(chosen) == 0o755
    assert modes_in(chosen) == {"events.sqlite": 0o600, "events.views.sqlite": 0o600}


def test_a_sqlite_url_in_a_new_directory(tmp_path, usual_umask):
    path = tmp_path / "a" / "b" / "events.sqlite"
    store = store_from_environment({"COMMCREDITS_DATABASE_URL": f"sqlite:///{path}"})
    BillingApplication(env=store.env).close()

    assert mode(path) == 0o600 and mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700
