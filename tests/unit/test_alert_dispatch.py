"""The outbox's state machine and the dispatcher's policy, with a fake channel and a clock we move:
claims, the commit point, retries with backoff and jitter, dead letters, leases that run out."""

import random

import pytest

from application.settings import SettingsError, sqlite_store
from consumers.alerts.delivery_errors import DeliveryFailed, DeliveryUncertain
from consumers.alerts.dispatcher import ChannelDispatcher
from consumers.alerts.outbox import (
    COMMITTING,
    DEAD,
    EMAIL,
    PENDING,
    SENDING,
    SENT,
    UNCONFIRMED,
    AlertOutbox,
    LostClaim,
    record_alert,
)
from consumers.alerts.retry_backoff import gives_up, retry_delay_s
from consumers.alerts.settings import RetryPolicy, alert_settings_from_environment, master_secret_from_environment
from projections.view_database import ViewDatabase

POLICY = RetryPolicy(max_attempts=3, backoff_s=10.0, backoff_cap_s=25.0)
LEASE_S = 30.0


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class FakeChannel:
    """Answers each send with the next planned outcome: None (accepted) or an exception; records
    whether the commit point was passed before the answer."""

    def __init__(self, *outcomes) -> None:
        self.outcomes, self.sent, self.closed = list(outcomes), [], False

    def send(self, delivery, at_commit) -> None:
        outcome = self.outcomes.pop(0) if self.outcomes else None
        if isinstance(outcome, DeliveryFailed) and outcome.code.startswith("before"):
            raise outcome
        at_commit()
        if outcome is not None:
            raise outcome
        self.sent.append(delivery.recipient)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def outbox() -> AlertOutbox:
    box = AlertOutbox(ViewDatabase.for_store(sqlite_store(":memory:")))
    yield box
    box.database.close()


def add_alert(outbox: AlertOutbox, position: int, recipients=((EMAIL, "a@x.example"),)) -> None:
    document = {"id": f"{position}:balance_depleted", "kind": "balance_depleted", "org": "contoso",
                "position": position, "at": "2026-03-01T00:00:00Z", "facts": {"cause": "expiry"}}
    with outbox.database.transaction() as cursor:
        record_alert(cursor, document, {"org": "contoso", "name": "Contoso", "country": "US", "currency": "USD",
                                        "locale": None}, list(recipients))


def status_of(outbox: AlertOutbox, position: int, recipient: str = "a@x.example"):
    return outbox.get(f"{position}:balance_depleted/{EMAIL}/{recipient}")


def dispatcher(outbox, channel, clock) -> ChannelDispatcher:
    return ChannelDispatcher(EMAIL, channel, outbox, POLICY, lease_s=LEASE_S, clock=clock)


def test_a_delivery_passes_its_commit_point_before_it_is_sent(outbox):
    add_alert(outbox, 7)
    seen = []

    class Watching(FakeChannel):
        def send(self, delivery, at_commit):
            seen.append(outbox.get(delivery.id).status)
            at_commit()
            seen.append(outbox.get(delivery.id).status)

    assert dispatcher(outbox, Watching(), Clock()).dispatch_once() == 1
    assert seen == [SENDING, COMMITTING]
    assert status_of(outbox, 7).status == SENT and status_of(outbox, 7).attempts == 1


def test_a_transient_failure_is_retried_after_a_jittered_doubling_backoff_then_parked(outbox):
    clock = Clock()
    add_alert(outbox, 1)
    failing = DeliveryFailed("before_commit_unreachable", "refused", permanent=False)
    channel = FakeChannel(failing, failing, failing)
    sender = dispatcher(outbox, channel, clock)
    for attempt, ceiling in ((1, 10.0), (2, 20.0)):
        sender.dispatch_once()
        delivery = status_of(outbox, 1)
        assert delivery.status == PENDING and delivery.attempts == attempt
        assert clock.now + ceiling / 2 <= delivery.next_attempt_at <= clock.now + ceiling
        assert sender.dispatch_once() == 0  # not due yet
        clock.now = delivery.next_attempt_at
    sender.dispatch_once()
    parked = status_of(outbox, 1)
    assert parked.status == DEAD and parked.attempts == 3 and parked.last_error.startswith("before_commit_unreachable")
    assert outbox.dead(10) == [parked] and channel.sent == []


def test_a_permanent_refusal_is_parked_at_once_and_alerts_retry_puts_it_back(outbox):
    add_alert(outbox, 1)
    sender = dispatcher(outbox, FakeChannel(DeliveryFailed("smtp_rejected", "550 no such user", permanent=True)), Clock())
    sender.dispatch_once()
    assert status_of(outbox, 1).status == DEAD and status_of(outbox, 1).attempts == 1
    assert outbox.requeue(["no-such-id"]) == []
    assert outbox.requeue(None) == [status_of(outbox, 1).id]
    assert status_of(outbox, 1).status == PENDING and status_of(outbox, 1).attempts == 0
    sender.dispatch_once()
    assert status_of(outbox, 1).status == SENT


