"""The administrator's commands of `commcredits` (organization, users, licences, order, funds,
auto-recharge, payment method, balance), on the event store the environment selects.

Exit status: 0 done (or an idempotent repeat), 1 rejected by a billing rule (the message starts
with the SPEC's error code), 2 bad usage or an unreadable file, 3 the event store is unavailable.
"""

import csv
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import orjson
import typer

from application.future_guard import FutureGuard
from application.service import REPEATED
from application.settings import SettingsError, StoreSettings, future_tolerance_from_environment, store_from_environment
from commcredits.admin import Admin, ConcurrentUpdate, StoreUnavailable
from commcredits.balance_page import auto_recharge_text, balance_as_of, payment_text, read_balance_page, render_balance
from commcredits.terminal_text import terminal_safe
from commcredits.view_commands import fail as _fail
from domain.commerce import COMMERCE_KINDS
from domain.errors import DomainError, UnknownOrganization, shown
from domain.timestamps import format_timestamp, parse_timestamp

EXIT_REJECTED, EXIT_USAGE, EXIT_STORE_UNAVAILABLE = 1, 2, 3

OrgArgument = Annotated[str, typer.Argument(help="Organization id.")]
AtOption = Annotated[Optional[str], typer.Option(
    "--at", help="When it happens (ISO 8601 with offset); default: now. The engine's clock never goes back.")]
CardOption = Annotated[Optional[str], typer.Option("--card", help="Card id (pay by card).")]
CardExpiresOption = Annotated[Optional[str], typer.Option("--card-expires", help="Card expiry, YYYY-MM.")]
AgreementOption = Annotated[Optional[str], typer.Option("--agreement", help="Enterprise Agreement number (invoiced).")]
PoOption = Annotated[Optional[str], typer.Option("--po", help="Purchase-order number for the agreement.")]
RechargeAmountOption = Annotated[Optional[str], typer.Option("--recharge-amount", help="Amount of each recharge.")]
TriggerAmountOption = Annotated[Optional[str], typer.Option("--trigger-amount", help="Recharge when the balance falls below this (may be 0).")]


Commerce = Enum("Commerce", {kind: kind for kind in COMMERCE_KINDS}, type=str)  # typer shows the choices


organization_commands = typer.Typer(no_args_is_help=True, help="Create organizations.")
user_commands = typer.Typer(no_args_is_help=True, help="Add users, one by one or from a CSV file.")
licence_commands = typer.Typer(no_args_is_help=True, help="Assign or remove licences, in bulk.")
order_commands = typer.Typer(no_args_is_help=True, help="Buy Communications Credits (once per organization).")
funds_commands = typer.Typer(no_args_is_help=True, help="Add funds by hand.")
auto_recharge_commands = typer.Typer(no_args_is_help=True, help="Change auto-recharge.")
payment_commands = typer.Typer(no_args_is_help=True, help="Change the payment method.")


def register(app: typer.Typer) -> None:
    app.add_typer(organization_commands, name="org")
    app.add_typer(user_commands, name="users")
    app.add_typer(licence_commands, name="licences")
    app.add_typer(order_commands, name="order")
    app.add_typer(funds_commands, name="funds")
    app.add_typer(auto_recharge_commands, name="auto-recharge")
    app.add_typer(payment_commands, name="payment-method")
    app.command("balance")(balance)


# ----- commands --------------------------------------------------------------------------------

@organization_commands.command("create")
def create_organization(
    org: Annotated[str, typer.Argument(help="Organization id (the tenant).")],
    name: Annotated[str, typer.Option(help="Display name.")],
    country: Annotated[str, typer.Option(help="ISO 3166 alpha-2 country, e.g. US.")],
    currency: Annotated[str, typer.Option(help="ISO 4217 currency, e.g. USD; fixed for good.")],
    commerce: Annotated[Commerce, typer.Option(help="legacy may buy credits; nce pays overage.")] = Commerce.legacy,
    agreement: Annotated[Optional[list[str]], typer.Option("--agreement", help="Enterprise Agreement number (repeatable).")] = None,
    at: AtOption = None,
) -> None:
    """Create an organization."""
    with _admin() as admin:
        _run(admin, _line("organization.created", at, org=org, name=name, country=country, currency=currency,
                        commerce=commerce.value, agreements=agreement or []))
    typer.echo(f"created organization {org} ({terminal_safe(name)}): {commerce.value}, {country}, {currency}")


