"""Call-detail records (SPEC §10) and the kind of call each one is (SPEC §6)."""

from dataclasses import dataclass
from datetime import datetime

OUTBOUND, DIALOUT, APP_OUTBOUND = "outbound", "dialout", "app_outbound"
TOLLFREE, INBOUND, EMERGENCY = "tollfree", "inbound", "emergency"
CALL_KINDS = (OUTBOUND, DIALOUT, APP_OUTBOUND, TOLLFREE, INBOUND, EMERGENCY)
FREE_KINDS = frozenset({INBOUND, EMERGENCY})

_OUTBOUND_TYPES = frozenset({"user_out", "user_out_conf", "user_out_transfer", "user_out_forwarding", "fmc_out"})
_APP_OUTBOUND_TYPES = frozenset({"ucap_out", "ucap_out_conf"})
_TOLLFREE_CAPABLE_TYPES = frozenset({"user_in", "conf_in", "ucap_in", "unassigned_in"})
_INBOUND_TYPES = _TOLLFREE_CAPABLE_TYPES | {"fmc_in", "emergency_in"}
CALL_TYPES = frozenset(_OUTBOUND_TYPES | _APP_OUTBOUND_TYPES | _INBOUND_TYPES | {"conf_out", "emergency_out"})
TOLL_FREE = "toll_free"
MAX_DURATION_SECONDS = 86400

# The rate card's kind column for each billable call kind (SPEC §6 step 4).
RATE_KIND_OF = {OUTBOUND: "outbound", APP_OUTBOUND: "outbound", DIALOUT: "dialout", TOLLFREE: "tollfree"}


@dataclass(frozen=True, slots=True)
class Cdr:
    usage_id: str
    org: str
    user: str | None
    call_type: str
    number_type: str | None
    caller_number: str
    destination_number: str
    start_time: datetime
    end_time: datetime
    duration_seconds: int
    call_id: str | None = None
    conference_id: str | None = None

    @property
    def kind(self) -> str:
        return kind_of(self.call_type, self.number_type)

    @property
    def rated_number(self) -> str:
        """Toll-free calls are priced by where the caller is; everything else by destination."""
        return self.caller_number if self.kind == TOLLFREE else self.destination_number


def kind_of(call_type: str, number_type: str | None) -> str:
    assert call_type in CALL_TYPES, call_type
    if call_type in _OUTBOUND_TYPES:
        return OUTBOUND
    if call_type == "conf_out":
        return DIALOUT
    if call_type in _APP_OUTBOUND_TYPES:
        return APP_OUTBOUND
    if call_type == "emergency_out":
        return EMERGENCY
    if call_type in _TOLLFREE_CAPABLE_TYPES and number_type == TOLL_FREE:
        return TOLLFREE
    return INBOUND


def user_required(call_type: str, number_type: str | None) -> bool:
    """SPEC §6's `user` column."""
    kind = kind_of(call_type, number_type)
    if kind in (OUTBOUND, DIALOUT, EMERGENCY):
        return True
    if kind == APP_OUTBOUND:
        return False
    if kind == TOLLFREE:
        return call_type == "user_in"
    return call_type in ("user_in", "fmc_in")


def billed_minutes(duration_seconds: int) -> int:
    return -(-duration_seconds // 60)
