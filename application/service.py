"""Command handling: the one place where commands meet aggregates, the clock and the store.

Every command runs in three steps: decide (every check that can reject it, including taking
payment), accept (the clock moves to the line's time and due lots of every organization expire,
SPEC §11), apply (trigger events). A rejected command therefore changes nothing, not even the
clock. Changed aggregates collect in a unit of work that `flush()` saves in one transaction.
"""

from collections.abc import Iterable, Iterator
from datetime import datetime
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Tracking
from eventsourcing.utils import get_topic

from application import commands
from application.authorization_table import row_of
from application.billing_application import BillingApplication
from application.call_authorizations import CallAuthorizationSteps
from application.commands import APPLIED, DUPLICATE, REPEATED
from application.expiry_schedule import ExpirySchedule
from application.future_guard import FutureGuard
from application.shard import Shard
from application.usage_ids import RatedUsageIds
from domain.call_authorization import AuthorizationRecord
from domain.catalog import Catalog
from domain.credit_account import CreditAccount
from domain.engine_clock import ENGINE_CLOCK_ID, EngineClock, engine_clock_id
from domain.errors import DuplicateOrganization, PaymentDeclined, UnknownOrganization
from domain.licence_registry import LicenceRegistry
from domain.licences import COMMUNICATIONS_CREDITS
from domain.order import Order
from domain.payments import PaymentGateway, PaymentMethod, PaymentOutcome
from domain.pools import PoolKey, remaining_minutes
from domain.rates import RateCard
from domain.rating import Billing, plan_call
from domain.reservations import SETTLED
from domain.timestamps import decode_timestamp

ORGANIZATION_PAGE_SIZE = 1000
# What other writers (the admin CLI, an instance that owned a partition before us) change and a
# rating engine must see: new organizations and lots, payment and recharge settings, users and
# licences, call authorizations (decided by `serve`). Calls rated (the bulk of the log) are left out:
# only the owner of a partition rates them.
FOLLOWED_TOPICS = sorted(get_topic(event) for event in (
    CreditAccount.Opened, CreditAccount.CreditsActivated, CreditAccount.FundsAdded,
    CreditAccount.AutoRechargeConfigured, CreditAccount.PaymentMethodUpdated, CreditAccount.FundsExpired,
    CreditAccount.RechargeSucceeded, CreditAccount.RechargeFailed, CreditAccount.CallAuthorized,
    CreditAccount.ReservationEnded,
    LicenceRegistry.Opened, LicenceRegistry.UserAdded, LicenceRegistry.LicencesAssigned,
    LicenceRegistry.LicencesRemoved, EngineClock.Started, EngineClock.Advanced))
# A writer that decides call authorizations (`serve`) decides on the balance: it follows the calls
# the consumers rate as well, rather than find out from a conflicting save (which reloads all).
EVERY_ACCOUNT_CHANGE_TOPICS = sorted({*FOLLOWED_TOPICS, *(get_topic(event) for event in (
    CreditAccount.CallRated, CreditAccount.OverageAccrued, CreditAccount.RechargeTriggered,
    CreditAccount.BalanceDepleted, CreditAccount.ExpiryApproached))})
CLOCK_TOPICS = frozenset(get_topic(event) for event in (EngineClock.Started, EngineClock.Advanced))
MAX_CLOCKS = 100_000  # one per CDR partition, and the shared one


