"""The HTTP API (`commcredits serve`): call authorization for switches (SPEC §13), keyed by tenant.

Every path under `/v1/organizations/{org}` needs `Authorization: Bearer <key>`: no key or a bad
one is 401; a key of another organization gets 404 `unknown_organization` (never another
tenant's data); a role that may not do it gets 403. Rejections are `{"code", "message"}` with
the SPEC's code. Decisions are committed before the answer (`application.authorization_desk`).
"""

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from application import commands
from application.authorization_desk import AuthorizationDesk, StoreUnavailable
from application.inputs import command_from_document
from commcredits.api_keys import ADMIN, OPERATOR, SWITCH, ApiKey, ApiKeys
from domain.authorization import MAX_REQUESTED_SECONDS
from domain.calls import CALL_TYPES
from domain.codes import MAX_IDENTIFIER_CHARS
from domain.errors import DomainError, UnknownAuthorization, UnknownOrganization, shown

if TYPE_CHECKING:
    from commcredits.desk_process import DeskProcess

log = logging.getLogger("commcredits.http")

DECISION_TIMEOUT_S = 10.0  # a request waits this long for its batch's commit, then answers 503
E164_SHAPE = r"^\+[1-9][0-9]{1,14}$"
SWITCH_ROLES = frozenset({SWITCH, ADMIN, OPERATOR})
STATUS_OF_CODE = {"invalid_input": 422, "future_time": 422, "unknown_organization": 404, "unknown_user": 404,
                  "unknown_authorization": 404, "call_id_in_use": 409, "unauthorized": 401, "forbidden": 403,
                  "store_unavailable": 503}


class ApiError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class ErrorBody(BaseModel):
    code: str = Field(description="A stable code: the SPEC's (invalid_input, unknown_organization, ...) or the API's "
                                  "(unauthorized, forbidden, call_id_in_use, store_unavailable)")
    message: str


CallType = Literal[tuple(sorted(CALL_TYPES))]  # type: ignore[valid-type]
E164 = Field(pattern=E164_SHAPE, description="E.164 with its +, a number phonenumbers finds valid")


class AuthorizationRequest(BaseModel):
    """SPEC §13.1's fields (`at` optional: now). Checked as the SPEC says (identifiers, E.164, …);
    the constraints given here are those the document can state, so clients and fuzzers see them."""
    model_config = ConfigDict(extra="allow", strict=True)  # "60", 60.0 or true are not 60 (SPEC §13.1)
    # (The document's schema. The body itself is checked by `application.inputs.CallAuthorize`.)
    call_id: str = Field(min_length=1, max_length=MAX_IDENTIFIER_CHARS)
    call_type: CallType
    number_type: str | None = None
    user: str | None = None
    caller_number: str = E164
    destination_number: str = E164
    requested_seconds: int | None = Field(None, ge=1, le=MAX_REQUESTED_SECONDS, description="absent or null: 14400")
    at: str | None = Field(None, description="ISO 8601 with an offset; default: now")


REQUEST_BODY = {"requestBody": {"required": True, "content": {"application/json": {
    "schema": AuthorizationRequest.model_json_schema()}}}}


# The hot path reads `org` from the path itself: a declared parameter costs FastAPI's dependency
# solving (~9 % of a decision's server time, bench/RESULTS.md); the document still states it.
ORG_PARAMETER = {"parameters": [{"name": "org", "in": "path", "required": True, "schema": {"type": "string"}}]}


class AuthorizationRecord(BaseModel):
    """SPEC §13.3's record of a decision, with its call id."""
    call_id: str
    org: str
    decision: Literal["allowed", "denied"]
    code: Literal["credits_not_active", "no_credits_licence", "no_rate", "insufficient_funds"] | None
    max_seconds: int
    pool: str | None
    held_minutes: int
    held_amount: str
    status: Literal["open", "settled", "released", "expired", "denied"]
    expires_at: str | None


class Health(BaseModel):
    status: Literal["ok"]


ERRORS = {status: {"model": ErrorBody} for status in (401, 403, 404, 409, 422, 503)}


