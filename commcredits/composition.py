"""The composition root: settings in, the application and its ports wired to their adapters out.

Entry points (the CLI, `run`, `demo`, `simulate`) ask here for what they need instead of building
it: the event-sourced application on the store the settings name, the billing service of a shard
with its rate card, catalogue, payment gateway and wall-clock guard. Adapters (consumers, the
relay, projections) receive what was built; none of them builds an application of its own.
"""

from application.authorization_desk import AuthorizationDesk
from application.billing_application import BillingApplication
from application.future_guard import FutureGuard
from application.service import BillingService
from application.settings import StoreSettings
from application.shard import Shard
from domain.catalog import Catalog
from domain.payments import PaymentGateway, SimulatedGateway
from domain.rates import RateCard


def open_application(store: StoreSettings) -> BillingApplication:
    """The application on `store` (its tables set up under the store's set-up lock)."""
    return BillingApplication(env=store.env)


def billing_service(app: BillingApplication, rate_card: RateCard, catalog: Catalog, *,
                    gateway: PaymentGateway | None = None, shard: Shard | None = None,
                    future_guard: FutureGuard | None = None, store_is_new: bool = False,
                    keeps_clock: bool = True, follows_every_change: bool = False) -> BillingService:
    """The billing service on `app`; the simulated payment gateway (SPEC §9) unless another is given."""
    return BillingService(app, rate_card, catalog, gateway or SimulatedGateway(), shard=shard,
                          future_guard=future_guard, store_is_new=store_is_new, keeps_clock=keeps_clock,
                          follows_every_change=follows_every_change)


def authorization_desk(store: StoreSettings, rate_card: RateCard, catalog: Catalog, future_guard: FutureGuard,
                       gateway: PaymentGateway | None = None) -> AuthorizationDesk:
    """The desk `serve` decides call authorizations at: its own application and billing service
    on `store`, refusing times far ahead of the wall clock, its clock kept in memory (so servers
    conflict only when they decide for the same organization at once), following every change
    of the accounts (calls rated by the consumers included) before each batch."""
    return AuthorizationDesk(lambda: billing_service(open_application(store), rate_card, catalog, gateway=gateway,
                                                     future_guard=future_guard, keeps_clock=False,
                                                     follows_every_change=True))
