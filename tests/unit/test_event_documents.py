"""The wire document of an event does not depend on the path taken to build it: the fast path
(timestamp kept as text) writes exactly what decoding it into a datetime and writing that out does."""

from datetime import datetime, timedelta, timezone
from uuid import uuid4

import orjson
import pytest
from eventsourcing.persistence import Notification

from application.billing_application import BillingApplication
from application.event_documents import encoded_event, event_document, event_type
from application.reference_data import load_catalog
from application.settings import memory_store
from application.transcoder import OrjsonTranscoder
from commcredits.scenario import encoded, generate
from commcredits.simulate import Simulation
from tests.support import SPEC_RATES

TOPIC = "domain.credit_account:CreditAccount.FundsAdded"


def through_a_datetime(notification: Notification, transcoder) -> bytes:
    """The document as written before the fast path: every field decoded, the timestamp as a datetime."""
    state = transcoder.decode(notification.state)
    data = {key: value for key, value in state.items() if key not in ("originator_id", "originator_version",
                                                                       "timestamp")}
    return orjson.dumps({"type": event_type(notification.topic)[0], "version": event_type(notification.topic)[1],
                         "aggregate_id": str(notification.originator_id),
                         "aggregate_version": notification.originator_version, "timestamp": state["timestamp"],
                         "position": notification.id, "data": data},
                        default=str, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)


def test_every_event_of_a_generated_month_is_written_as_through_a_datetime():
    app = BillingApplication(env=memory_store().env)
    Simulation(app, SPEC_RATES, load_catalog(None), store_is_new=True).run(
        encoded(line) for line in generate(3, 30, 600, 5))
    notifications = app.recorder.select_notifications(1, 10_000)
    assert len(notifications) > 600
    for notification in notifications:
        assert encoded_event(notification, app.mapper.transcoder)[2] == through_a_datetime(
            notification, app.mapper.transcoder)
        assert event_document(notification, app.mapper.transcoder) == orjson.loads(
            through_a_datetime(notification, app.mapper.transcoder))


@pytest.mark.parametrize("moment", [
    datetime(2026, 1, 16, 8, 0, tzinfo=timezone.utc),  # no fraction
    datetime(2024, 2, 29, 23, 59, 59, 5, tzinfo=timezone.utc),  # a leap day, one microsecond digit
    datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),  # the year's last instant
    datetime(2026, 3, 29, 3, 30, tzinfo=timezone(timedelta(hours=2))),  # not UTC: the slow path
    datetime(2026, 1, 1, 0, 0, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
])
def test_timestamps_are_written_as_through_a_datetime(moment):
    transcoder = OrjsonTranscoder()
    state = transcoder.encode({"timestamp": moment, "amount": "1.5000", "org": "contoso", "$note": None})
    notification = Notification(id=7, originator_id=uuid4(), originator_version=2, topic=TOPIC, state=state)
    assert encoded_event(notification, transcoder)[2] == through_a_datetime(notification, transcoder)
    assert event_document(notification, transcoder) == orjson.loads(through_a_datetime(notification, transcoder))
