"""schemathesis against the HTTP API, from its own OpenAPI document, on a real (SQLite) store:
whatever a client sends, the server answers without a 5xx, with a status the document lists
and a body that matches the document's schema for it.

Each generated request is sent as generated and again on a real organization with a valid
key, so the fuzzing reaches the decision code, not only the key check."""

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from application.future_guard import FutureGuard
from application.reference_data import load_catalog
from application.settings import sqlite_store
from commcredits.api_keys import ApiKeys
from commcredits.composition import authorization_desk
from commcredits.http_api import create_app
from projections.view_database import ViewDatabase
from tests.integration.test_http_authorizations import SETUP
from tests.serve_process import set_up
from tests.support import SPEC_RATES

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    store = sqlite_store(tmp_path_factory.mktemp("fuzz") / "events.sqlite")
    set_up(store, SETUP)
    keys = ApiKeys(ViewDatabase.for_store(store))
    _, operator = keys.create(None, "operator")
    desk = authorization_desk(store, SPEC_RATES, load_catalog(None), FutureGuard()).start()
    yield create_app(desk, keys), {"Authorization": f"Bearer {operator}"}
    desk.stop()
    keys.close()


def operations(app) -> dict:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return {result.ok().label: result.ok() for result in schema.get_all_operations()}


# The API's operations (schemathesis' pytest loader does not run under pytest 9: hypothesis drives them here).
OPERATIONS = ["GET /healthz", "POST /v1/organizations/{org}/authorizations",
              "GET /v1/organizations/{org}/authorizations/{call_id}",
              "POST /v1/organizations/{org}/authorizations/{call_id}/release"]


def test_the_fuzzed_operations_are_every_operation_of_the_api(served):
    assert sorted(operations(served[0])) == sorted(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_request_gets_a_server_error_or_an_answer_outside_the_schema(served, label):
    app, operator_headers = served
    operation = operations(app)[label]

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(case=operation.as_strategy())
    def fuzz(case):
        case.call_and_validate(checks=CHECKS)
        case.call_and_validate(checks=CHECKS, headers=operator_headers)
        if "org" in (case.path_parameters or {}):
            case.path_parameters = {**case.path_parameters, "org": "contoso"}
            case.call_and_validate(checks=CHECKS, headers=operator_headers)

    fuzz()
