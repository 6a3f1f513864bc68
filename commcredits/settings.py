"""Where the event store lives, from the environment.

- `COMMCREDITS_DATABASE_URL`: `postgresql://user:password@host:port/dbname[?schema=name]`,
  `sqlite:///absolute/path.db`, or `memory` (nothing kept). When unset, a SQLite file
  `events.sqlite` under `COMMCREDITS_DATA_DIR` (default `~/.local/share/commcredits`).
"""

import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

DEFAULT_DATA_DIR = Path.home() / ".local" / "share" / "commcredits"
SQLITE_FILE_NAME = "events.sqlite"
# How long to wait for a PostgreSQL connection before saying the store is unavailable.
POSTGRES_CONNECT_TIMEOUT_S = 5


class SettingsError(ValueError):
    pass


@dataclass(frozen=True)
class StoreSettings:
    """The eventsourcing environment variables that select and configure the recorder."""
    env: dict[str, str]
    description: str


def memory_store() -> StoreSettings:
    return StoreSettings({"PERSISTENCE_MODULE": "eventsourcing.popo"}, "in-memory (nothing kept)")


def sqlite_store(path: Path | str) -> StoreSettings:
    text = str(path)
    if text != ":memory:":
        try:
            Path(text).parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SettingsError(f"cannot create the data directory {Path(text).parent}: "
                                f"{error.strerror or error}") from None
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


def store_from_url(url: str) -> StoreSettings:
    if url == "memory":
        return memory_store()
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path)
        if not path:
            raise SettingsError(f"sqlite URL needs a path: sqlite:///path/to/events.sqlite, got {url!r}")
        return sqlite_store(path)
    if parsed.scheme in ("postgresql", "postgres"):
        dbname = parsed.path.lstrip("/")
        if not dbname:
            raise SettingsError(f"postgresql URL needs a database name, got {url!r}")
        schema = parse_qs(parsed.query).get("schema", [""])[0]
        return postgres_store(dbname, parsed.hostname or "127.0.0.1", parsed.port or 5432,
                              unquote(parsed.username or "postgres"), unquote(parsed.password or ""), schema)
    raise SettingsError(f"COMMCREDITS_DATABASE_URL must start with postgresql://, sqlite:/// or be 'memory', got {url!r}")


def data_dir(environ: dict[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    return Path(environ.get("COMMCREDITS_DATA_DIR") or DEFAULT_DATA_DIR).expanduser()


def store_from_environment(environ: dict[str, str] | None = None) -> StoreSettings:
    environ = os.environ if environ is None else environ
    url = environ.get("COMMCREDITS_DATABASE_URL")
    if url:
        return store_from_url(url)
    return sqlite_store(data_dir(environ) / SQLITE_FILE_NAME)
