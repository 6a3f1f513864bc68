"""Licences and their rules (SPEC §4), and what each contributes to the pools (SPEC §5)."""

from collections.abc import Iterable

from domain.catalog import DIALOUT, DOMESTIC, INTERNATIONAL

E5 = "E5"
AUDIO_CONFERENCING = "AUDIO_CONFERENCING"
PHONE_SYSTEM = "PHONE_SYSTEM"
CALLING_PLAN_DOMESTIC = "CALLING_PLAN_DOMESTIC"
CALLING_PLAN_INTERNATIONAL = "CALLING_PLAN_INTERNATIONAL"
CALLING_PLAN_PAYG = "CALLING_PLAN_PAYG"
COMMUNICATIONS_CREDITS = "COMMUNICATIONS_CREDITS"

LICENCES = (
    E5, AUDIO_CONFERENCING, PHONE_SYSTEM, CALLING_PLAN_DOMESTIC, CALLING_PLAN_INTERNATIONAL,
    CALLING_PLAN_PAYG, COMMUNICATIONS_CREDITS,
)
CALLING_PLANS = frozenset({CALLING_PLAN_DOMESTIC, CALLING_PLAN_INTERNATIONAL, CALLING_PLAN_PAYG})


def has_audio_conferencing(held: Iterable[str]) -> bool:
    held = set(held)
    return AUDIO_CONFERENCING in held or E5 in held


def has_phone_system(held: Iterable[str]) -> bool:
    held = set(held)
    return PHONE_SYSTEM in held or E5 in held


def has_domestic_minutes(held: Iterable[str]) -> bool:
    held = set(held)
    return CALLING_PLAN_DOMESTIC in held or CALLING_PLAN_INTERNATIONAL in held


def has_international_minutes(held: Iterable[str]) -> bool:
    return CALLING_PLAN_INTERNATIONAL in set(held)


def licence_set_problem(held: frozenset[str]) -> tuple[str, str] | None:
    """(code, explanation) if a user may not hold this set, else None. Conflict before
    prerequisite, as SPEC §4 orders them."""
    plans = held & CALLING_PLANS
    if len(plans) > 1:
        return "licence_conflict", f"holds more than one calling plan ({', '.join(sorted(plans))})"
    if plans and not has_phone_system(held):
        return "licence_prerequisite", f"{next(iter(plans))} requires PHONE_SYSTEM or E5"
    if COMMUNICATIONS_CREDITS in held and not (has_audio_conferencing(held) or plans):
        return "licence_prerequisite", "COMMUNICATIONS_CREDITS requires audio conferencing (AUDIO_CONFERENCING or E5) or a calling plan"
    return None


def pool_kinds_contributed(held: Iterable[str]) -> frozenset[str]:
    """The pool kinds a user with these licences adds minutes to (once each, whatever the overlap)."""
    held = set(held)
    kinds = set()
    if has_domestic_minutes(held):
        kinds.add(DOMESTIC)
    if has_international_minutes(held):
        kinds.add(INTERNATIONAL)
    if has_audio_conferencing(held):
        kinds.add(DIALOUT)
    return frozenset(kinds)