@user_commands.command("add")
def add_user(
    org: OrgArgument,
    user: Annotated[str, typer.Argument(help="User principal name, e.g. alice@contoso.com.")],
    location: Annotated[str, typer.Option("--location", help="Usage location, ISO 3166 alpha-2.")],
    at: AtOption = None,
) -> None:
    """Add one user."""
    with _admin() as admin:
        _run(admin, _line("user.added", at, org=org, user=user, usage_location=location))
    typer.echo(f"added user {user} ({location}) to {org}")


@user_commands.command("import")
def import_users(
    org: OrgArgument,
    csv_file: Annotated[Path, typer.Argument(metavar="CSV", help="CSV with a header and columns user,usage_location.")],
    at: AtOption = None,
) -> None:
    """Add every user of a CSV file, all or none (every rejected row is listed)."""
    rows = _csv_rows(csv_file, ("user", "usage_location"))
    when = _at(at)
    with _admin() as admin:
        added = admin.run_all(((row, _line("user.added", when, org=org, user=record["user"],
                                           usage_location=record["usage_location"]))
                               for row, record in rows), "users")
    typer.echo(f"added {added} users to {org} from {csv_file}")


LicencesOption = Annotated[list[str], typer.Option("--licence", help="Licence (repeatable), e.g. E5.")]
UsersOption = Annotated[Optional[list[str]], typer.Option("--user", help="User (repeatable).")]
UsersCsvOption = Annotated[Optional[Path], typer.Option("--users-csv", help="CSV with a 'user' column.")]


@licence_commands.command("assign")
def assign_licences(org: OrgArgument, licence: LicencesOption, user: UsersOption = None,
                    users_csv: UsersCsvOption = None, at: AtOption = None) -> None:
    """Assign licences to users, all or none (SPEC §4: prerequisites judged after the whole change)."""
    _change_licences(org, licence, user, users_csv, at, assign=True)


@licence_commands.command("remove")
def remove_licences(org: OrgArgument, licence: LicencesOption, user: UsersOption = None,
                    users_csv: UsersCsvOption = None, at: AtOption = None) -> None:
    """Remove licences from users, all or none."""
    _change_licences(org, licence, user, users_csv, at, assign=False)


@order_commands.command("place")
def place_order(
    org: OrgArgument,
    order: Annotated[str, typer.Option("--order", help="Order id; repeating the same id is a no-op.")],
    funds: Annotated[str, typer.Option("--funds", help="Initial funds (0 allowed: nothing is charged).")],
    auto_recharge: Annotated[bool, typer.Option("--auto-recharge/--no-auto-recharge", help="Turn auto-recharge on.")] = False,
    recharge_amount: RechargeAmountOption = None,
    trigger_amount: TriggerAmountOption = None,
    card: CardOption = None, card_expires: CardExpiresOption = None,
    agreement: AgreementOption = None, po: PoOption = None,
    at: AtOption = None,
) -> None:
    """Place the Communications Credits order: initial funds, auto-recharge and payment method."""
    payment = _payment(card, card_expires, agreement, po)
    with _admin() as admin:
        outcome = _run(admin, _line("order.placed", at, org=org, order=order, funds=funds, payment=payment,
                                  auto_recharge=_auto_recharge(auto_recharge, recharge_amount, trigger_amount)))
        account = admin.account(org)
    if outcome == REPEATED:
        typer.echo(f"order {order} was already placed for {org}: nothing changed")
        return
    typer.echo(f"order {order} placed for {org}: balance {account.balance:.4f} {account.currency}")
    typer.echo(auto_recharge_text({**account.auto_recharge.as_data(), "suspended": account.suspended},
                                   account.currency))


