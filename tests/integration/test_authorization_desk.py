"""The authorization desk on its own: a request whose waiter gave up (the HTTP time-out cancelled
its future) still has its decision committed, the desk keeps serving, and a retry reads the
decision as it was made."""

from concurrent.futures import Future

from application import commands
from application.authorization_desk import AuthorizationDesk, _Request
from application.future_guard import FutureGuard
from application.inputs import command_from_document
from application.reference_data import load_catalog
from commcredits.composition import authorization_desk
from tests.integration.test_http_authorizations import SETUP
from tests.serve_process import set_up
from tests.support import SPEC_RATES

CALL = {"type": "call.authorize", "org": "contoso", "call_type": "user_out", "user": "alice@contoso.com",
        "caller_number": "+14255550100", "destination_number": "+12065550123", "requested_seconds": 600,
        "at": "2026-03-02T09:00:00Z"}


def test_a_cancelled_request_is_committed_and_the_desk_serves_on(store):
    set_up(store, SETUP)
    desk: AuthorizationDesk = authorization_desk(store, SPEC_RATES, load_catalog(None), FutureGuard()).open()
    try:
        given_up: Future = Future()
        given_up.cancel()
        answered: Future = Future()
        desk._decide([_Request(command_from_document({**CALL, "call_id": "c1"}), given_up),
                      _Request(command_from_document({**CALL, "call_id": "c2"}), answered)])
        assert answered.result().result == commands.APPLIED
        retry: Future = Future()
        desk._decide([_Request(command_from_document({**CALL, "call_id": "c1", "requested_seconds": 60}), retry)])
        assert retry.result().result == commands.REPEATED
        assert retry.result().record["max_seconds"] == 600  # as decided while nobody waited
    finally:
        desk.close()
