"""A readable summary of a simulation run, for people (the JSON report is for programs)."""

from collections import Counter
from typing import Any


def render_summary(report: dict[str, Any], lines: int, seconds: float) -> str:
    counts = report["counts"]
    kinds = Counter(call["kind"] for call in report["calls"].values())
    codes = Counter(entry["code"] for entry in report["rejected"])
    out = [
        f"{lines} lines in {seconds:.2f} s ({lines / seconds if seconds else 0:,.0f} lines/s)",
        f"calls rated {counts['rated']}, duplicates {counts['duplicates']}, rejected CDRs {counts['rejected']}",
        "calls by kind: " + ", ".join(f"{kind} {n}" for kind, n in sorted(kinds.items())),
        "rejected lines: " + (", ".join(f"{code} {n}" for code, n in sorted(codes.items())) or "none"),
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
    return "\n".join(out) + "\n"