@funds_commands.command("add")
def add_funds(
    org: OrgArgument,
    amount: Annotated[str, typer.Argument(help="Amount, e.g. 250 or 99.5.")],
    request_id: Annotated[Optional[str], typer.Option("--request-id", help="Idempotency key: a repeat is a no-op.")] = None,
    at: AtOption = None,
) -> None:
    """Add funds, charged to the current payment method (lifts a suspended auto-recharge)."""
    line = _line("funds.added", at, org=org, amount=amount)
    if request_id is not None:
        line["request_id"] = request_id
    with _admin() as admin:
        outcome = _run(admin, line)
        account = admin.account(org)
    if outcome == REPEATED:
        typer.echo(f"request {request_id} was already applied to {org}: nothing changed")
        return
    typer.echo(f"added {account.lots[-1].amount:.4f} {account.currency} to {org}: "
               f"balance {account.balance:.4f} {account.currency}")


@auto_recharge_commands.command("set")
def set_auto_recharge(
    org: OrgArgument,
    enabled: Annotated[bool, typer.Option("--enable/--disable", help="Turn auto-recharge on or off.")],
    recharge_amount: RechargeAmountOption = None,
    trigger_amount: TriggerAmountOption = None,
    at: AtOption = None,
) -> None:
    """Configure auto-recharge (lifts a suspension)."""
    with _admin() as admin:
        _run(admin, _line("auto_recharge.configured", at, org=org,
                        **_auto_recharge(enabled, recharge_amount, trigger_amount)))
        account = admin.account(org)
    typer.echo(f"{org}: " + auto_recharge_text({**account.auto_recharge.as_data(), "suspended": False},
                                               account.currency))


@payment_commands.command("set")
def set_payment_method(
    org: OrgArgument,
    card: CardOption = None, card_expires: CardExpiresOption = None,
    agreement: AgreementOption = None, po: PoOption = None,
    at: AtOption = None,
) -> None:
    """Change the payment method (lifts a suspended auto-recharge)."""
    payment = _payment(card, card_expires, agreement, po)
    with _admin() as admin:
        _run(admin, _line("payment_method.updated", at, org=org, payment=payment))
    typer.echo(f"{org} now pays by {payment_text(payment)}")


def balance(
    org: OrgArgument,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (the shape of simulate's organizations).")] = False,
    as_of: Annotated[Optional[str], typer.Option("--as-of", help="Show the account as it stood at this time "
                                                                 "(ISO 8601 with offset), from the event history.")] = None,
) -> None:
    """Show an organization's balance, lots, funds expiring soon, auto-recharge and its last
    attempt, this month's pools with their capacity, and totals (from the balance view, brought
    up to date with the store first)."""
    moment = _parse_at(as_of) if as_of else None
    with _admin() as admin:
        if moment is None:
            document = read_balance_page(admin.app, admin.store, org, datetime.now(timezone.utc))
        else:
            document = balance_as_of(admin.app, org, moment)
        if document is None and moment is not None and admin.service.account(org) is not None:
            _fail(f"unknown_organization: organization {org!r} was not opened yet at {format_timestamp(moment)}",
                  EXIT_REJECTED)
        if document is None:
            raise UnknownOrganization(org)
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(document, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) + b"\n")
    else:
        typer.echo(render_balance(document, moment or datetime.now(timezone.utc)), nl=False)


# ----- helpers ---------------------------------------------------------------------------------

def _change_licences(org: str, licences: list[str], users: Optional[list[str]], users_csv: Optional[Path],
                     at: Optional[str], *, assign: bool) -> None:
    everyone = list(users or []) + [record["user"] for _, record in (_csv_rows(users_csv, ("user",)) if users_csv else [])]
    if not everyone:
        _fail("give the users with --user (repeatable) or --users-csv FILE", EXIT_USAGE)
    with _admin() as admin:
        _run(admin, _line("licences.assigned" if assign else "licences.removed", at, org=org, users=everyone,
                        licences=licences))
    verb = "assigned" if assign else "removed"
    typer.echo(f"{verb} {', '.join(licences)} {'to' if assign else 'from'} {len(everyone)} user(s) of {org}")


def _run(admin: Admin, line: dict[str, Any]) -> str:
    """Apply one step; say so when it was applied later than asked (the clock never goes back)."""
    outcome = admin.run(line)
    asked, clock = parse_timestamp(line["at"]), admin.service.clock
    if clock is not None and asked < clock:
        typer.echo(f"commcredits: note: the engine's clock is at {format_timestamp(clock)}, after --at "
                   f"{format_timestamp(asked)}; applied at {format_timestamp(clock)}", err=True)
    return outcome


