"""Rebuilding a projection from scratch and comparing it with the live one.

The live projection is first brought to the log's end as it is now; a fresh copy (its tables
named `<name>_replay`, dropped first) is built from position 0 to the same end; then each pair
of tables is compared by a SHA-256 checksum of its rows in key order, read page by page, so a
history of millions of events needs no more memory than a page.
"""

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson

from projections.projector import Projector
from projections.runner import catch_up
from projections.sources import StoreLog
from projections.view_database import POSITIONS_TABLE, ViewDatabase

CHECKSUM_PAGE = 5000


@dataclass
class Replay:
    end: int
    applied: int
    seconds: float
    live: dict[str, str]  # table suffix → checksum
    rebuilt: dict[str, str]

    @property
    def equal(self) -> bool:
        return self.live == self.rebuilt

    @property
    def events_per_second(self) -> float:
        return self.end / self.seconds if self.seconds else 0.0


def replay(make: Callable[[str], object], name: str, database: ViewDatabase, log: StoreLog, *,
           progress: Callable[[int, int], None] | None = None, keep: bool = False) -> Replay:
    """`make(table_name_prefix)` builds the projection (e.g. `BalanceView`)."""
    end = log.end()
    live = make(name)
    catch_up(Projector(live, database), log, until=end)
    rebuilt_name = f"{name}_replay"
    fresh = make(rebuilt_name)
    _drop(database, fresh, rebuilt_name)
    started = time.monotonic()
    applied = catch_up(Projector(fresh, database), log, until=end, progress=progress)
    seconds = time.monotonic() - started
    result = Replay(end, applied, seconds, checksums(database, live, name), checksums(database, fresh, rebuilt_name))
    if not keep:
        _drop(database, fresh, rebuilt_name)
    return result


def checksums(database: ViewDatabase, projection, name: str) -> dict[str, str]:
    """Per table (named without the projection's prefix), a digest of its rows in key order."""
    digests = {}
    for table, order_by in projection.checksummed:
        digest, offset = hashlib.sha256(), 0
        while True:
            rows = database.query(f"SELECT * FROM {table} ORDER BY {order_by} "
                                  f"LIMIT {CHECKSUM_PAGE} OFFSET {offset}")
            for row in rows:
                digest.update(orjson.dumps([str(value) for value in row]))
            if len(rows) < CHECKSUM_PAGE:
                break
            offset += CHECKSUM_PAGE
        digests[table.removeprefix(f"view_{name}_")] = digest.hexdigest()
    return digests


def _drop(database: ViewDatabase, projection, name: str) -> None:
    with database.transaction() as cursor:
        for table, _ in projection.checksummed:
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
        cursor.execute(f"DELETE FROM {POSITIONS_TABLE} WHERE projection = ?", (name,))
