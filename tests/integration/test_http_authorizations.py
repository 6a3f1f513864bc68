"""The authorization endpoints of `commcredits serve` on the real stores (SQLite and PostgreSQL):
decisions, repeats, reads and releases; keys, roles and tenants; errors with their codes."""

import pytest
from fastapi.testclient import TestClient

from application.future_guard import FutureGuard
from application.reference_data import load_catalog
from commcredits.api_keys import ApiKeys
from commcredits.composition import authorization_desk
from commcredits.http_api import create_app
from projections.view_database import ViewDatabase
from tests.serve_process import set_up
from tests.support import SPEC_RATES

T0 = "2026-01-01T00:00:00Z"
SETUP = [
    {"type": "organization.created", "at": T0, "org": "contoso", "name": "Contoso", "country": "US", "currency": "USD",
     "commerce": "legacy", "agreements": ["EA-1"]},
    {"type": "user.added", "at": T0, "org": "contoso", "user": "alice@contoso.com", "usage_location": "US"},
    {"type": "licences.assigned", "at": T0, "org": "contoso", "users": ["alice@contoso.com"],
     "licences": ["PHONE_SYSTEM", "CALLING_PLAN_PAYG"]},
    {"type": "order.placed", "at": T0, "org": "contoso", "order": "o-1", "funds": "1", "auto_recharge": {"enabled": False},
     "payment": {"method": "enterprise_agreement", "agreement": "EA-1", "po": None}},
    {"type": "licences.assigned", "at": T0, "org": "contoso", "users": ["alice@contoso.com"],
     "licences": ["COMMUNICATIONS_CREDITS"]},
    {"type": "organization.created", "at": T0, "org": "fabrikam", "name": "Fabrikam", "country": "US",
     "currency": "USD", "commerce": "nce"},
]
CALL = {"call_id": "c1", "call_type": "user_out", "user": "alice@contoso.com", "caller_number": "+14255550100",
        "destination_number": "+12065550123", "requested_seconds": 600}


@pytest.fixture
def api(store):
    set_up(store, SETUP)
    keys = ApiKeys(ViewDatabase.for_store(store))
    desk = authorization_desk(store, SPEC_RATES, load_catalog(None), FutureGuard()).start()
    client = TestClient(create_app(desk, keys))
    made = {role: keys.create("contoso", role)[1] for role in ("switch", "reader", "admin")}
    made["other"] = keys.create("fabrikam", "switch")[1]
    made["operator"] = keys.create(None, "operator")[1]
    yield client, {role: {"Authorization": f"Bearer {text}"} for role, text in made.items()}, keys
    client.close()
    desk.stop()
    keys.close()


def test_a_decision_is_answered_repeated_read_and_released(api):
    client, keys, _ = api
    first = client.post("/v1/organizations/contoso/authorizations", json=CALL, headers=keys["switch"])
    assert first.status_code == 200
    # funds 1: 600 s → 10 min × 0.0190 = 0.1900 held
    assert {k: first.json()[k] for k in ("call_id", "org", "decision", "max_seconds", "held_amount", "status")} == {
        "call_id": "c1", "org": "contoso", "decision": "allowed", "max_seconds": 600, "held_amount": "0.1900",
        "status": "open"}
    repeat = client.post("/v1/organizations/contoso/authorizations", json={**CALL, "requested_seconds": 60},
                         headers=keys["switch"])
    assert repeat.status_code == 200 and repeat.json() == first.json()
    assert client.get("/v1/organizations/contoso/authorizations/c1", headers=keys["reader"]).json() == first.json()
    released = client.post("/v1/organizations/contoso/authorizations/c1/release", headers=keys["switch"])
    assert released.status_code == 200 and released.json()["status"] == "released"
    again = client.post("/v1/organizations/contoso/authorizations", json=CALL, headers=keys["switch"])
    assert again.json() == first.json()  # the decision as it was made; GET says how it ended
    assert client.get("/v1/organizations/contoso/authorizations/c1", headers=keys["switch"]).json()["status"] == "released"


def test_a_denial_is_a_decision(api):
    client, keys, _ = api
    denied = client.post("/v1/organizations/contoso/authorizations",
                         json={**CALL, "call_id": "c2", "destination_number": "+819012345678"}, headers=keys["switch"])
    assert denied.status_code == 200
    assert (denied.json()["decision"], denied.json()["code"], denied.json()["expires_at"]) == ("denied", "no_rate", None)


