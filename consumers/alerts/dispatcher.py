"""Sending what the outbox holds, one channel per dispatcher (and thread).

Steps, for each due delivery of the channel in event order:
1. claim it (`pending` → `sending`, with a lease): no other dispatcher can send it meanwhile;
2. hand it to the channel, which calls the commit point (`sending` → `committing`) just before
   the receiver can act on it;
3. record the outcome: `sent`; `pending` again after a backoff with jitter (transient failure);
   `dead` after too many attempts, a permanent refusal, or a delivery that could not even be
   prepared (`internal_error`: a bug, parked for the operator rather than retried forever);
   `unconfirmed` when the connection broke after the commit point.
A transient failure also pauses its receiver (the SMTP server, one webhook URL) until the failed
delivery is due again, so a receiver that is down is not hammered by every queued delivery, and
the others' deliveries go on. The dispatcher never blocks the alert projection or the rating of
calls: they only ever write to the outbox.
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from consumers.alerts.channels import Channel
from consumers.alerts.delivery_errors import DeliveryFailed, DeliveryUncertain
from consumers.alerts.outbox import EMAIL, AlertOutbox, Delivery, LostClaim
from consumers.alerts.settings import RetryPolicy

log = logging.getLogger("commcredits.alerts")

DUE_BATCH = 100
IDLE_WAIT_S = 0.2
ERROR_PAUSE_S = 1.0
RELEASE_INTERVAL_S = 1.0  # how often to look for claims whose dispatcher died (leases last 3 send timeouts + 5 s)


@dataclass
class DispatchStats:
    sent: int = 0
    failed: int = 0  # failed attempts, retried later
    dead: int = 0
    unconfirmed: int = 0
    by_error: dict[str, int] = field(default_factory=dict)


class ChannelDispatcher:
    def __init__(self, channel_name: str, channel: Channel, outbox: AlertOutbox, policy: RetryPolicy, *,
                 lease_s: float, clock: Callable[[], float] = time.time) -> None:
        self.channel_name, self.channel, self.outbox = channel_name, channel, outbox
        self.policy, self.lease_s, self.clock = policy, lease_s, clock
        self.stats = DispatchStats()
        self._paused_until: dict[str, float] = {}
        self._next_release_at = 0.0  # at once on start: a restarted dispatcher takes over what it left

    def run(self, stop: threading.Event) -> None:
        """Send until `stop` is set; a failing view database is retried after a pause."""
        try:
            while not stop.is_set():
                try:
                    handled = self.dispatch_once(stop)
                except Exception:  # the outbox's database: log, wait, go on (nothing is lost, all is in the outbox)
                    log.exception("%s dispatcher: the outbox failed; trying again", self.channel_name)
                    stop.wait(ERROR_PAUSE_S)
                    continue
                if not handled:
                    stop.wait(IDLE_WAIT_S)
        finally:
            self.channel.close()

    def dispatch_once(self, stop: threading.Event | None = None) -> int:
        """Try every due delivery of the channel once; returns how many were tried."""
        now = self.clock()
        if now >= self._next_release_at:  # not on every idle turn: it is a write
            self.outbox.release_expired(now)
            self._next_release_at = now + RELEASE_INTERVAL_S
        tried = 0
        for delivery in self.outbox.due(self.channel_name, now, DUE_BATCH):
            if stop is not None and stop.is_set():
                break
            if self._paused_until.get(self._receiver(delivery), 0.0) > self.clock():
                continue
            tried += self.deliver(delivery)
        return tried

    def deliver(self, delivery: Delivery) -> int:
        lease_until = self.outbox.claim(delivery, self.clock(), self.lease_s)
        if lease_until is None:
            return 0  # another dispatcher (or `alerts retry`) has it
        try:
            self.channel.send(delivery, lambda: self.outbox.commit(delivery, lease_until))
        except LostClaim as error:
            log.warning("%s", error)
        except DeliveryUncertain as error:
            self.stats.unconfirmed += 1
            self.outbox.unconfirmed(delivery, str(error))
            log.warning("alert %s to %s: no answer after handing it over (%s); not sent again",
                        delivery.alert_id, delivery.recipient, error.code)
        except DeliveryFailed as error:
            self._failed(delivery, error)
        except Exception as error:  # a bug (a template, a value): park it where an operator sees it
            log.exception("alert %s to %s could not be prepared", delivery.alert_id, delivery.recipient)
            self._failed(delivery, DeliveryFailed("internal_error", f"{type(error).__name__}: {error}",
                                                  permanent=True))
        else:
            self.stats.sent += 1
            self.outbox.sent(delivery)
        return 1

    def _failed(self, delivery: Delivery, error: DeliveryFailed) -> None:
        self.stats.by_error[error.code] = self.stats.by_error.get(error.code, 0) + 1
        due_again = self.outbox.failed(delivery, str(error), permanent=error.permanent,
                                       policy=self.policy, now=self.clock())
        if due_again is None:
            self.stats.dead += 1
            log.warning("alert %s to %s parked in the dead-letter store after %d attempt(s): %s",
                        delivery.alert_id, delivery.recipient, delivery.attempts + 1, error)
            return
        self.stats.failed += 1
        self._paused_until[self._receiver(delivery)] = due_again
        log.info("alert %s to %s failed (%s); trying again in %.1f s", delivery.alert_id, delivery.recipient,
                 error, due_again - self.clock())

    def _receiver(self, delivery: Delivery) -> str:
        """What a transient failure pauses: the one SMTP server, else the recipient (a URL, the topic)."""
        return EMAIL if delivery.channel == EMAIL else delivery.recipient
