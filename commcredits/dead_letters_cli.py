"""`commcredits dead-letters`: the originals of dead letters too large to carry them.

A rejected CDR larger than a dead letter may carry (docs/pipeline.md) is kept whole beside the
event store; its letter on the DLQ topic holds a preview and the header `original_sha256`.
`dead-letters list` shows what is kept; `dead-letters payload SHA256` writes one original's
bytes (to stdout, or `--output FILE`) so that an operator can fix it and publish it again.

Exit status: 0 done; 1 no original with that digest; 2 bad usage; 3 the store does not answer.
"""

import sqlite3
import sys
from pathlib import Path
from typing import Annotated, Optional

import psycopg
import typer

from application.settings import SettingsError, store_from_environment
from commcredits.view_commands import EXIT_REJECTED, EXIT_STORE_UNAVAILABLE, EXIT_USAGE, fail
from consumers.dead_letters import OversizedPayloads
from projections.view_database import ViewDatabase

LIST_LIMIT = 1000

dead_letter_commands = typer.Typer(no_args_is_help=True,
                                   help="Originals of dead letters too large to carry them (docs/pipeline.md).")


def register(app: typer.Typer) -> None:
    app.add_typer(dead_letter_commands, name="dead-letters")


@dead_letter_commands.command("list")
def list_payloads(limit: Annotated[int, typer.Option(min=1, max=100_000, help="At most this many.")] = LIST_LIMIT) -> None:
    """The kept originals, oldest first: digest, where they came from, when."""
    payloads = _open()
    try:
        kept = payloads.list(limit)
    except (sqlite3.Error, psycopg.Error) as error:
        fail(f"event store unavailable: {error}", EXIT_STORE_UNAVAILABLE)
    finally:
        payloads.close()
    for payload in kept:
        typer.echo(f"{payload.sha256}  {payload.source_topic}[{payload.source_partition}]@{payload.source_offset}  "
                   f"{payload.parked_at}")
    if not kept:
        typer.echo("no originals kept", err=True)


@dead_letter_commands.command("payload")
def payload(sha256: Annotated[str, typer.Argument(help="The dead letter's original_sha256 header.")],
            output: Annotated[Optional[Path], typer.Option("--output", help="Write to this file, not stdout.")] = None) -> None:
    """Write the original message value of a dead letter (its key is said on stderr)."""
    payloads = _open()
    try:
        kept = payloads.get(sha256.strip().lower())
    except (sqlite3.Error, psycopg.Error) as error:
        fail(f"event store unavailable: {error}", EXIT_STORE_UNAVAILABLE)
    finally:
        payloads.close()
    if kept is None:
        fail(f"no original kept with digest {sha256!r} (`dead-letters list` shows them)", EXIT_REJECTED)
    if output is None:
        sys.stdout.buffer.write(kept.value)
        sys.stdout.buffer.flush()
    else:
        try:
            output.write_bytes(kept.value)
        except OSError as error:
            fail(f"{output}: cannot be written: {error.strerror or error}", EXIT_USAGE)
        typer.echo(f"wrote {len(kept.value)} bytes to {output}", err=True)
    typer.echo(f"from {kept.source_topic}[{kept.source_partition}]@{kept.source_offset}, key {kept.key!r:.80}",
               err=True)


def _open() -> OversizedPayloads:
    try:
        store = store_from_environment()
    except SettingsError as error:
        fail(str(error), EXIT_USAGE)
    try:
        return OversizedPayloads(ViewDatabase.for_store(store))
    except (sqlite3.Error, psycopg.Error) as error:
        fail(f"event store unavailable: {store.description}: {error}", EXIT_STORE_UNAVAILABLE)