class BillingService(CallAuthorizationSteps):
    def __init__(self, app: BillingApplication, rate_card: RateCard, catalog: Catalog,
                 gateway: PaymentGateway, *, store_is_new: bool = False, shard: Shard | None = None,
                 future_guard: FutureGuard | None = None, keeps_clock: bool = True,
                 follows_every_change: bool = False) -> None:
        self.app, self.rate_card, self.catalog, self.gateway = app, rate_card, catalog, gateway
        # A writer that only decides call authorizations (`serve`) keeps its clock in memory: its
        # decisions carry their own instants, and a stored clock moved by every batch would make
        # each batch conflict with the admin steps and with every other server.
        self.keeps_clock = keeps_clock
        self._followed_topics = EVERY_ACCOUNT_CHANGE_TOPICS if follows_every_change else FOLLOWED_TOPICS
        self.future_guard = future_guard  # None: times are taken as they come (simulate)
        self.shard = shard
        self.clock: datetime | None = None
        self._accounts: dict[str, CreditAccount] = {}
        self._org_of: dict[UUID, str] = {}  # account and registry ids
        self._registries: dict[str, LicenceRegistry] = {}
        self._creation_index: dict[str, int] = {}
        self._expiry_schedule = ExpirySchedule()
        self._authorizations: dict[str, AuthorizationRecord] = {}  # decisions read or made since the last flush
        self._authorization_writes: dict[str, AuthorizationRecord] = {}  # decided or ended since the last flush
        self._undecided_call_ids: set[str] = set()  # call ids the store had no decision for (this batch)
        self._unsaved: dict[UUID, Aggregate] = {}
        self._store_is_new = store_is_new  # simulate's fresh store: nothing to load or ask
        self._usage_ids = RatedUsageIds(app.recorder, store_is_new=store_is_new)
        self._engine_clock: EngineClock | None = None
        self._followed_position = 0
        self._load_from_store()

    # ----- the unit of work --------------------------------------------------------------------

    def flush(self, tracking: Tracking | None = None) -> None:
        """Save everything changed since the last flush, and the clock, atomically (with the
        input position `tracking`, when the caller consumes a log)."""
        self._persist_clock()
        if self._unsaved or tracking is not None or self._authorization_writes:
            self.app.save(*self._unsaved.values(), tracking=tracking, usage_claims=self._usage_ids.unsaved,
                          authorizations=[row_of(record) for record in self._authorization_writes.values()])
            self._unsaved.clear()
        self._usage_ids.saved()
        self._authorizations.clear()
        self._authorization_writes.clear()
        self._undecided_call_ids.clear()

    def discard(self) -> None:
        """Forget unsaved changes (after a failed save or an unexpected error): reload from the store."""
        self._unsaved.clear()
        self._accounts.clear()
        self._registries.clear()
        self._creation_index.clear()
        self._expiry_schedule.clear()
        self._usage_ids.forget()
        self._authorizations.clear()
        self._authorization_writes.clear()
        self._undecided_call_ids.clear()
        self._store_is_new = False
        self._load_from_store()

    def follow_store(self) -> int:
        """Catch up with what other writers (the admin CLI; an instance that owned one of our
        partitions before) stored since we last looked: organizations created, funds added, users
        and licences changed. A live engine calls it before each batch, so a batch rates with
        what the store held when it started, organizations created while the engine runs have
        their funds expired by the wall clock, and stale accounts do not make batches conflict.
        Does nothing while changes are unsaved. Returns how many organizations were reloaded."""
        if self._unsaved:
            return 0
        reloaded = 0
        # Ids become visible in order (eventsourcing serialises inserts), so what is below the
        # log's end now has been read once this loop ends: the next look starts there, not at
        # the last followed event (calls rated in between would be scanned again and again).
        end = self.app.recorder.max_notification_id() or 0
        while True:
            page = self.app.recorder.select_notifications(self._followed_position + 1, ORGANIZATION_PAGE_SIZE,
                                                          stop=end, topics=self._followed_topics)
            for notification in page:
                reloaded += self._reload_if_stale(notification)
            if len(page) < ORGANIZATION_PAGE_SIZE:
                self._followed_position = max(self._followed_position, end)
                return reloaded
            self._followed_position = page[-1].id

    @property
    def pending_aggregates(self) -> int:
        return len(self._unsaved)

    # ----- commands ----------------------------------------------------------------------------

    def handle(self, command: commands.Command) -> str:
        handler = getattr(self, f"_handle_{type(command).__name__}")
        if self.future_guard is not None:
            self.future_guard.check(command.at, "end_time" if isinstance(command, commands.RateCdr) else "at")
        return handler(command)

    def _handle_CreateOrganization(self, command: commands.CreateOrganization) -> str:
        if self.account(command.org) is not None:
            raise DuplicateOrganization(command.org)
        at = self._accept(command.at)
        account = CreditAccount.open(command.org, command.name, command.country, command.currency,
                                     command.commerce, command.agreements, at)
        registry = LicenceRegistry.open(command.org, at)
        self._remember(account, registry)
        self._changed(account, registry)
        return APPLIED

    def _handle_AddUser(self, command: commands.AddUser) -> str:
        registry = self._registry(command.org)
        registry.check_new_user(command.user)
        registry.add_user(command.user, command.usage_location, self._accept(command.at))
        self._changed(registry)
        return APPLIED

    def _handle_ChangeLicences(self, command: commands.ChangeLicences) -> str:
        account, registry = self.require_account(command.org), self._registry(command.org)
        if command.assign and COMMUNICATIONS_CREDITS in command.licences:
            account.require_credits_active()
        change = registry.assign if command.assign else registry.remove
        registry.check_change(command.users, command.licences, assign=command.assign)
        change(command.users, command.licences, self._accept(command.at))
        self._changed(registry)
        return APPLIED

    def _handle_PlaceOrder(self, command: commands.PlaceOrder) -> str:
        account = self.require_account(command.org)
        if account.is_repeated_order(command.order):
            self._accept(command.at)
            return REPEATED
        account.require_known_agreement(command.payment)
        at = self._line_time(command.at)
        receipt = None
        if command.funds > 0:
            receipt = self._pay(account, command.payment, command.funds, at, f"{command.org}/order/{command.order}")
        at = self._accept(command.at)
        order = Order.place(command.org, command.order, command.funds, command.auto_recharge, command.payment,
                            receipt.reference if receipt else None, at)
        account.activate(command.order, command.auto_recharge, command.payment, command.funds, receipt, at)
        self._changed(account, order)
        return APPLIED

    def _handle_AddFunds(self, command: commands.AddFunds) -> str:
        account = self.require_account(command.org)
        if account.is_repeated_funds_request(command.request_id):
            self._accept(command.at)
            return REPEATED
        at = self._line_time(command.at)
        reference = f"{command.org}/funds/{command.request_id or len(account.lots) + 1}"
        receipt = self._pay(account, account.payment_method(), command.amount, at, reference)
        account.add_funds(command.amount, command.request_id, receipt, self._accept(command.at))
        self._changed(account)
        return APPLIED

    def _handle_ConfigureAutoRecharge(self, command: commands.ConfigureAutoRecharge) -> str:
        account = self.require_account(command.org)
        account.require_credits_active()
        account.configure_auto_recharge(command.auto_recharge, self._accept(command.at))
        self._changed(account)
        return APPLIED

    def _handle_UpdatePaymentMethod(self, command: commands.UpdatePaymentMethod) -> str:
        account = self.require_account(command.org)
        account.require_credits_active()
        account.require_known_agreement(command.payment)
        account.update_payment_method(command.payment, self._accept(command.at))
        self._changed(account)
        return APPLIED

    def _handle_AdvanceClock(self, command: commands.AdvanceClock) -> str:
        self._accept(command.at)
        return APPLIED

    def _handle_RateCdr(self, command: commands.RateCdr) -> str:
        cdr = command.cdr
        account, registry = self.require_account(cdr.org), self._registry(cdr.org)
        caller = self._caller_of(registry, cdr.org, cdr.user)
        if self.is_rated(cdr.usage_id):
            self._accept(cdr.end_time)
            return DUPLICATE
        billing = Billing(account.currency, account.commerce, account.credits_active)
        line_time = self._line_time(cdr.end_time)
        settling = self._settling(account, cdr.call_id, line_time)

        def remaining(month: str, pool: PoolKey) -> int:
            """SPEC §13.2: minutes held for other calls are not this call's to take."""
            left = remaining_minutes(self.catalog, pool, registry.pool_contributors(pool), account.pool_used(month, pool))
            return max(0, left - account.held_minutes(month, pool, at=line_time, settling=settling))

        plan = plan_call(cdr, caller, billing, remaining, self.rate_card, self.catalog)
        at = self._accept(cdr.end_time)
        if settling is not None:
            self._end_reservation(account, settling, SETTLED, at, cdr.usage_id)
        account.rate_call(cdr, caller.usage_location if caller else None, plan, at, self.gateway)
        self._usage_ids.claim(cdr.usage_id, cdr.org)
        self._changed(account)
        return APPLIED

    # ----- queries -----------------------------------------------------------------------------

    def account(self, org: str) -> CreditAccount | None:
        account = self._accounts.get(org)
        if account is None:
            account = self._load(CreditAccount.create_id(org))
            if account is not None:
                self._remember(account, None)
        return account

    def require_account(self, org: str) -> CreditAccount:
        account = self.account(org)
        if account is None:
            raise UnknownOrganization(org)
        return account

    def registry(self, org: str) -> LicenceRegistry:
        return self._registry(org)

    def organizations(self) -> list[str]:
        """Every organization, in creation order."""
        return sorted(self._creation_index, key=self._creation_index.__getitem__)

    def next_expiry_at(self) -> datetime | None:
        """When the earliest open lot of any organization falls due, or comes within 30 days of
        it (None: no open lot)."""
        return self._expiry_schedule.next_at()

    def is_rated(self, usage_id: str) -> bool:
        return self._usage_ids.is_rated(usage_id)

    def look_up_usage_ids(self, usage_ids: Iterable[str]) -> None:
        """Learn in one round trip which of a batch's usage ids the store has rated, so that
        `is_rated` needs no query per CDR (`application.usage_ids`)."""
        self._usage_ids.look_up(usage_ids)

    # ----- steps -------------------------------------------------------------------------------

    def _line_time(self, at: datetime) -> datetime:
        return at if self.clock is None or at > self.clock else self.clock

    def _accept(self, at: datetime) -> datetime:
        """The command is accepted: move the clock (never backwards) and run due expiry steps."""
        self.clock = self._line_time(at)
        self._expire_due(self.clock)
        return self.clock

    def _expire_due(self, now: datetime) -> None:
        """SPEC §7's expiry step for the organizations with a lot due, then the notices of lots
        that now expire within 30 days; both in creation order."""
        for org in self._expiry_schedule.expiring_by(now):
            self._step(self._accounts[org], lambda account: account.expire_due(now, self.gateway))
        for org in self._expiry_schedule.noticed_by(now):
            self._step(self._accounts[org], lambda account: account.notice_expiring(now))
        for org in self._expiry_schedule.reservations_expiring_by(now):
            self._expire_reservations(self._accounts[org], now)

    def _step(self, account: CreditAccount, step) -> None:
        version = account.version
        step(account)
        if account.version != version:
            self._changed(account)

    def _pay(self, account: CreditAccount, method: PaymentMethod | None, amount, at: datetime,
             reference: str) -> PaymentOutcome:
        assert method is not None, "credits are active, so a payment method is set"
        outcome = self.gateway.charge(method, amount, account.currency, at, reference)
        if not outcome.approved:
            raise PaymentDeclined(f"payment of {amount} {account.currency} declined: {outcome.decline_reason}")
        return outcome

    def _changed(self, *aggregates: Aggregate) -> None:
        for aggregate in aggregates:
            self._unsaved[aggregate.id] = aggregate
            if isinstance(aggregate, CreditAccount):
                aggregate.check_invariants()
                self._schedule_expiries(aggregate)

    def _schedule_expiries(self, account: CreditAccount) -> None:
        self._expiry_schedule.schedule(account, self._creation_index[account.org])

    def _remember(self, account: CreditAccount, registry: LicenceRegistry | None) -> None:
        self._accounts[account.org] = account
        self._org_of[account.id] = self._org_of[LicenceRegistry.create_id(account.org)] = account.org
        self._creation_index.setdefault(account.org, len(self._creation_index))
        if registry is not None:
            self._registries[account.org] = registry
        self._schedule_expiries(account)
        self._schedule_reservations(account)

    def _registry(self, org: str) -> LicenceRegistry:
        registry = self._registries.get(org)
        if registry is None:
            self.require_account(org)
            registry = self._load(LicenceRegistry.create_id(org))
            assert registry is not None, f"organization {org!r} has an account but no licence registry"
            self._registries[org] = registry
        return registry

    def _load(self, aggregate_id: UUID):
        try:
            return self.app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None

    @property
    def _clock_shard(self) -> str:
        return self.shard.name if self.shard else ""

    def _owns(self, org: str) -> bool:
        return self.shard is None or self.shard.owns(org)

    def _load_from_store(self) -> None:
        if not self._store_is_new:
            self._followed_position = self.app.recorder.max_notification_id() or 0  # before reading: nothing missed
        self._load_clock()
        self._load_organizations()

    def _load_clock(self) -> None:
        """A shard starts from its own clock or the shared one, whichever is later; the shared
        clock (`simulate`, the admin steps) from the latest of all: the engine's time is the
        time of the latest command any writer accepted."""
        self._engine_clock = None if self._store_is_new else self._load(engine_clock_id(self._clock_shard))
        self.clock = self._engine_clock.now if self._engine_clock else None
        if self._store_is_new:
            return
        others = [ENGINE_CLOCK_ID] if self.shard else self._clock_ids()
        for clock_id in others:
            clock = self._load(clock_id)
            if clock is not None:
                self._adopt_time(clock.now)

    def _clock_ids(self) -> list[UUID]:
        started = self.app.recorder.select_notifications(1, MAX_CLOCKS, topics=[get_topic(EngineClock.Started)])
        return [notification.originator_id for notification in started]

    def _adopt_time(self, at: datetime) -> None:
        """Another writer's clock is later: move ours (expiry steps follow on the next command)."""
        if self.clock is None or at > self.clock:
            self.clock = at

    def _persist_clock(self) -> None:
        if self.clock is None or not self.keeps_clock:
            return
        if self._engine_clock is None:
            self._engine_clock = EngineClock.start(self.clock, self._clock_shard)
        else:
            self._engine_clock.advance(self.clock)
        if self._engine_clock.pending_events:
            self._unsaved[self._engine_clock.id] = self._engine_clock

    def _load_organizations(self) -> None:
        """Learn every organization (of our shard) in creation order, and when their lots fall due."""
        if self._store_is_new:
            return
        for org in organizations_in_creation_order(self.app):
            if self._owns(org):
                self.account(org)


    def _reload_if_stale(self, notification) -> int:
        if notification.originator_id == ENGINE_CLOCK_ID:
            if self.shard is not None:
                self._adopt_time(decode_timestamp(self.app.mapper.to_domain_event(notification).at))
            return 0
        if notification.topic in CLOCK_TOPICS:
            return 0  # a shard's clock, ours or another's
        org = self._org_of.get(notification.originator_id) or self._org_named_by(notification)
        if org is None or not self._owns(org):
            return 0
        account, registry = self._accounts.get(org), self._registries.get(org)
        cached = account if notification.originator_id == CreditAccount.create_id(org) else registry
        if account is not None and (cached is None or cached.version >= notification.originator_version):
            return 0  # our own write, one already read, or a registry we will load when needed
        self._accounts.pop(org, None)
        self._registries.pop(org, None)
        self.account(org)
        return 1

    def _org_named_by(self, notification) -> str | None:
        event = self.app.mapper.to_domain_event(notification)
        if isinstance(event, (CreditAccount.Opened, LicenceRegistry.Opened)):
            return event.org
        aggregate = self._load(notification.originator_id)
        return getattr(aggregate, "org", None)


def organizations_in_creation_order(app: BillingApplication) -> Iterator[str]:
    """Every organization's id, read from the log's `Opened` events, page by page."""
    topic = get_topic(CreditAccount.Opened)
    start = 1
    while True:
        page = app.recorder.select_notifications(start, ORGANIZATION_PAGE_SIZE, topics=[topic])
        for notification in page:
            yield app.mapper.to_domain_event(notification).org
        if len(page) < ORGANIZATION_PAGE_SIZE:
            return
        start = page[-1].id + 1
