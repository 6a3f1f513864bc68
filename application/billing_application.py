"""The event-sourced application: aggregates persisted in SQLite (default) or PostgreSQL."""

from typing import Any

from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    AggregateRecorder,
    EventStore,
    InfrastructureFactory,
    ProcessRecorder,
    Recording,
    Tracking,
    Transcoder,
)
from eventsourcing.popo import POPOFactory
from eventsourcing.utils import Environment, EnvType, get_topic

from application.schema_lock import schema_setup_lock
from application.sealed_recorders import SealedPostgresProcessRecorder, SealedSQLiteProcessRecorder
from application.transcoder import OrjsonTranscoder
from application.usage_claims import ClaimingPOPOProcessRecorder
from domain.credit_account import CreditAccount
from domain.licence_registry import LicenceRegistry

# Every N events an aggregate is snapshotted, so loading a busy account reads at most N events.
SNAPSHOT_INTERVAL_EVENTS = 500
# The recorder of each persistence module: every event sealed as it is stored (`application.seal_chain`).
SEALED_RECORDERS = {"eventsourcing.sqlite": SealedSQLiteProcessRecorder,
                    "eventsourcing.postgres": SealedPostgresProcessRecorder}


class BillingApplication(Application):
    name = "commcredits"
    snapshotting_intervals = {CreditAccount: SNAPSHOT_INTERVAL_EVENTS, LicenceRegistry: SNAPSHOT_INTERVAL_EVENTS}

    def construct_transcoder(self) -> Transcoder:
        return OrjsonTranscoder()

    def construct_env(self, name: str, env: EnvType | None = None) -> Environment:
        environment = super().construct_env(name, env)
        sealed = SEALED_RECORDERS.get(environment.get("PERSISTENCE_MODULE", ""))
        if sealed is not None:
            environment["PROCESS_RECORDER_TOPIC"] = get_topic(sealed)
        return environment

    def construct_recorder(self) -> ProcessRecorder:
        """A recorder with a tracking table: a consumer's position in its input (a Kafka
        partition's offset, the relay's last published event) is written in the same transaction
        as the events it caused, and a position can be recorded only once. On SQLite and
        PostgreSQL it seals every event it stores (`application.sealed_recorders`). Every
        recorder keeps the usage ids of rated CDRs (`application.usage_claims`).

        Its tables and the snapshots' are set up while this process holds the store's set-up
        lock (`application.schema_lock`): processes starting together take turns."""
        with schema_setup_lock(self.factory):
            recorder = ClaimingPOPOProcessRecorder() if isinstance(self.factory, POPOFactory) else \
                self.factory.process_recorder()
            self._snapshot_recorder = _snapshot_recorder(self.factory)
        return recorder

    def construct_snapshot_store(self) -> EventStore:
        assert self._snapshot_recorder is not None
        return self.factory.event_store(mapper=self.mapper, recorder=self._snapshot_recorder)

    def save(self, *aggregates: Any, tracking: Tracking | None = None, **kwargs: Any) -> list[Recording]:
        """All pending events of `aggregates` in one transaction (all or nothing), with the
        consumer position `tracking` when given.

        A lean version of the library's `save()`: our callers pass aggregates only, so it skips
        the per-object protocol checks (a third of the time of a big batch save), and it takes
        snapshots from the live aggregates instead of re-reading up to N events from the store.
        """
        processing_event: ProcessingEvent = ProcessingEvent(tracking)
        for aggregate in aggregates:
            assert isinstance(aggregate, Aggregate), f"save() takes aggregates, got {type(aggregate).__name__}"
            processing_event.events.extend(aggregate.collect_events())
            processing_event.aggregates[aggregate.id] = aggregate
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        self._snapshot_live_aggregates(processing_event)
        self._notify(recordings)
        return recordings

    def _snapshot_live_aggregates(self, processing_event: ProcessingEvent) -> None:
        """Snapshot each aggregate whose saved events crossed a multiple of its interval. The live
        object is exactly at its last saved version, so its state is the snapshot's state."""
        if self.snapshots is None:
            return
        due = {}
        for event in processing_event.events:
            aggregate = processing_event.aggregates[event.originator_id]
            interval = self.snapshotting_intervals.get(type(aggregate))
            if interval and event.originator_version % interval == 0:
                due[aggregate.id] = aggregate
        if due:
            self.snapshots.put([type(aggregate).Snapshot.take(aggregate) for aggregate in due.values()])


def _snapshot_recorder(factory: InfrastructureFactory) -> AggregateRecorder | None:
    return factory.aggregate_recorder(purpose="snapshots") if factory.is_snapshotting_enabled() else None
