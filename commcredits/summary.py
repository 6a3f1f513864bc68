"""A readable summary of a simulation run, for people (the JSON report is for programs)."""

from collections import Counter
from dataclasses import dataclass
from typing import Any

from domain.authorization import ALLOWED, DENIAL_CODES


@dataclass(frozen=True)
class AuthorizedRun:
    """What a run whose switch asked before each billable call adds to its summary: the calls
    the switch cut short, and each organization's uncollected total in the same month with no
    call asked (`demo --no-authorize`)."""
    cut_short: int  # allowed for less than the call was planned to last
    uncollected_without: dict[str, str]


def render_summary(report: dict[str, Any], lines: int, seconds: float,
                   authorized: AuthorizedRun | None = None) -> str:
    counts = report["counts"]
    kinds = Counter(call["kind"] for call in report["calls"].values())
    codes = Counter(entry["code"] for entry in report["rejected"])
    out = [
        f"{lines} lines in {seconds:.2f} s ({lines / seconds if seconds else 0:,.0f} lines/s)",
        f"calls rated {counts['rated']}, duplicates {counts['duplicates']}, rejected CDRs {counts['rejected']}",
        "calls by kind: " + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())),
        "rejected lines: " + (", ".join(f"{code} {n}" for code, n in sorted(codes.items())) or "none"),
        *_decisions(report.get("authorizations", {}), authorized),
        "",
    ]
    header = f"{'organization':<16}{'cur':<5}{'balance':>12}{'added':>12}{'charged':>12}{'expired':>12}" \
             f"{'uncollected':>13}{'overage':>12}  recharges ok/failed  depleted  auto-recharge"
    out.append(header)
    for org, state in report["organizations"].items():
        totals, recharges, auto = state["totals"], state["recharges"], state["auto_recharge"]
        auto_text = "off" if not auto["enabled"] else (
            f"{auto['recharge_amount']} below {auto['trigger_amount']}" + (" SUSPENDED" if auto["suspended"] else ""))
        out.append(f"{org:<16}{state['currency']:<5}{state['balance']:>12}{totals['funds_added']:>12}"
                   f"{totals['charged']:>12}{totals['expired']:>12}{totals['uncollected']:>13}{totals['overage']:>12}"
                   f"  {recharges['succeeded']:>6}/{recharges['failed']:<12}{state['depleted']:>8}  {auto_text}")
    if authorized is not None:
        out.extend(["", *_uncollected_beside(report["organizations"], authorized)])
    return "\n".join(out) + "\n"


def _decisions(authorizations: dict[str, dict[str, Any]], authorized: AuthorizedRun | None) -> list[str]:
    """SPEC §13's decisions by outcome: allowed, and denied by code (every code, 0 included)."""
    if not authorizations and authorized is None:
        return []
    denied = Counter(record["code"] for record in authorizations.values() if record["decision"] != ALLOWED)
    allowed = len(authorizations) - sum(denied.values())
    cut = f" ({authorized.cut_short} cut short at max_seconds)" if authorized is not None else ""
    return [f"call authorizations: {len(authorizations)} decided; allowed {allowed}{cut}; denied "
            f"{sum(denied.values())}: " + ", ".join(f"{code} {denied[code]}" for code in sorted(DENIAL_CODES))]


def _uncollected_beside(organizations: dict[str, Any], authorized: AuthorizedRun) -> list[str]:
    out = [f"{'uncollected':<16}{'cur':<5}{'with authorization':>20}{'without (--no-authorize)':>26}"]
    for org, state in organizations.items():
        out.append(f"{org:<16}{state['currency']:<5}{state['totals']['uncollected']:>20}"
                   f"{authorized.uncollected_without.get(org, '-'):>26}")
    return out