def create_app(desk: "AuthorizationDesk | DeskProcess", keys: ApiKeys,
               now: Callable[[], datetime] | None = None) -> FastAPI:
    clock = now or (lambda: datetime.now(timezone.utc))
    app = FastAPI(title="commcredits", version="1", description=__doc__)
    _install_error_handlers(app)

    # Plain calls rather than FastAPI dependencies: resolving two dependencies cost ~100 µs of the
    # ~800 µs a decision took (bench/RESULTS.md).
    def caller_key(request: Request, org: str) -> ApiKey:
        header = request.headers.get("authorization", "")
        scheme, _, text = header.partition(" ")
        key = keys.verify(text.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            raise ApiError("unauthorized", "send a valid API key as 'Authorization: Bearer <key>'")
        if not key.may_reach(org):
            raise UnknownOrganization(org)
        return key

    def switch_key(request: Request, org: str) -> ApiKey:
        key = caller_key(request, org)
        if key.role not in SWITCH_ROLES:
            raise ApiError("forbidden", f"a {key.role} key may not authorize or release calls")
        return key

    @app.get("/healthz", response_model=Health, tags=["operations"])
    async def healthz() -> dict[str, str]:
        """For load balancers and benchmarks: the server answers (no key needed)."""
        return {"status": "ok"}

    @app.post("/v1/organizations/{org}/authorizations", response_model=AuthorizationRecord, responses=ERRORS,
              tags=["authorizations"], openapi_extra={**REQUEST_BODY, **ORG_PARAMETER})
    async def authorize(request: Request) -> Response:
        """May this call start, and for how long (SPEC §13.1)? Allowed and denied decisions are both
        200; a repeat of a `call_id` returns the same decision."""
        org = request.path_params["org"]
        switch_key(request, org)
        line = {**await _json_object(request), "type": "call.authorize", "org": org}
        if line.get("at") is None:
            line["at"] = clock().isoformat()
        outcome = await _wait(desk.submit(command_from_document(line)))
        record = outcome.record
        if record["org"] != org:
            raise ApiError("call_id_in_use", f"call_id {shown(record['call_id'])} was decided for another organization")
        if outcome.result == commands.REPEATED:  # the decision as it was made; GET says how it ended
            record = {**record, "status": "denied" if record["decision"] == "denied" else "open"}
        return _json(record)

    @app.get("/v1/organizations/{org}/authorizations/{call_id}", response_model=AuthorizationRecord,
             responses=ERRORS, tags=["authorizations"])
    async def read(org: str, call_id: str, request: Request) -> Response:
        """A decision and how its reservation stands now."""
        caller_key(request, org)
        record = await _wait(desk.read(call_id))
        if record is None or record["org"] != org:
            raise UnknownAuthorization(f"organization {org!r} has no decision for call {shown(call_id)}")
        return _json(record)

    @app.post("/v1/organizations/{org}/authorizations/{call_id}/release", response_model=AuthorizationRecord,
              responses=ERRORS, tags=["authorizations"])
    async def release(org: str, call_id: str, request: Request) -> Response:
        """The call never connected or was abandoned (SPEC §13.2): an open reservation is released;
        for any other status nothing changes."""
        switch_key(request, org)
        line = {"type": "call.released", "org": org, "call_id": call_id, "at": clock().isoformat()}
        return _json((await _wait(desk.submit(command_from_document(line)))).record)

    return app


def _json(record: dict[str, Any]) -> Response:
    """The record as the desk made it, serialised once (the response model documents it; the
    fuzzing tests check that they agree)."""
    return Response(orjson.dumps(record), media_type="application/json")


async def _json_object(request: Request) -> dict[str, Any]:
    """The body as one JSON object; its fields are checked by the wire model `simulate` checks
    lines with, so the API and the SPEC's lines reject the same things with the same messages."""
    try:
        document = orjson.loads(await request.body())
    except orjson.JSONDecodeError as error:
        raise ApiError("invalid_input", f"the body is not JSON: {error}") from None
    if not isinstance(document, dict):
        raise ApiError("invalid_input", f"the body must be a JSON object, got {shown(document)}")
    return document


async def _wait(future: "Future | asyncio.Future") -> Any:
    """The desk's answer, awaited on the event loop (no thread per waiting request)."""
    try:
        async with asyncio.timeout(DECISION_TIMEOUT_S):  # no task of its own, unlike wait_for
            return await (future if isinstance(future, asyncio.Future) else asyncio.wrap_future(future))
    except TimeoutError:
        raise ApiError("store_unavailable", "the decision was not committed in time; retry with the same call_id")
    except StoreUnavailable as error:
        raise ApiError("store_unavailable", f"the event store did not answer ({error}); retry with the same call_id")


def _install_error_handlers(app: FastAPI) -> None:
    def error(code: str, message: str) -> JSONResponse:
        return JSONResponse({"code": code, "message": message}, status_code=STATUS_OF_CODE.get(code, 422))

    @app.exception_handler(DomainError)
    async def domain_error(_request: Request, exc: DomainError) -> JSONResponse:
        return error(exc.code, exc.message)

    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error(exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "not valid"}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "the request"
        return error("invalid_input", f"{where}: {first.get('msg', 'not valid')}")

    @app.exception_handler(Exception)
    async def internal(_request: Request, exc: Exception) -> JSONResponse:  # a bug: say so in the API's shape
        log.error("request failed", exc_info=exc)
        return JSONResponse({"code": "internal_error", "message": f"the server failed ({type(exc).__name__}); "
                                                                  "retry with the same call_id"}, status_code=500)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return JSONResponse({"code": code, "message": str(exc.detail)}, status_code=exc.status_code)
