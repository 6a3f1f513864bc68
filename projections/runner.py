"""Bringing projections up to the end of the store's log, once or continuously."""

import threading
from collections.abc import Callable, Sequence

from projections.projector import ConcurrentProjector, Projector
from projections.sources import StoreLog

READ_PAGE_SIZE = 1000
IDLE_POLL_S = 0.5
MAX_CONFLICTS = 20


def catch_up(projector: Projector, log: StoreLog, *, page_size: int = READ_PAGE_SIZE,
             progress: Callable[[int, int], None] | None = None, until: int | None = None) -> int:
    """Apply everything the log holds now (or up to position `until`); returns how many records
    were applied."""
    end, applied = (log.end() if until is None else until), 0
    position = projector.position()
    conflicts = 0
    while position < end:
        records = log.read(position, page_size, end, projector.projection.event_types)
        up_to = end if len(records) < page_size else records[-1].position
        try:
            applied += projector.apply(records, up_to=up_to)
        except ConcurrentProjector:
            conflicts += 1  # another process applied these first: read the position again and go on
            if conflicts > MAX_CONFLICTS:
                raise
        position = projector.position()
        if progress is not None:
            progress(position, end)
    return applied


def run_projectors(projectors: Sequence[Projector], log: StoreLog, stop: threading.Event,
                   on_applied: Callable[[str, int], None] = lambda name, count: None) -> None:
    """Keep every projector at the log's end until `stop` is set."""
    while not stop.is_set():
        busy = False
        for projector in projectors:
            applied = catch_up(projector, log)
            if applied:
                busy = True
                on_applied(projector.projection.name, applied)
        if not busy:
            stop.wait(IDLE_POLL_S)
