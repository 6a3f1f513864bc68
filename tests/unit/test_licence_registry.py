"""SPEC §3-§5: users, licences, bulk changes and pool contributors. Given events -> when command ->
then events or error."""

from datetime import datetime, timezone

import pytest

from domain.errors import DuplicateUser, LicenceConflict, LicenceNotHeld, LicencePrerequisite, UnknownUser
from domain.licence_registry import LicenceRegistry
from domain.licences import (
    AUDIO_CONFERENCING,
    CALLING_PLAN_DOMESTIC,
    CALLING_PLAN_INTERNATIONAL,
    CALLING_PLAN_PAYG,
    COMMUNICATIONS_CREDITS,
    E5,
    PHONE_SYSTEM,
    licence_set_problem,
    pool_kinds_contributed,
)

UTC = timezone.utc
T0 = datetime(2026, 1, 1, tzinfo=UTC)
T1 = datetime(2026, 1, 2, 9, tzinfo=UTC)


def registry_with(users: dict[str, str], held: dict[str, list[str]] | None = None) -> LicenceRegistry:
    """Given: an organization with these users (name -> usage location), holding these licences.
    Pending events are cleared."""
    registry = LicenceRegistry.open("contoso", T0)
    for user, location in users.items():
        registry.add_user(user, location, T0)
    for user, licences in (held or {}).items():
        registry.assign([user], licences, T0)
    registry.collect_events()
    return registry


def names(events) -> list[str]:
    return [type(event).__name__ for event in events]


def replay(events) -> LicenceRegistry:
    aggregate = None
    for event in events:
        aggregate = event.mutate(aggregate)
    return aggregate


def snapshot(registry: LicenceRegistry):
    return ({user: frozenset(held) for user, held in registry.held.items()}, dict(registry.contributors))


ALICE, BOB, CAROL = "alice@contoso.com", "bob@contoso.com", "carol@contoso.com"
USERS = {ALICE: "US", BOB: "US", CAROL: "GB"}


# ----- licence-set rules (pure) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "code"),
    [
        (set(), None),
        ({E5}, None),
        ({AUDIO_CONFERENCING}, None),
        ({PHONE_SYSTEM}, None),
        ({PHONE_SYSTEM, CALLING_PLAN_DOMESTIC}, None),
        ({E5, CALLING_PLAN_INTERNATIONAL}, None),  # E5 includes PHONE_SYSTEM
        ({PHONE_SYSTEM, CALLING_PLAN_PAYG}, None),
        ({CALLING_PLAN_DOMESTIC}, "licence_prerequisite"),
        ({AUDIO_CONFERENCING, CALLING_PLAN_INTERNATIONAL}, "licence_prerequisite"),
        ({CALLING_PLAN_PAYG}, "licence_prerequisite"),
        ({PHONE_SYSTEM, CALLING_PLAN_DOMESTIC, CALLING_PLAN_INTERNATIONAL}, "licence_conflict"),
        ({PHONE_SYSTEM, CALLING_PLAN_DOMESTIC, CALLING_PLAN_PAYG}, "licence_conflict"),
        # conflict comes before prerequisite
        ({CALLING_PLAN_DOMESTIC, CALLING_PLAN_INTERNATIONAL}, "licence_conflict"),
        ({COMMUNICATIONS_CREDITS}, "licence_prerequisite"),
        ({COMMUNICATIONS_CREDITS, PHONE_SYSTEM}, "licence_prerequisite"),  # PHONE_SYSTEM alone is not enough
        ({COMMUNICATIONS_CREDITS, AUDIO_CONFERENCING}, None),
        ({COMMUNICATIONS_CREDITS, E5}, None),
        ({COMMUNICATIONS_CREDITS, PHONE_SYSTEM, CALLING_PLAN_PAYG}, None),  # any calling plan will do
    ],
)
def test_licence_set_problem(held, code):
    problem = licence_set_problem(frozenset(held))
    assert (problem and problem[0]) == code


@pytest.mark.parametrize(
    ("held", "kinds"),
    [
        ({E5}, {"DIALOUT"}),
        ({E5, AUDIO_CONFERENCING}, {"DIALOUT"}),
        ({PHONE_SYSTEM, CALLING_PLAN_DOMESTIC}, {"DOMESTIC"}),
        ({PHONE_SYSTEM, CALLING_PLAN_INTERNATIONAL}, {"DOMESTIC", "INTERNATIONAL"}),
        ({PHONE_SYSTEM, CALLING_PLAN_PAYG}, set()),
        ({E5, CALLING_PLAN_INTERNATIONAL, COMMUNICATIONS_CREDITS}, {"DOMESTIC", "INTERNATIONAL", "DIALOUT"}),
    ],
)
def test_pool_kinds_contributed(held, kinds):
    assert pool_kinds_contributed(held) == kinds


