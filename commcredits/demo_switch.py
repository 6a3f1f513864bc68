"""The demo's call switch (SPEC §13): the generated month's calls, played in the order of time.

Before it connects a billable call the switch asks (`call.authorize`, at the call's start, for
the call's planned duration). A denied call is not connected: it has no CDR. An allowed call is
cut at `max_seconds`, and its CDR (carrying the call id, which settles the reservation) is sent
when it ends. Free calls (inbound, emergency) are not asked: they are always allowed, and an
emergency call is connected whatever the answer.

Rounds. Each question must be decided on a state that holds every CDR sent before it, and
waiting for the consumer after each CDR would cost a broker round trip per call. So the switch
works in rounds of at most `ROUND` (an hour) of the month: it asks every question of the round
in the order the calls start, then sends the CDRs of the calls that ended in the round in the
order they end; the port begins the next step only once those are rated. Within a round a
question sees the calls that ended before it as reservations, which hold what the calls cost
until their CDRs are rated. A round is no longer than the hour a reservation waits for its CDR
(SPEC §13.1's `expires_at`), so every CDR is rated before its reservation could expire; that
bound, not the number of calls, sets how many rounds a month takes (one per hour with calls).
Administrative lines (funds added, a payment method changed, the clock) end a round and are
applied at their time.

Guarantee: with a port that applies every step after all the lines sent before it, the run is
deterministic, and `simulate` on the lines in the order sent ends where it ends.
"""

import heapq
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from domain.authorization import ALLOWED, CDR_GRACE
from domain.calls import FREE_KINDS, kind_of
from domain.timestamps import format_timestamp, parse_timestamp

ROUND = CDR_GRACE  # SPEC §13.1: a reservation waits this long after the call's longest end for its CDR
LONGEST_CALL = timedelta(seconds=86_400)  # SPEC §10's longest duration_seconds


