"""For generated histories, every projection built incrementally (caught up after random chunks
of the history, in pages of 7 records so page ends fall everywhere) equals the same projection
rebuilt by replay in one go, table by table."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from application.billing_application import BillingApplication
from application.reference_data import load_catalog, load_rate_card
from application.settings import sqlite_store
from commcredits.project_cli import PROJECTIONS
from commcredits.scenario import encoded, generate
from commcredits.simulate import Simulation
from projections.projector import Projector
from projections.replay import replay
from projections.runner import catch_up
from projections.sources import StoreLog
from projections.view_database import ViewDatabase


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(1, 400), min_size=1, max_size=6))
def test_every_projection_built_bit_by_bit_equals_its_replay(tmp_path_factory, seed, cuts):
    lines = [encoded(line) for line in generate(organizations=3, users=24, cdrs=300, seed=seed)]
    store = sqlite_store(tmp_path_factory.mktemp("replay") / "events.sqlite")
    app = BillingApplication(env=store.env)
    simulation = Simulation(app, load_rate_card(None), load_catalog(None))
    database = ViewDatabase.for_store(store)
    projectors = {name: Projector(make(name), database) for name, make in PROJECTIONS.items()}
    try:
        start = 0
        for cut in sorted({min(cut, len(lines)) for cut in cuts}) + [len(lines)]:
            simulation.run(lines[start:cut], first_line_number=start + 1)
            simulation.service.flush()
            for projector in projectors.values():
                catch_up(projector, StoreLog(app), page_size=7)
            start = cut
        results = {name: replay(make, name, database, StoreLog(app)) for name, make in PROJECTIONS.items()}
    finally:
        database.close()
        app.close()
    for name, result in results.items():
        assert result.applied > 0, name
        assert result.live == result.rebuilt, name