# ----- users ------------------------------------------------------------------------------------


def test_add_user():
    registry = registry_with({})
    registry.add_user(ALICE, "US", T1)
    (event,) = registry.collect_events()
    assert names([event]) == ["UserAdded"]
    assert (event.user, event.usage_location, event.at) == (ALICE, "US", "2026-01-02T09:00:00Z")
    assert registry.has_user(ALICE)
    assert registry.caller(ALICE).licences == frozenset()


def test_duplicate_user_rejected():
    registry = registry_with({ALICE: "US"})
    with pytest.raises(DuplicateUser) as caught:
        registry.add_user(ALICE, "GB", T1)
    assert caught.value.code == "duplicate_user"
    assert registry.collect_events() == []
    assert registry.caller(ALICE).usage_location == "US"


# ----- assignment -------------------------------------------------------------------------------


def test_bulk_assign_phone_system_and_plan_together():
    registry = registry_with(USERS)
    registry.assign([ALICE, BOB], [PHONE_SYSTEM, CALLING_PLAN_DOMESTIC], T1)
    (event,) = registry.collect_events()
    assert names([event]) == ["LicencesAssigned"]
    assert event.users == [ALICE, BOB]
    assert event.licences == [PHONE_SYSTEM, CALLING_PLAN_DOMESTIC]
    assert registry.caller(ALICE).licences == {PHONE_SYSTEM, CALLING_PLAN_DOMESTIC}
    assert registry.pool_contributors("DOMESTIC/US") == 2


def test_plan_alone_without_phone_system_rejected():
    registry = registry_with(USERS)
    with pytest.raises(LicencePrerequisite):
        registry.assign([ALICE], [CALLING_PLAN_DOMESTIC], T1)


def test_assigning_a_held_licence_is_a_no_op():
    registry = registry_with(USERS, {ALICE: [PHONE_SYSTEM, CALLING_PLAN_DOMESTIC]})
    before = snapshot(registry)
    registry.assign([ALICE], [CALLING_PLAN_DOMESTIC], T1)  # no error
    registry.collect_events()
    assert snapshot(registry) == before
    assert registry.pool_contributors("DOMESTIC/US") == 1  # not counted twice


def test_second_calling_plan_conflicts():
    registry = registry_with(USERS, {ALICE: [PHONE_SYSTEM, CALLING_PLAN_DOMESTIC]})
    with pytest.raises(LicenceConflict):
        registry.assign([ALICE], [CALLING_PLAN_INTERNATIONAL], T1)


def test_unknown_user_rejected():
    registry = registry_with(USERS)
    with pytest.raises(UnknownUser) as caught:
        registry.assign(["mallory@contoso.com"], [E5], T1)
    assert "mallory@contoso.com" in caught.value.message


def test_communications_credits_prerequisites():
    registry = registry_with(USERS, {ALICE: [PHONE_SYSTEM]})
    with pytest.raises(LicencePrerequisite):
        registry.assign([ALICE], [COMMUNICATIONS_CREDITS], T1)  # PHONE_SYSTEM is not audio conferencing
    registry.assign([ALICE], [COMMUNICATIONS_CREDITS, CALLING_PLAN_PAYG], T1)  # a calling plan (even PAYG) will do
    registry.assign([BOB], [E5, COMMUNICATIONS_CREDITS], T1)
    registry.assign([CAROL], [AUDIO_CONFERENCING, COMMUNICATIONS_CREDITS], T1)
    assert names(registry.collect_events()) == ["LicencesAssigned"] * 3


def test_bulk_failure_is_atomic_and_lists_every_failing_user_with_first_code():
    # alice fine, bob lacks PHONE_SYSTEM (prerequisite), mallory unknown, carol already has a plan (conflict)
    registry = registry_with(USERS, {ALICE: [PHONE_SYSTEM], CAROL: [PHONE_SYSTEM, CALLING_PLAN_INTERNATIONAL]})
    before = snapshot(registry)
    with pytest.raises(LicencePrerequisite) as caught:
        registry.assign([ALICE, BOB, "mallory@contoso.com", CAROL], [CALLING_PLAN_DOMESTIC], T1)
    # the code is the FIRST failing user's in list order (bob: prerequisite), not the "worst" code
    assert caught.value.code == "licence_prerequisite"
    message = caught.value.message
    assert "3 of 4" in message
    assert f"{BOB}: licence_prerequisite" in message
    assert "mallory@contoso.com: unknown_user" in message
    assert f"{CAROL}: licence_conflict" in message
    assert f"{ALICE}:" not in message
    # atomic: nothing changed, no event
    assert registry.collect_events() == []
    assert snapshot(registry) == before


