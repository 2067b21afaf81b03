"""``create_app``: the ASGI application over the registry's services.

Every route but the health checks needs a bearer token; the token names the actor, and
the services authorise each call for that actor. Lists use keyset pagination: ``limit``
and ``after`` (the key of the last item of the previous page); ``next`` is the key to
pass for the following page, or null on the last one.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import anyio
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelkeep.bootstrap import ServerRuntime
from modelkeep.entrypoints.api import (
    admin_routes,
    audit_routes,
    bundle_routes,
    deployment_routes,
    errors,
    governance_routes,
    routes,
    schemas,
    storage_routes,
    tracking_routes,
)
from modelkeep.entrypoints.api.routes import ACTING, bearer_token
from modelkeep.errors import BodyTimeout, InvalidInput, ModelkeepError
from modelkeep.version import __version__

MAX_JSON_BYTES = 16 * 1024 * 1024
REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
"""What a client's X-Request-Id may be (a UUID, a trace id); anything else is replaced."""
STREAMED = ("/api/v1/blobs/", "/api/v1/chunks")  # bodies streamed to the store: no limit
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": schemas.ErrorBody, "description": meaning}
    for status, meaning in (
        (400, "bad input"),
        (401, "no valid bearer token"),
        (403, "the token's user may not do this; the message says why"),
        (404, "no such model, version, alias, blob or endpoint"),
        (408, "the request body stalled (MODELKEEP_BODY_TIMEOUT_SECONDS)"),
        (409, "conflict with the current state"),
        (413, "request body too large"),
        (422, "the request body does not match its schema"),
        (503, "the database or blob store is unavailable"),
    )
}
"""Documented for every API route: they all answer errors in the one shape."""


def create_app(runtime: ServerRuntime) -> FastAPI:
    """The HTTP API over what ``bootstrap.open_server`` opened."""
    app = FastAPI(
        title="modelkeep",
        version=__version__,
        description="Versioned, content-addressed, audited models.",
    )
    app.state.modelkeep = runtime
    errors.install(app)
    app.add_middleware(LimitsAndRequestId, runtime=runtime)
    app.include_router(routes.health)
    for router in (
        routes.api,
        admin_routes.router,
        audit_routes.router,
        deployment_routes.router,
        governance_routes.router,
        bundle_routes.router,
        storage_routes.router,
        tracking_routes.router,
    ):
        app.include_router(router, prefix="/api/v1", responses=ERROR_RESPONSES)
    return app


class LimitsAndRequestId:
    """Pure ASGI middleware: a request id on every request and response; the token
    authenticated before any body is read; the size limit for JSON bodies, and a read
    timeout for every body. (Starlette's BaseHTTPMiddleware would wrap every body message
    of a blob upload in a task group of its own, which costs more than the upload.)"""

    def __init__(self, app: ASGIApp, runtime: ServerRuntime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = _request_id(headers.get("x-request-id"))
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        receive = _timed_body(receive, self.runtime.body_timeout_seconds)
        refused = _refused(headers.get("content-length"), scope["path"])
        if refused is None and scope["path"].startswith("/api/"):
            refused = await self._authenticate(headers, state)
        if refused is None and _has_json_body(scope):
            refused, receive = await _buffer_json_body(receive)
        if refused is not None:
            refused.headers["x-request-id"] = request_id
            if _declares_body(headers):  # its unread body would be taken for the next request
                refused.headers["connection"] = "close"
            await refused(scope, receive, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                response_headers["x-request-id"] = request_id
                if message["status"] == BodyTimeout.http_status:  # the body never finished
                    response_headers["connection"] = "close"
            await send(message)

        await self.app(scope, receive, send_with_id)

    async def _authenticate(self, headers: Headers, state: dict[str, Any]) -> JSONResponse | None:
        """Every API route needs a valid token: a missing, unknown, revoked or expired one
        is answered 401 before any of the body (perhaps hundreds of MB) is read. The
        routes reuse the context found here. A remembered token is answered here; a
        lookup that may query the database runs in a worker thread, off the event loop."""
        token = bearer_token(headers.get("authorization"))
        try:
            acting = self.runtime.remembered(token)
            if acting is None:
                acting = await anyio.to_thread.run_sync(self.runtime.authenticate, token)
            state[ACTING] = acting
        except ModelkeepError as exc:  # unauthenticated (401), or the database is down (503)
            return errors.error_response(exc)
        return None


def _request_id(given: str | None) -> str:
    """The client's ``X-Request-Id`` if it is a plain id, else one of the server's: it is
    stored in hash-chained audit events, so it must be short and printable."""
    if given is not None and REQUEST_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


def _refused(length: str | None, path: str) -> JSONResponse | None:
    try:
        declared = int(length) if length is not None else None
    except ValueError:
        return _error(InvalidInput(f"Content-Length {length!r} is not a number"), 400)
    if declared is not None and declared > MAX_JSON_BYTES and not path.startswith(STREAMED):
        return _too_large()
    return None


def _too_large() -> JSONResponse:
    message = f"the request body is over {MAX_JSON_BYTES} bytes"
    return _error(InvalidInput(message, "send less per request"), 413)


def _timed_body(receive: Receive, seconds: float) -> Receive:
    """``receive`` that gives up with ``BodyTimeout`` when the next part of the request
    body takes more than ``seconds``: a stalled upload must not keep its connection (and
    whatever waits on it) forever. Once the body is complete it waits untimed, since a
    streamed response listens through it for the client going away."""
    complete = False

    async def timed() -> Message:
        nonlocal complete
        if complete:
            return await receive()
        with anyio.move_on_after(seconds) as waited:
            message = await receive()
        if waited.cancelled_caught:
            raise BodyTimeout(f"the request body stalled for over {seconds:g} seconds")
        complete = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    return timed


def _declares_body(headers: Headers) -> bool:
    return headers.get("content-length", "0") != "0" or "transfer-encoding" in headers


def _has_json_body(scope: Scope) -> bool:
    path, method = scope["path"], scope["method"]
    return method in BODY_METHODS and path.startswith("/api/") and not path.startswith(STREAMED)


async def _buffer_json_body(receive: Receive) -> tuple[JSONResponse | None, Receive]:
    """The body read ahead, to replay to the app; or the answer refusing it. Chunked
    bodies declare no length: their bytes are counted as they arrive."""
    try:
        read = await _read_json_body(receive)
    except BodyTimeout as exc:
        return _error(exc, 408), receive
    if read is None:
        return _too_large(), receive
    return None, _replay(read, receive)


async def _read_json_body(receive: Receive) -> list[Message] | None:
    """The request's messages, up to ``MAX_JSON_BYTES`` of body; None past that."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages  # the client went away: the app will see it
        size += len(message.get("body", b""))
        if size > MAX_JSON_BYTES:
            return None
        if not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> Message:
        return pending.pop(0) if pending else await receive()

    return replayed


def _error(exc: ModelkeepError, status: int) -> JSONResponse:
    return errors.error_response(exc, status)