@pytest.mark.parametrize("headers, status, code", [
    ({}, 401, "unauthorized"), ({"Authorization": "Bearer cc_0000000000000000_" + "A" * 43}, 401, "unauthorized"),
    ({"Authorization": "Basic abc"}, 401, "unauthorized"), ("other", 404, "unknown_organization"),
    ("reader", 403, "forbidden"),
])
def test_keys_roles_and_tenants(api, headers, status, code):
    client, keys, _ = api
    response = client.post("/v1/organizations/contoso/authorizations", json=CALL,
                           headers=keys[headers] if isinstance(headers, str) else headers)
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert "cc_" not in response.text


def test_a_key_of_another_organization_never_sees_its_data(api):
    client, keys, _ = api
    client.post("/v1/organizations/contoso/authorizations", json=CALL, headers=keys["switch"])
    for path in ("/v1/organizations/contoso/authorizations/c1",):
        response = client.get(path, headers=keys["other"])
        assert (response.status_code, response.json()["code"]) == (404, "unknown_organization")
    taken = client.post("/v1/organizations/fabrikam/authorizations", json={**CALL, "user": None, "call_type": "ucap_out"},
                        headers=keys["other"])
    assert (taken.status_code, taken.json()["code"]) == (409, "call_id_in_use")
    assert "contoso" not in taken.text


def test_an_operator_reaches_every_organization_and_a_revoked_key_nothing(api):
    client, keys, store_keys = api
    response = client.post("/v1/organizations/fabrikam/authorizations", json={**CALL, "call_id": "f1", "user": None,
                                                                               "call_type": "ucap_out"},
                           headers=keys["operator"])
    assert response.status_code == 200 and response.json()["decision"] == "allowed"  # NCE: never blocked
    key_id = keys["switch"]["Authorization"].split("_")[1]
    store_keys.revoke(key_id)
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.post("/v1/organizations/contoso/authorizations", json=CALL,
                       headers=keys["switch"]).status_code == 401


@pytest.mark.parametrize("change, status, code", [
    ({"call_id": ""}, 422, "invalid_input"), ({"call_id": "a\x00b"}, 422, "invalid_input"),
    ({"requested_seconds": 0}, 422, "invalid_input"), ({"requested_seconds": "60"}, 422, "invalid_input"),
    ({"requested_seconds": 60.0}, 422, "invalid_input"), ({"requested_seconds": True}, 422, "invalid_input"),
    ({"destination_number": "12065550123"}, 422, "invalid_input"), ({"at": "2026-01-05T10:00:00"}, 422, "invalid_input"),
    ({"at": "2199-12-31T23:01:00Z"}, 422, "future_time"), ({"user": "ghost@contoso.com"}, 404, "unknown_user"),
])
def test_rejections_carry_their_code(api, change, status, code):
    client, keys, _ = api
    response = client.post("/v1/organizations/contoso/authorizations", json={**CALL, **change}, headers=keys["switch"])
    assert (response.status_code, response.json()["code"]) == (status, code)
    assert set(response.json()) == {"code", "message"}


def test_unknown_things_are_404(api):
    client, keys, _ = api
    assert client.get("/v1/organizations/contoso/authorizations/nope", headers=keys["admin"]).json()["code"] == \
        "unknown_authorization"
    assert client.post("/v1/organizations/contoso/authorizations/nope/release",
                       headers=keys["admin"]).json()["code"] == "unknown_authorization"
    response = client.post("/v1/organizations/nowhere/authorizations", json=CALL, headers=keys["operator"])
    assert (response.status_code, response.json()["code"]) == (404, "unknown_organization")


def test_the_openapi_document_describes_the_endpoints(api):
    client, _, _ = api
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/healthz", "/v1/organizations/{org}/authorizations", "/v1/organizations/{org}/authorizations/{call_id}",
            "/v1/organizations/{org}/authorizations/{call_id}/release"} <= set(paths)


def test_keys_verified_by_many_request_threads_at_once_share_one_connection_safely(api, monkeypatch):
    """The server's request threads all verify keys; with the cache expired they all query the
    one view-database connection at once (seen under load: 'cannot start a transaction within a
    transaction', a 500)."""
    import threading

    import commcredits.api_keys as api_keys

    _, keys, store_keys = api
    monkeypatch.setattr(api_keys, "CACHE_TTL_S", 0.0)
    texts = [header["Authorization"].removeprefix("Bearer ") for header in keys.values()]
    failures: list[BaseException] = []
    start = threading.Barrier(32)

    def verify_many() -> None:
        start.wait()
        try:
            for _ in range(50):
                for text in texts:
                    assert store_keys.verify(text) is not None
        except BaseException as error:  # noqa: BLE001 (reported below)
            failures.append(error)

    threads = [threading.Thread(target=verify_many) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