class SwitchPort(Protocol):
    """Where the switch's lines go; each step is applied after every line sent before it."""

    def ask(self, requests: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
        """Decide `call.authorize` lines in order: each one's decision record (SPEC §13.3), or
        None when the line was rejected."""

    def send_cdrs(self, lines: list[dict[str, Any] | str]) -> None:
        """CDRs (and malformed lines, which the engine rejects) as a switch publishes them."""

    def administer(self, line: dict[str, Any]) -> None:
        """An administrative line (funds added, a payment method changed, the clock)."""


@dataclass
class SwitchStats:
    asked: int = 0
    allowed: int = 0
    cut_short: int = 0  # allowed for less than the call's planned duration
    denied: Counter = field(default_factory=Counter)  # by code
    rejected: int = 0  # questions the engine did not take: not connected either
    not_asked: int = 0  # free calls


@dataclass
class _Call:
    cdr: dict[str, Any]
    start: datetime
    retried: bool = False  # the switch sends its CDR twice (a duplicate the engine must ignore)


class Switch:
    def __init__(self, port: SwitchPort) -> None:
        self.port = port
        self.stats = SwitchStats()
        self._asks: list[tuple[datetime, int, _Call]] = []  # by start
        self._ends: list[tuple[datetime, int, _Call]] = []  # connected calls, by (cut) end
        self._admin: deque[tuple[datetime, dict[str, Any]]] = deque()  # in the order read, which is time order
        self._raw: list[str] = []  # malformed lines, sent with the next CDRs
        self._calls: dict[str, _Call] = {}  # calls read and not yet ended or denied, by usage id
        self._sequence = 0
        self._read_until: datetime | None = None  # time of the latest line read
        self._lines: Iterator[dict[str, Any] | str] = iter(())
        self._exhausted = False

    def run(self, lines: Iterable[dict[str, Any] | str]) -> None:
        """Play `lines` (SPEC §11 lines in time order: CDRs by end time, administrative lines
        at their place) through the port."""
        self._lines, self._exhausted = iter(lines), False
        while self._read_ahead():
            self._step()

    # ----- reading ahead ----------------------------------------------------------------------

    def _read_ahead(self) -> bool:
        """Read until every line due in the next round is known; False when nothing is left."""
        while not self._exhausted and (self._next_time() is None or not self._known_until(self._next_time())):
            self._read_one()
        return self._next_time() is not None or bool(self._raw)

    def _known_until(self, start: datetime) -> bool:
        """Whether every line of the round beginning at `start` has been read: lines come in time
        order and no call lasts longer than LONGEST_CALL, so a call read later starts at or after
        `_read_until - LONGEST_CALL`."""
        return self._read_until - LONGEST_CALL >= start + ROUND

    def _read_one(self) -> None:
        line = next(self._lines, None)
        if line is None:
            self._exhausted = True
        elif isinstance(line, str):
            self._raw.append(line)  # not JSON: sent as it came, for the engine to reject
        elif line.get("type") == "cdr":
            self._read_cdr(line)
        else:
            self._admin.append((self._read_at(line["at"]), line))

    def _read_cdr(self, cdr: dict[str, Any]) -> None:
        earlier = self._calls.get(cdr["usage_id"])
        if earlier is not None:  # the switch sends this call's CDR twice
            earlier.retried = True
            return
        call = _Call(cdr, parse_timestamp(cdr["start_time"]))
        self._calls[cdr["usage_id"]] = call
        end = self._read_at(cdr["end_time"])
        if kind_of(cdr["call_type"], cdr.get("number_type")) in FREE_KINDS:
            self.stats.not_asked += 1
            self._push(self._ends, end, call)
        else:
            self._push(self._asks, call.start, call)

    def _read_at(self, text: str) -> datetime:
        """The month comes in time order (a retried CDR aside), so the latest time read bounds
        when anything read later can start."""
        at = parse_timestamp(text)
        self._read_until = at if self._read_until is None else max(self._read_until, at)
        return at

    def _push(self, heap: list, at: datetime, call: _Call) -> None:
        self._sequence += 1
        heapq.heappush(heap, (at, self._sequence, call))

    def _next_time(self) -> datetime | None:
        times = [queue[0][0] for queue in (self._asks, self._ends, self._admin) if queue]
        return min(times, default=None)

    # ----- one step: an administrative line, or a round -----------------------------------------

    def _step(self) -> None:
        first = self._next_time()
        if self._admin and (first is None or self._admin[0][0] <= first):
            self.port.administer(self._admin.popleft()[1])
            return
        round_end = first + ROUND if first is not None else None
        if self._admin and round_end is not None:
            round_end = min(round_end, self._admin[0][0])
        self._ask(_pop_before(self._asks, round_end))
        cdrs = [*self._raw, *self._sent(_pop_before(self._ends, round_end))]
        self._raw.clear()
        if cdrs:
            self.port.send_cdrs(cdrs)

    def _ask(self, calls: list[_Call]) -> None:
        if not calls:
            return
        answers = self.port.ask([_request(call) for call in calls])
        for call, answer in zip(calls, answers, strict=True):
            self._answered(call, answer)

    def _answered(self, call: _Call, answer: dict[str, Any] | None) -> None:
        self.stats.asked += 1
        if answer is None or answer["decision"] != ALLOWED:
            self.stats.rejected += answer is None
            if answer is not None:
                self.stats.denied[answer["code"]] += 1
            del self._calls[call.cdr["usage_id"]]  # not connected: no CDR
            return
        self.stats.allowed += 1
        duration = call.cdr["duration_seconds"]
        if answer["max_seconds"] < duration:
            self.stats.cut_short += 1
            duration = answer["max_seconds"]
        end = call.start + timedelta(seconds=duration)
        call.cdr = {**call.cdr, "call_id": _call_id(call), "duration_seconds": duration,
                    "end_time": format_timestamp(end)}
        self._push(self._ends, end, call)

    def _sent(self, calls: list[_Call]) -> list[dict[str, Any]]:
        lines = []
        for call in calls:
            del self._calls[call.cdr["usage_id"]]
            lines.extend([call.cdr, call.cdr] if call.retried else [call.cdr])
        return lines


def _pop_before(heap: list, end: datetime | None) -> list[_Call]:
    popped = []
    while heap and (end is None or heap[0][0] < end):
        popped.append(heapq.heappop(heap)[2])
    return popped


def _call_id(call: _Call) -> str:
    return call.cdr["usage_id"]  # one call, one CDR: the CDR's id names the call too


def _request(call: _Call) -> dict[str, Any]:
    """SPEC §13.1's question, at the call's start, for as long as the call is planned to last."""
    cdr = call.cdr
    request = {"type": "call.authorize", "at": cdr["start_time"], "org": cdr["org"], "call_id": _call_id(call),
               "call_type": cdr["call_type"], "caller_number": cdr["caller_number"],
               "destination_number": cdr["destination_number"],
               "requested_seconds": max(1, cdr["duration_seconds"])}
    request.update({name: cdr[name] for name in ("user", "number_type") if name in cdr})
    return request
