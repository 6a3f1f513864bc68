"""The event-sourced application: aggregates persisted in SQLite (default) or PostgreSQL."""

from eventsourcing.application import Application
from eventsourcing.persistence import Transcoder

from commcredits.transcoder import OrjsonTranscoder
from domain.credit_account import CreditAccount
from domain.licence_registry import LicenceRegistry

# Every N events an aggregate is snapshotted, so loading a busy account reads at most N events.
SNAPSHOT_INTERVAL_EVENTS = 500


class BillingApplication(Application):
    name = "commcredits"
    snapshotting_intervals = {CreditAccount: SNAPSHOT_INTERVAL_EVENTS, LicenceRegistry: SNAPSHOT_INTERVAL_EVENTS}

    def construct_transcoder(self) -> Transcoder:
        return OrjsonTranscoder()
