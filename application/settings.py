"""Where the event store lives, from the environment.

- `COMMCREDITS_DATABASE_URL`: `postgresql://user:password@host:port/dbname[?schema=name]`,
  `sqlite:///absolute/path.db`, or `memory` (nothing kept). When unset, a SQLite file
  `events.sqlite` under `COMMCREDITS_DATA_DIR` (default `~/.local/share/commcredits`).
- `COMMCREDITS_FUTURE_TOLERANCE_S` (300, from 0 to 86400): how far ahead of the wall clock a
  time may be before it is refused as being in the future.

The data directory and the SQLite files are created readable by their owner only
(`application.private_files`).
"""

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from pydantic import Field

from application.environment_settings import EnvironmentSettings, SettingsError, shown_value
from application.private_files import create_private_file, make_private_directory
from application.setting_values import MAX_PORT, MIN_PORT, Text, seconds

DEFAULT_DATA_DIR = Path.home() / ".local" / "share" / "commcredits"
SQLITE_FILE_NAME = "events.sqlite"
# How long to wait for a PostgreSQL connection before saying the store is unavailable.
POSTGRES_CONNECT_TIMEOUT_S = 5
DEFAULT_FUTURE_TOLERANCE_S = 300.0
MAX_FUTURE_TOLERANCE_S = 86_400.0  # a day: more would let a wrong year or time zone through
DATABASE_URL_VARIABLE = "COMMCREDITS_DATABASE_URL"
DATABASE_URL_FORMS = "start with postgresql:// or sqlite:///, or be 'memory'"

FutureToleranceSeconds = seconds(0, MAX_FUTURE_TOLERANCE_S)


class StoreEnvironment(EnvironmentSettings):
    database_url: Text = Field(None, validation_alias=DATABASE_URL_VARIABLE)
    data_dir: Text = Field(None, validation_alias="COMMCREDITS_DATA_DIR")
    future_tolerance_s: FutureToleranceSeconds = Field(
        DEFAULT_FUTURE_TOLERANCE_S, validation_alias="COMMCREDITS_FUTURE_TOLERANCE_S")


@dataclass(frozen=True)
class StoreSettings:
    """The eventsourcing environment variables that select and configure the recorder."""
    env: dict[str, str]
    description: str

    @property
    def is_memory(self) -> bool:
        """Nothing outlives the process (the in-memory recorder or an in-memory SQLite database)."""
        module, name = self.env.get("PERSISTENCE_MODULE"), self.env.get("SQLITE_DBNAME", "")
        return module == "eventsourcing.popo" or (module == "eventsourcing.sqlite"
                                                  and (name == ":memory:" or "mode=memory" in name))


def memory_store() -> StoreSettings:
    return StoreSettings({"PERSISTENCE_MODULE": "eventsourcing.popo"}, "in-memory (nothing kept)")


def sqlite_store(path: Path | str, *, directory_is_ours: bool = False) -> StoreSettings:
    """The SQLite file at `path`, created 0600 (its directory 0700 when created, or when it is ours)
    before SQLite opens it: SQLite would create it, and its `-wal`/`-shm` files, 0644."""
    text = str(path)
    if text != ":memory:" and "mode=memory" not in text:
        _create_private_database(Path(text), directory_is_ours)
    return StoreSettings({"PERSISTENCE_MODULE": "eventsourcing.sqlite", "SQLITE_DBNAME": text}, f"SQLite {text}")


def postgres_store(dbname: str, host: str = "127.0.0.1", port: int = 5432, user: str = "postgres",
                   password: str = "", schema: str = "") -> StoreSettings:
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres", "POSTGRES_DBNAME": dbname, "POSTGRES_HOST": host,
        "POSTGRES_PORT": str(port), "POSTGRES_USER": user, "POSTGRES_PASSWORD": password,
        "POSTGRES_CONNECT_TIMEOUT": str(POSTGRES_CONNECT_TIMEOUT_S),
    }
    if schema:
        env["POSTGRES_SCHEMA"] = schema
    where = f"{schema}." if schema else ""
    return StoreSettings(env, f"PostgreSQL {user}@{host}:{port}/{dbname} ({where}tables)")


def _create_private_database(path: Path, directory_is_ours: bool) -> None:
    try:
        make_private_directory(path.parent, ours=directory_is_ours)
        create_private_file(path)
    except OSError as error:
        raise SettingsError(f"cannot create the event store {path}: {error.strerror or error}") from None


def store_from_url(url: str) -> StoreSettings:
    """The store `url` names (the value of COMMCREDITS_DATABASE_URL); SettingsError naming the
    variable when it is not one of the forms below, or its port is not from 1 to 65535."""
    if url == "memory":
        return memory_store()
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path)
        if not path:
            raise _bad_url(url, "a sqlite URL with a path: sqlite:///path/to/events.sqlite")
        return sqlite_store(path)
    if parsed.scheme in ("postgresql", "postgres"):
        return _postgres_store_from(parsed, url)
    raise _bad_url(url, DATABASE_URL_FORMS, verb="")


def _postgres_store_from(parsed, url: str) -> StoreSettings:
    dbname = parsed.path.lstrip("/")
    if not dbname:
        raise _bad_url(url, "a postgresql URL with a database name: postgresql://user@host:port/dbname")
    try:
        port = 5432 if parsed.port is None else parsed.port
    except ValueError:  # not a number, or beyond 65535
        port = 0
    if not MIN_PORT <= port <= MAX_PORT:
        raise _bad_url(url, f"a postgresql URL whose port is from {MIN_PORT} to {MAX_PORT}")
    schema = parse_qs(parsed.query).get("schema", [""])[0]
    return postgres_store(dbname, parsed.hostname or "127.0.0.1", port,
                          unquote(parsed.username or "postgres"), unquote(parsed.password or ""), schema)


def _bad_url(url: str, expected: str, verb: str = "be ") -> SettingsError:
    """The message shows the URL without its password."""
    parsed = urlparse(url)
    shown = url.replace(f":{parsed.password}@", ":***@") if parsed.password else url
    return SettingsError.invalid(DATABASE_URL_VARIABLE, shown_value(shown), expected, verb=verb)


def data_dir(environ: dict[str, str] | None = None) -> Path:
    """Where the default SQLite store, the webhook signing key and the broker's log live (not created here)."""
    return _data_dir(StoreEnvironment.from_environment(environ))


def _data_dir(settings: StoreEnvironment) -> Path:
    return Path(settings.data_dir or DEFAULT_DATA_DIR).expanduser()


def private_data_dir(environ: dict[str, str] | None = None) -> Path:
    """`data_dir`, created 0700 if missing; the default one is also made 0700 if it was more open."""
    settings = StoreEnvironment.from_environment(environ)
    directory = _data_dir(settings)
    try:
        make_private_directory(directory, ours=settings.data_dir is None)
    except OSError as error:
        raise SettingsError(f"cannot create the data directory {directory}: {error.strerror or error}") from None
    return directory


def store_from_environment(environ: dict[str, str] | None = None) -> StoreSettings:
    settings = StoreEnvironment.from_environment(environ)
    if settings.database_url:
        return store_from_url(settings.database_url)
    return sqlite_store(_data_dir(settings) / SQLITE_FILE_NAME, directory_is_ours=settings.data_dir is None)


def future_tolerance_from_environment(environ: dict[str, str] | None = None) -> timedelta:
    """How far ahead of the wall clock a time may be (COMMCREDITS_FUTURE_TOLERANCE_S, default 300 s)."""
    return timedelta(seconds=StoreEnvironment.from_environment(environ).future_tolerance_s)
