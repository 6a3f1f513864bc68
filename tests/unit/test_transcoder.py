"""The orjson transcoder: encode then decode is the identity (STYLE.md "event round-trips through
the transcoder are the identity"), for the values events and snapshots carry and for real events.
"""

from datetime import datetime, timedelta, timezone
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from application.settings import memory_store
from application.transcoder import OrjsonTranscoder
from domain.auto_recharge import AutoRechargeSettings
from domain.credit_account import CreditAccount
from domain.lots import Lot
from projections.event_feed import read_events
from tests.property.strategies import (
    FrequentSnapshots,
    aggregate_state,
    as_text,
    canonical,
    live_aggregates,
    new_simulation,
    run_line_by_line,
    scenario_lines,
)

TRANSCODER = OrjsonTranscoder()
TAGS = ("$dec", "$dt", "$set", "$uuid", "$dc")

# Strings and keys as the domain writes them. A `"$` anywhere is excluded here: it is the
# transcoder's tag marker, and the tests at the bottom show what it does to such values.
texts = st.text(max_size=12).filter(lambda text: '"$' not in f'"{text}')
offsets = st.integers(-23 * 60 + 1, 23 * 60 - 1).map(lambda minutes: timezone(timedelta(minutes=minutes)))
aware_datetimes = st.datetimes(min_value=datetime(1900, 1, 1), timezones=st.one_of(st.just(timezone.utc), offsets))
datetimes = st.one_of(aware_datetimes, st.datetimes())
money = st.decimals(allow_nan=False, allow_infinity=False)
ints = st.integers(-(2 ** 63), 2 ** 63 - 1)  # orjson's range; events carry small counters
lots = st.builds(Lot, st.integers(1, 10 ** 6), texts, money, aware_datetimes, aware_datetimes, money, money)
recharge_settings = st.builds(AutoRechargeSettings, st.booleans(), st.none() | money, st.none() | money)
scalars = st.one_of(texts, ints, st.booleans(), st.none(), money, datetimes, lots, recharge_settings)
sets = st.one_of(st.sets(texts, max_size=5), st.sets(ints, max_size=5))


def nested(leaves: st.SearchStrategy) -> st.SearchStrategy:
    return st.recursive(st.one_of(leaves, sets),
                        lambda children: st.one_of(st.lists(children, max_size=4),
                                                   st.dictionaries(texts, children, max_size=4)),
                        max_leaves=12)


values = nested(scalars)
values_with_uuids = nested(st.one_of(scalars, st.uuids()))


def round_trip(obj):
    return TRANSCODER.decode(TRANSCODER.encode(obj))


@settings(max_examples=300)
@given(st.dictionaries(texts, values, max_size=6), datetimes)
def test_event_state_round_trips(fields, timestamp):
    """An event's state as the mapper hands it over: a dict whose `timestamp` is a datetime."""
    state = {**fields, "timestamp": timestamp}
    assert canonical(round_trip(state)) == canonical(state)


@settings(max_examples=300)
@given(st.dictionaries(texts, values, max_size=6))
def test_plain_dicts_round_trip(state):
    assert canonical(round_trip(state)) == canonical(state)


@settings(max_examples=300)
@given(st.dictionaries(texts, values_with_uuids, max_size=6), datetimes, texts)
def test_snapshot_state_round_trips_with_uuids(aggregate_state_, timestamp, topic):
    """A snapshot: `topic`, `timestamp` and the aggregate's `state`, where UUIDs may appear."""
    snapshot = {"timestamp": timestamp, "topic": topic, "state": {"_id": UUID(int=7), **aggregate_state_}}
    assert canonical(round_trip(snapshot)) == canonical(snapshot)


# ----- real events and snapshots, through the application's mapper ---------------------------------

@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario_lines(max_body=25))
def test_every_stored_event_and_snapshot_round_trips_through_the_mapper(lines):
    note(as_text(lines))
    simulation = new_simulation(FrequentSnapshots(env=memory_store().env))
    run_line_by_line(simulation, lines)
    mapper = simulation.app.mapper
    for _, event in read_events(simulation.app):
        again = mapper.to_domain_event(mapper.to_stored_event(event))
        assert type(again) is type(event)
        assert canonical(vars(again)) == canonical(vars(event))
    for aggregate in live_aggregates(simulation):
        snapshot = type(aggregate).Snapshot.take(aggregate)
        restored = mapper.to_domain_event(mapper.to_stored_event(snapshot)).mutate(None)
        assert aggregate_state(restored) == aggregate_state(aggregate)


def test_the_stored_form_of_an_event_is_plain_json():
    """Events take the fast path: amounts and times are strings, only `timestamp` is rich."""
    simulation = new_simulation()
    simulation.run([b'{"type":"organization.created","at":"2026-01-01T00:00:00Z","org":"acme","name":"Acme",'
                    b'"country":"US","currency":"USD","commerce":"legacy"}'])
    opened = next(event for _, event in read_events(simulation.app, event_classes=[CreditAccount.Opened]))
    stored = simulation.app.mapper.to_stored_event(opened)
    assert b"$" not in stored.state and b'"at":"2026-01-01T00:00:00Z"' in stored.state


# ----- data that looks like a tag: `$` keys and strings are escaped, never read as tags -----------

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.mark.parametrize("value", ["$bob", 'say "$5"', "$dec"])
def test_an_event_with_a_dollar_string_round_trips(value):
    state = {"timestamp": NOW, "user": value}
    assert canonical(round_trip(state)) == canonical(state)


@pytest.mark.parametrize("tag", TAGS)
def test_a_dict_keyed_by_a_tag_round_trips(tag):
    state = {"timestamp": NOW, "topic": "x", "state": {"locations": {tag: "US"}}}
    assert canonical(round_trip(state)) == canonical(state)

