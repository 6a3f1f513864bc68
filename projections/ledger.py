"""The audit ledger: a double-entry journal of every money event, each entry chained to the one
before by its hash (rules: `projections.ledger_rules`).

The chain follows the event store's order, so the ledger is fed from the store's log (one
stream); entries are numbered from 1 without gaps.
"""

from collections.abc import Iterator

from projections.account_directory import AccountDirectory
from projections.ledger_rules import GENESIS_HASH, MONEY_EVENTS, entry_hash, event_digest, journal_lines, lines_text
from projections.records import EventRecord
from projections.view_database import ViewCursor, ViewDatabase

ENTRY_COLUMNS = ("number", "position", "org", "event_type", "event_digest", "lines", "previous_hash", "hash")
READ_PAGE_SIZE = 1000


class Ledger:
    def __init__(self, name: str = "ledger") -> None:
        self.name = name
        self.entries, self.organizations = f"view_{name}_entries", f"view_{name}_organizations"
        self._directory = AccountDirectory(self.organizations, ("org",))
        self.tables = (
            f"CREATE TABLE IF NOT EXISTS {self.entries} (number BIGINT PRIMARY KEY, position BIGINT UNIQUE NOT NULL, "
            "org TEXT NOT NULL, event_type TEXT NOT NULL, event_digest TEXT NOT NULL, lines TEXT NOT NULL, "
            "previous_hash TEXT NOT NULL, hash TEXT NOT NULL)",
            self._directory.create,
        )
        self.event_types = MONEY_EVENTS | {"CreditAccount.Opened"}
        self.checksummed = ((self.entries, "number"), (self.organizations, "account_id"))

    def apply(self, cursor: ViewCursor, record: EventRecord) -> None:
        if record.type == "CreditAccount.Opened":
            self._directory.opened(cursor, record)
            return
        lines = journal_lines(record)
        if not lines:
            return  # a call fully covered by included minutes moves no money
        org = self._directory.org(cursor, record)
        last = cursor.execute(f"SELECT number, hash FROM {self.entries} ORDER BY number DESC LIMIT 1").fetchone()
        number, previous_hash = (last[0] + 1, last[1]) if last else (1, GENESIS_HASH)
        digest = event_digest(record)
        cursor.execute(
            f"INSERT INTO {self.entries} (number, position, org, event_type, event_digest, lines, previous_hash, hash) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (number, record.position, org, record.type, digest, lines_text(lines), previous_hash,
             entry_hash(number, record.position, record.type, digest, org, lines, previous_hash)))


def ledger_entries(database: ViewDatabase, ledger: Ledger) -> Iterator[tuple]:
    """Every entry (`ENTRY_COLUMNS`) in chain order, page by page: bounded memory."""
    after = 0
    while True:
        rows = database.query(f"SELECT {', '.join(ENTRY_COLUMNS)} FROM {ledger.entries} WHERE number > ? "
                              f"ORDER BY number LIMIT {READ_PAGE_SIZE}", (after,))
        yield from rows
        if len(rows) < READ_PAGE_SIZE:
            return
        after = rows[-1][0]