@pytest.mark.parametrize(
    ("users", "code"),
    [
        (["mallory@contoso.com", BOB], "unknown_user"),
        ([BOB, "mallory@contoso.com"], "licence_prerequisite"),
        ([CAROL, BOB], "licence_conflict"),
    ],
)
def test_code_follows_list_order(users, code):
    registry = registry_with(USERS, {CAROL: [PHONE_SYSTEM, CALLING_PLAN_INTERNATIONAL]})
    with pytest.raises((UnknownUser, LicencePrerequisite, LicenceConflict)) as caught:
        registry.assign(users, [CALLING_PLAN_DOMESTIC], T1)
    assert caught.value.code == code


def test_conflict_before_prerequisite_for_one_user():
    # assigning two plans without PHONE_SYSTEM: both rules fail; conflict is reported
    registry = registry_with(USERS)
    with pytest.raises(LicenceConflict):
        registry.assign([ALICE], [CALLING_PLAN_DOMESTIC, CALLING_PLAN_INTERNATIONAL], T1)


def test_check_change_raises_without_triggering():
    registry = registry_with(USERS)
    registry.check_change([ALICE], [PHONE_SYSTEM], assign=True)  # passes, nothing triggered
    assert registry.collect_events() == []
    with pytest.raises(LicencePrerequisite):
        registry.check_change([ALICE], [CALLING_PLAN_DOMESTIC], assign=True)


# ----- removal ----------------------------------------------------------------------------------


def test_remove_licence():
    registry = registry_with(USERS, {ALICE: [PHONE_SYSTEM, CALLING_PLAN_DOMESTIC]})
    registry.remove([ALICE], [CALLING_PLAN_DOMESTIC], T1)
    assert names(registry.collect_events()) == ["LicencesRemoved"]
    assert registry.caller(ALICE).licences == {PHONE_SYSTEM}
    assert registry.pool_contributors("DOMESTIC/US") == 0


def test_removing_a_licence_not_held():
    registry = registry_with(USERS, {ALICE: [PHONE_SYSTEM]})
    with pytest.raises(LicenceNotHeld) as caught:
        registry.remove([ALICE], [E5], T1)
    assert caught.value.code == "licence_not_held"
    assert registry.collect_events() == []


def test_removing_phone_system_while_a_plan_is_held():
    registry = registry_with(USERS, {ALICE: [PHONE_SYSTEM, CALLING_PLAN_DOMESTIC]})
    with pytest.raises(LicencePrerequisite):
        registry.remove([ALICE], [PHONE_SYSTEM], T1)
    assert registry.caller(ALICE).licences == {PHONE_SYSTEM, CALLING_PLAN_DOMESTIC}


def test_removing_phone_system_and_plan_together_is_fine():
    registry = registry_with(USERS, {ALICE: [PHONE_SYSTEM, CALLING_PLAN_DOMESTIC]})
    registry.remove([ALICE], [PHONE_SYSTEM, CALLING_PLAN_DOMESTIC], T1)
    assert registry.caller(ALICE).licences == frozenset()


def test_removing_the_last_prerequisite_of_communications_credits():
    registry = registry_with(USERS, {ALICE: [E5, AUDIO_CONFERENCING, COMMUNICATIONS_CREDITS]})
    registry.remove([ALICE], [E5], T1)  # AUDIO_CONFERENCING still qualifies
    with pytest.raises(LicencePrerequisite):
        registry.remove([ALICE], [AUDIO_CONFERENCING], T1)  # the last prerequisite


def test_removal_not_held_comes_before_prerequisite():
    # alice would lose PHONE_SYSTEM under her plan (prerequisite); bob holds no plan, so he may lose it
    registry = registry_with(USERS, {ALICE: [PHONE_SYSTEM, CALLING_PLAN_DOMESTIC], BOB: [PHONE_SYSTEM]})
    with pytest.raises(LicencePrerequisite) as caught:
        registry.remove([ALICE, BOB], [PHONE_SYSTEM], T1)
    assert f"{ALICE}: licence_prerequisite" in caught.value.message
    assert f"{BOB}:" not in caught.value.message
    # for one user missing one of the licences removed, licence_not_held wins over the prerequisite
    with pytest.raises(LicenceNotHeld):
        registry.remove([ALICE], [PHONE_SYSTEM, E5], T1)
    with pytest.raises(UnknownUser):
        registry.remove(["mallory@contoso.com", ALICE], [PHONE_SYSTEM], T1)


