"""`commcredits simulate` (SPEC §11): JSON Lines of commands through the real application.

Steps per line: decode and validate (→ `invalid_input`), hand the command to the service
(decide → accept → apply), record a rejection or a duplicate. Every `FLUSH_EVERY_LINES` lines
the unit of work is saved in one transaction and the projections catch up from the store, so
memory stays bounded by the number of organizations, not the number of lines: call results are
spooled to a temporary file as they come. The output is built from the stored events.
"""

import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import IO, Any, BinaryIO

import orjson

from application.billing_application import BillingApplication
from application.bounded_lines import OverlongLine, bounded_lines
from application.inputs import command_from_document, decode_json_object
from application.service import DUPLICATE
from application.settings import StoreSettings
from commcredits.composition import billing_service, open_application
from domain.catalog import Catalog
from domain.errors import DomainError, InvalidInput
from domain.payments import PaymentGateway
from domain.rates import RateCard
from projections import call_results, organization_summary
from projections.authorization_results import AuthorizationResults
from projections.event_feed import read_events

FLUSH_EVERY_LINES = 1000
SPOOL_IN_MEMORY_BYTES = 16 * 1024 * 1024
_SORTED = orjson.OPT_SORT_KEYS


@dataclass
class RunLog:
    """What the store does not hold: rejected lines and duplicate CDRs (they change nothing)."""
    rejected: list[tuple[int, str]] = field(default_factory=list)
    rejected_cdrs: int = 0
    duplicates: int = 0
    lines: int = 0


class Simulation:
    def __init__(self, app: BillingApplication, rate_card: RateCard, catalog: Catalog,
                 gateway: PaymentGateway | None = None, *, store_is_new: bool = False) -> None:
        self.app = app
        self.service = billing_service(app, rate_card, catalog, gateway=gateway,
                                      store_is_new=store_is_new)
        self.log = RunLog()

    def run(self, lines: Iterable[bytes | OverlongLine], first_line_number: int = 1) -> None:
        """Lines are read and decoded a chunk (up to the next flush) at a time, so that the chunk's
        usage ids are looked up in the store together (`BillingService.look_up_usage_ids`)."""
        for chunk in _chunks(enumerate(lines, start=first_line_number)):
            decoded = [(number, _decoded(raw)) for number, raw in chunk]
            self.service.look_up_usage_ids(document["usage_id"] for _, document in decoded
                                           if isinstance(document, dict) and isinstance(document.get("usage_id"), str)
                                           and document.get("type") == "cdr")
            for number, document in decoded:
                self.log.lines += 1
                self._apply(number, document)
                if self.service.pending_aggregates >= FLUSH_EVERY_LINES or number % FLUSH_EVERY_LINES == 0:
                    self.service.flush()
        self.service.flush()

    def apply_line(self, number: int, raw: bytes | OverlongLine) -> None:
        self._apply(number, _decoded(raw))

    def _apply(self, number: int, document: "dict[str, Any] | DomainError | None") -> None:
        """`document`: the line's JSON object, the rejection of a line that is not one, or None (a blank line)."""
        if document is None:
            return
        if isinstance(document, DomainError):
            self.log.rejected.append((number, document.code))  # not read, so not known to be a CDR
            return
        is_cdr = document.get("type") == "cdr"
        try:
            outcome = self.service.handle(command_from_document(document))
        except DomainError as error:
            self.log.rejected.append((number, error.code))
            self.log.rejected_cdrs += is_cdr
            return
        self.log.duplicates += outcome == DUPLICATE


def _decoded(raw: bytes | OverlongLine) -> "dict[str, Any] | DomainError | None":
    if isinstance(raw, OverlongLine):
        return InvalidInput("the line is too long")
    if not raw.strip():
        return None
    try:
        return decode_json_object(raw)
    except DomainError as rejection:
        return rejection


def _chunks(numbered: Iterable[tuple[int, Any]]) -> Iterable[list[tuple[int, Any]]]:
    """Consecutive lines, each chunk ending at a line number that is a multiple of FLUSH_EVERY_LINES."""
    chunk: list[tuple[int, Any]] = []
    for number, raw in numbered:
        chunk.append((number, raw))
        if number % FLUSH_EVERY_LINES == 0:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def write_report(app: BillingApplication, log: RunLog, out: IO[bytes]) -> None:
    """SPEC §11's document, from the stored events: organizations and calls are projections."""
    summary, authorizations = organization_summary.OrganizationSummary(), AuthorizationResults()
    rated = 0
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY_BYTES) as calls:
        for _, event in read_events(app, event_classes=organization_summary.EVENT_CLASSES):
            summary.apply(event)
            authorizations.apply(event)
            if type(event) in call_results.EVENT_CLASSES:
                calls.write(b"," if rated else b"")
                calls.write(orjson.dumps(event.usage_id) + b":" + orjson.dumps(call_results.call_result(event), option=_SORTED))
                rated += 1
        out.write(b'{"authorizations":')
        out.write(orjson.dumps(authorizations.document(), option=_SORTED))
        out.write(b',"calls":{')
        calls.seek(0)
        while chunk := calls.read(1 << 20):
            out.write(chunk)
    out.write(b'},"counts":')
    out.write(orjson.dumps({"duplicates": log.duplicates, "rated": rated, "rejected": log.rejected_cdrs},
                           option=_SORTED))
    out.write(b',"organizations":')
    out.write(orjson.dumps(summary.document(), option=_SORTED))
    out.write(b',"rejected":')
    out.write(orjson.dumps([{"code": code, "line": line} for line, code in log.rejected]))
    out.write(b"}\n")


def simulate(source: BinaryIO, store: StoreSettings, rate_card: RateCard, catalog: Catalog,
             out: IO[bytes]) -> RunLog:
    """Run the lines of `source` (each bounded: `application.bounded_lines`) and write the report."""
    app = open_application(store)
    simulation = Simulation(app, rate_card, catalog, store_is_new=True)
    simulation.run(bounded_lines(source))
    write_report(app, simulation.log, out)
    return simulation.log


def report_document(app: BillingApplication, log: RunLog) -> dict[str, Any]:
    """The report as parsed JSON (for tests and callers that want a value, not bytes)."""
    import io
    buffer = io.BytesIO()
    write_report(app, log, buffer)
    return orjson.loads(buffer.getvalue())
