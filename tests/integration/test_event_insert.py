"""A save's events get positions in their order, on every store: the seals, the relay and every
projection read the log by position. (On PostgreSQL the events go as column arrays.)"""

from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent

TOPIC = "domain.credit_account:CreditAccount.FundsAdded"


def test_positions_follow_the_order_of_the_events_in_a_save(open_app):
    app = open_app()
    first = [StoredEvent(uuid4(), 1, TOPIC, b'{"n":%d}' % n) for n in range(3)]
    aggregate = uuid4()
    second = [StoredEvent(aggregate, version, TOPIC, b'{"v":%d,"\\u00e9":"\\u0000"}' % version)
              for version in range(1, 1201)]
    positions = app.recorder.insert_events(first) + app.recorder.insert_events(second)
    stored = app.recorder.select_notifications(1, 2000)
    assert positions == [notification.id for notification in stored] == sorted(positions)
    assert [(n.originator_id, n.originator_version, n.topic, bytes(n.state)) for n in stored] == \
        [(e.originator_id, e.originator_version, e.topic, e.state) for e in first + second]


def test_a_version_stored_twice_stores_none_of_the_save(open_app):
    app = open_app()
    aggregate = uuid4()
    app.recorder.insert_events([StoredEvent(aggregate, 1, TOPIC, b"{}")])
    with pytest.raises(IntegrityError):
        app.recorder.insert_events([StoredEvent(uuid4(), 1, TOPIC, b"{}"), StoredEvent(aggregate, 1, TOPIC, b"{}")])
    assert len(app.recorder.select_notifications(1, 10)) == 1