def _parse_at(text: str) -> datetime:
    try:
        return parse_timestamp(text, field="--as-of")
    except DomainError as error:
        _fail(str(error), EXIT_USAGE)


def _line(line_type: str, at: Optional[str], **fields: Any) -> dict[str, Any]:
    return {"type": line_type, "at": _at(at), **fields}


def _at(at: Optional[str]) -> str:
    return at if at is not None else datetime.now(timezone.utc).isoformat()


def _auto_recharge(enabled: bool, recharge_amount: Optional[str], trigger_amount: Optional[str]) -> dict[str, Any]:
    return {"enabled": enabled, "recharge_amount": recharge_amount, "trigger_amount": trigger_amount}


def _payment(card: Optional[str], card_expires: Optional[str], agreement: Optional[str],
             po: Optional[str]) -> dict[str, Any]:
    if (card is None) == (agreement is None):
        _fail("give exactly one payment method: --card ID --card-expires YYYY-MM, or --agreement EA [--po PO]",
              EXIT_USAGE)
    if card is not None:
        if card_expires is None or po is not None:
            _fail("a card needs --card-expires YYYY-MM (and takes no --po)", EXIT_USAGE)
        return {"method": "card", "card": card, "expires": card_expires}
    if card_expires is not None:
        _fail("--card-expires goes with --card, not with --agreement", EXIT_USAGE)
    return {"method": "enterprise_agreement", "agreement": agreement, "po": po}


def _csv_rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    """(row number, record) for every data row; row 1 is the header, as a spreadsheet shows it."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [column for column in columns if column not in (reader.fieldnames or [])]
            if missing:
                _fail(f"{path}: the header must name the column(s) {', '.join(missing)}; "
                      f"found {', '.join(reader.fieldnames or []) or 'no header'}", EXIT_USAGE)
            rows = [(number, {column: (record[column] or "").strip() for column in columns})
                    for number, record in enumerate(reader, start=2) if _has_content(path, number, record)]
    except OSError as error:
        _fail(f"{path}: cannot be read: {error.strerror or error}", EXIT_USAGE)
    except (UnicodeDecodeError, csv.Error) as error:
        _fail(f"{path}: not a UTF-8 CSV file: {error}", EXIT_USAGE)
    if not rows:
        _fail(f"{path}: no rows after the header", EXIT_USAGE)
    return rows


def _future_guard(store: StoreSettings) -> FutureGuard | None:
    """On a persistent store a step dated far ahead of the wall clock is refused (future_time):
    it would move the engine's clock there for good."""
    if store.is_memory:
        return None
    try:
        return FutureGuard(future_tolerance_from_environment())
    except SettingsError as error:
        _fail(str(error), EXIT_USAGE)


def _has_content(path: Path, number: int, record: dict[str | None, Any]) -> bool:
    """False for a blank row (skipped). A row with more cells than the header names is refused
    rather than guessed at: `csv.DictReader` files the extra cells under the key None."""
    extra = record.get(None)
    if extra:
        named = len(record) - 1
        _fail(f"{path}: row {number} has {named + len(extra)} cells but the header names {named} "
              f"(the first without a column: {shown(extra[0])})", EXIT_USAGE)
    return any((value or "").strip() for value in record.values())


@contextmanager
def store_steps() -> Iterator[StoreSettings]:
    """The store from the environment, for a step that writes to it; every failure becomes a
    message and an exit status (the module docstring's)."""
    try:
        store = store_from_environment()
    except SettingsError as error:
        _fail(str(error), EXIT_USAGE)
    try:
        yield store
    except DomainError as error:
        _fail(str(error), EXIT_REJECTED)
    except ConcurrentUpdate as error:
        _fail(f"concurrent_update: {error}", EXIT_REJECTED)
    except StoreUnavailable as error:
        _fail(f"event store unavailable: {error}", EXIT_STORE_UNAVAILABLE)


@contextmanager
def _admin() -> Iterator[Admin]:
    with store_steps() as store:
        admin = Admin(store, future_guard=_future_guard(store))
        try:
            yield admin
        finally:
            admin.close()
