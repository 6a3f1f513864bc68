"""`commcredits serve`: the HTTP API (docs/authorization.md) on the store the environment names,
and `commcredits keys create|list|revoke`: who may call it.

Exit status: 0 stopped; 1 a rule refused the step (an unknown organization or key id); 2 bad usage or settings;
3 the store does not answer.
"""

import logging
import sqlite3
import sys
from typing import Annotated, Optional

import psycopg
import typer
from eventsourcing.persistence import PersistenceError

from application.authorization_desk import AuthorizationDesk, StoreUnavailable
from application.future_guard import FutureGuard
from application.reference_data import ReferenceDataError, load_catalog, load_rate_card
from application.settings import SettingsError, StoreSettings, future_tolerance_from_environment, store_from_environment
from commcredits.api_keys import OPERATOR, ORGANIZATION_ROLES, ApiKeys
from commcredits.collector import tune_collector
from commcredits.composition import authorization_desk, open_application
from commcredits.desk_process import DeskProcess
from commcredits.view_commands import EXIT_REJECTED, EXIT_STORE_UNAVAILABLE, EXIT_USAGE, fail
from domain.catalog import Catalog
from domain.codes import parse_identifier
from domain.credit_account import CreditAccount
from domain.errors import InvalidInput
from domain.rates import RateCard
from projections.view_database import ViewDatabase

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8080

key_commands = typer.Typer(no_args_is_help=True, help="API keys of the HTTP API (stored hashed).")


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.add_typer(key_commands, name="keys")


def serve(host: Annotated[str, typer.Option(help="Address to listen on.")] = DEFAULT_HOST,
          port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = DEFAULT_PORT,
          rates: Annotated[Optional[str], typer.Option(help="Rate card CSV (default: the built-in card).")] = None,
          catalog: Annotated[Optional[str], typer.Option(help="Licence catalogue JSON (default: SPEC §5).")] = None) -> None:
    """Serve the HTTP API: call authorization for switches (OpenAPI at /openapi.json)."""
    import uvicorn

    from commcredits.http_api import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        store, guard = store_from_environment(), FutureGuard(future_tolerance_from_environment())
        rate_card, loaded_catalog = load_rate_card(rates), load_catalog(catalog)
    except (SettingsError, ReferenceDataError) as error:
        fail(str(error), EXIT_USAGE)
    keys = _keys(store)
    try:
        desk = _desk(store, (rates, rate_card), (catalog, loaded_catalog), guard).start()
    except StoreUnavailable as error:
        keys.close()
        fail(str(error), EXIT_STORE_UNAVAILABLE)
    try:
        api = create_app(desk, keys)
        tune_collector()
        uvicorn.run(api, host=host, port=port, log_level="warning", access_log=False)
    finally:
        desk.stop()
        keys.close()


def _desk(store: StoreSettings, rates: tuple[str | None, RateCard], catalog: tuple[str | None, Catalog],
          guard: FutureGuard) -> "DeskProcess | AuthorizationDesk":
    """Decisions are made in a process of their own (`commcredits.desk_process`: the server and
    the desk then use two cores; it reads the files again), but a store in memory can only be
    shared within this process. `rates` and `catalog`: the file given (or None) and what it holds."""
    if store.is_memory:
        return authorization_desk(store, rates[1], catalog[1], guard)
    return DeskProcess(store, rates[0], catalog[0], guard)


@key_commands.command("create")
def create_key(org: Annotated[Optional[str], typer.Argument(help="Organization the key is for.")] = None,
               role: Annotated[Optional[str], typer.Option(help=f"One of {', '.join(ORGANIZATION_ROLES)}.")] = None,
               operator: Annotated[bool, typer.Option("--operator", help="A key for every organization.")] = False) -> None:
    """Create a key; it is printed once, on the last line, and kept only hashed."""
    if operator == (org is not None) or operator == (role is not None):
        fail("give ORG and --role ROLE, or --operator alone", EXIT_USAGE)
    if role is not None and role not in ORGANIZATION_ROLES:
        fail(f"--role must be one of {', '.join(ORGANIZATION_ROLES)}, got {role!r}", EXIT_USAGE)
    store = store_from_environment_or_exit()
    org = _identifier(org)
    if org is not None and not _organization_exists(store, org):
        fail(f"unknown_organization: no organization {org!r}", EXIT_REJECTED)
    keys = _keys(store)
    try:
        key, text = keys.create(org, role or OPERATOR)
    finally:
        keys.close()
    typer.echo(f"key {key.key_id}: {key.role} of {key.org or 'every organization'} (shown once; keep it secret)")
    typer.echo(text)


@key_commands.command("list")
def list_keys(org: Annotated[Optional[str], typer.Argument(help="Organization (none: the operators' keys).")] = None) -> None:
    """The keys of an organization: id, role, created, revoked (never the secrets)."""
    keys = _keys(store_from_environment_or_exit())
    try:
        listed = keys.list(_identifier(org))
    finally:
        keys.close()
    for key in listed:
        typer.echo(f"{key.key_id}  {key.role:<8}  created {key.created_at}"
                   + (f"  revoked {key.revoked_at}" if key.revoked_at else ""))


@key_commands.command("revoke")
def revoke_key(key_id: Annotated[str, typer.Argument(help="The key's id (from `keys list`).")]) -> None:
    """Revoke a key: it is refused from now on."""
    keys = _keys(store_from_environment_or_exit())
    try:
        key = keys.revoke(key_id)
    finally:
        keys.close()
    if key is None:
        fail(f"unknown_key: no key {key_id!r}", EXIT_REJECTED)
    typer.echo(f"key {key.key_id} revoked at {key.revoked_at}")


def store_from_environment_or_exit():
    try:
        return store_from_environment()
    except SettingsError as error:
        fail(str(error), EXIT_USAGE)


def _identifier(org: str | None) -> str | None:
    try:
        return None if org is None else parse_identifier(org, field="org")
    except InvalidInput as error:
        fail(str(error), EXIT_USAGE)


def _organization_exists(store, org: str) -> bool:
    try:
        app = open_application(store)
    except (sqlite3.Error, psycopg.Error, OSError, PersistenceError) as error:
        fail(f"event store unavailable: {store.description}: {type(error).__name__}: {error}", EXIT_STORE_UNAVAILABLE)
    try:
        return CreditAccount.create_id(org) in app.repository
    finally:
        app.close()


def _keys(store) -> ApiKeys:
    try:
        return ApiKeys(ViewDatabase.for_store(store))
    except (sqlite3.Error, psycopg.Error, OSError) as error:  # the store's database does not answer
        fail(f"event store unavailable: {store.description}: {type(error).__name__}: {error}", EXIT_STORE_UNAVAILABLE)