# ----- pool contributors (SPEC §5) --------------------------------------------------------------


def test_e5_and_audio_conferencing_count_once_in_dialout():
    registry = registry_with(USERS)
    registry.assign([ALICE], [E5, AUDIO_CONFERENCING], T1)
    assert registry.pool_contributors("DIALOUT/US") == 1
    registry.assign([BOB], [AUDIO_CONFERENCING], T1)
    registry.assign([BOB], [E5], T1)
    assert registry.pool_contributors("DIALOUT/US") == 2  # alice + bob, each once
    registry.remove([ALICE], [E5], T1)
    assert registry.pool_contributors("DIALOUT/US") == 2  # alice still has AUDIO_CONFERENCING
    registry.remove([ALICE], [AUDIO_CONFERENCING], T1)
    assert registry.pool_contributors("DIALOUT/US") == 1


def test_contributors_are_per_usage_location_and_kind():
    registry = registry_with(USERS)
    registry.assign([ALICE, CAROL], [PHONE_SYSTEM, CALLING_PLAN_INTERNATIONAL], T1)
    registry.assign([BOB], [PHONE_SYSTEM, CALLING_PLAN_DOMESTIC], T1)
    assert registry.pool_contributors("DOMESTIC/US") == 2  # alice (international includes domestic) + bob
    assert registry.pool_contributors("INTERNATIONAL/US") == 1  # alice
    assert registry.pool_contributors("DOMESTIC/GB") == 1  # carol
    assert registry.pool_contributors("INTERNATIONAL/GB") == 1
    assert registry.pool_contributors("DIALOUT/US") == 0
    assert registry.pool_contributors("DOMESTIC/FR") == 0


def test_payg_contributes_to_no_pool():
    registry = registry_with(USERS)
    registry.assign([ALICE], [PHONE_SYSTEM, CALLING_PLAN_PAYG], T1)
    assert all(count == 0 for count in registry.contributors.values())


def test_licensed_users_and_holders():
    registry = registry_with(USERS, {ALICE: [E5], BOB: [E5, COMMUNICATIONS_CREDITS]})
    assert registry.licensed_users == 2
    assert registry.holders_of(E5) == 2
    assert registry.holders_of(COMMUNICATIONS_CREDITS) == 1


def test_replay_equals_incrementally_built_state():
    registry = LicenceRegistry.open("contoso", T0)
    for user, location in USERS.items():
        registry.add_user(user, location, T0)
    registry.assign([ALICE, BOB, CAROL], [E5, CALLING_PLAN_INTERNATIONAL], T1)
    registry.assign([ALICE], [AUDIO_CONFERENCING], T1)
    registry.remove([BOB], [CALLING_PLAN_INTERNATIONAL], T1)
    events = registry.collect_events()
    rebuilt = replay(events)
    assert snapshot(rebuilt) == snapshot(registry)
    assert rebuilt.locations == registry.locations
    assert rebuilt.id == LicenceRegistry.create_id("contoso")


def test_events_carry_each_user_and_licence_once():
    registry = registry_with(USERS)
    registry.assign([ALICE, ALICE], [E5, E5], T1)
    (event,) = registry.collect_events()
    assert (event.users, event.licences) == ([ALICE], [E5])
    assert registry.pool_contributors("DIALOUT/US") == 1


def test_removing_e5_under_a_calling_plan_is_a_prerequisite_failure():
    registry = registry_with(USERS, {ALICE: [E5, CALLING_PLAN_DOMESTIC]})
    with pytest.raises(LicencePrerequisite):
        registry.remove([ALICE], [E5], T1)
    registry.assign([ALICE], [PHONE_SYSTEM], T1)
    registry.remove([ALICE], [E5], T1)  # PHONE_SYSTEM now carries the plan
    assert registry.caller(ALICE).licences == {PHONE_SYSTEM, CALLING_PLAN_DOMESTIC}


def test_bulk_with_a_no_op_user_and_a_changing_user():
    registry = registry_with(USERS, {ALICE: [PHONE_SYSTEM, CALLING_PLAN_DOMESTIC]})
    registry.assign([ALICE, BOB], [PHONE_SYSTEM, CALLING_PLAN_DOMESTIC], T1)  # alice already holds both
    assert registry.caller(BOB).licences == {PHONE_SYSTEM, CALLING_PLAN_DOMESTIC}
    assert registry.pool_contributors("DOMESTIC/US") == 2