def test_a_failing_receiver_is_paused_so_queued_deliveries_wait_for_it(outbox):
    clock = Clock()
    for position in (1, 2, 3):
        add_alert(outbox, position)
    channel = FakeChannel(DeliveryFailed("before_commit_down", "refused", permanent=False))
    sender = dispatcher(outbox, channel, clock)
    assert sender.dispatch_once() == 1  # the first failed: the others are not tried against the same server
    assert [status_of(outbox, position).attempts for position in (1, 2, 3)] == [1, 0, 0]
    clock.now = status_of(outbox, 1).next_attempt_at
    assert sender.dispatch_once() == 3
    assert channel.sent == ["a@x.example"] * 3


def test_no_answer_after_the_commit_point_is_unconfirmed_and_never_sent_again(outbox):
    add_alert(outbox, 1)
    channel = FakeChannel(DeliveryUncertain("smtp_no_reply_after_data", "connection reset"))
    sender = dispatcher(outbox, channel, Clock())
    sender.dispatch_once()
    assert status_of(outbox, 1).status == UNCONFIRMED
    assert sender.dispatch_once() == 0 and channel.sent == []


def test_a_dead_dispatchers_claims_run_out_sending_is_retried_committing_is_not(outbox):
    clock = Clock()
    add_alert(outbox, 1)
    add_alert(outbox, 2)
    first, second = status_of(outbox, 1), status_of(outbox, 2)
    assert outbox.claim(first, clock.now, LEASE_S) is not None
    lease = outbox.claim(second, clock.now, LEASE_S)
    assert outbox.claim(second, clock.now, LEASE_S) is None  # claimed once only
    outbox.commit(second, lease)  # the process dies here, after the commit point
    assert outbox.release_expired(clock.now + LEASE_S - 1) == 0
    assert outbox.release_expired(clock.now + LEASE_S + 1) == 2
    assert status_of(outbox, 1).status == PENDING and status_of(outbox, 1).in_doubt  # it may have gone out
    assert status_of(outbox, 2).status == UNCONFIRMED


def test_a_claim_whose_lease_was_taken_over_cannot_pass_the_commit_point(outbox):
    clock = Clock()
    add_alert(outbox, 1)
    delivery = status_of(outbox, 1)
    stale = outbox.claim(delivery, clock.now, LEASE_S)
    outbox.release_expired(clock.now + LEASE_S + 1)
    fresh = outbox.claim(status_of(outbox, 1), clock.now + LEASE_S + 1, LEASE_S)
    with pytest.raises(LostClaim):
        outbox.commit(delivery, stale)
    outbox.commit(delivery, fresh)
    assert status_of(outbox, 1).status == COMMITTING


@pytest.mark.parametrize("attempts, low, high", [(1, 5.0, 10.0), (2, 10.0, 20.0), (3, 12.5, 25.0), (60, 12.5, 25.0)])
def test_the_backoff_doubles_up_to_its_cap_with_half_to_full_jitter(attempts, low, high):
    delays = [retry_delay_s(attempts, POLICY, random.Random(seed)) for seed in range(200)]
    assert all(low <= delay <= high for delay in delays)
    assert max(delays) - min(delays) > (high - low) / 2  # jittered, not fixed
    assert gives_up(3, POLICY) and not gives_up(2, POLICY)


def test_settings_from_the_environment_are_checked(tmp_path):
    assert alert_settings_from_environment({}).smtp is None
    settings = alert_settings_from_environment({"COMMCREDITS_SMTP_HOST": "mail.example.com",
                                                "COMMCREDITS_SMTP_STARTTLS": "false",
                                                "COMMCREDITS_ALERT_MAX_ATTEMPTS": "4"})
    assert (settings.smtp.host, settings.smtp.port, settings.smtp.starttls) == ("mail.example.com", 587, False)
    assert settings.retry.max_attempts == 4
    for name, value in (("COMMCREDITS_SMTP_PORT", "smtp"), ("COMMCREDITS_SMTP_STARTTLS", "maybe"),
                        ("COMMCREDITS_ALERT_BACKOFF_S", "-1")):
        with pytest.raises(SettingsError, match=name):
            alert_settings_from_environment({"COMMCREDITS_SMTP_HOST": "h", name: value})


def test_the_generated_webhook_key_is_made_once_and_kept_private(tmp_path):
    environment = {"COMMCREDITS_DATA_DIR": str(tmp_path)}
    first = master_secret_from_environment(environment)
    assert master_secret_from_environment(environment) == first and len(first) == 64
    assert (tmp_path / "webhook-signing.key").stat().st_mode & 0o077 == 0
    configured = "a-configured-master-key-of-32-bytes-or-more"
    assert master_secret_from_environment({**environment, "COMMCREDITS_WEBHOOK_SECRET": configured}) == \
        configured.encode()


def test_a_delivery_that_cannot_even_be_prepared_is_parked_not_retried_forever(outbox):
    add_alert(outbox, 1)

    class Broken(FakeChannel):
        def send(self, delivery, at_commit):
            raise KeyError("a template asked for a fact the alert lacks")

    sender = dispatcher(outbox, Broken(), Clock())
    assert sender.dispatch_once() == 1
    parked = status_of(outbox, 1)
    assert parked.status == DEAD and parked.last_error.startswith("internal_error: KeyError")
