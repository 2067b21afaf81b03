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

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from modelkeep.bootstrap import ServerRuntime
from modelkeep.entrypoints.api import (
    admin_routes,
    audit_routes,
    errors,
    governance_routes,
    routes,
    schemas,
    storage_routes,
    tracking_routes,
)
from modelkeep.errors import InvalidInput, ModelkeepError, Unauthenticated
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
    app.add_middleware(LimitsAndRequestId)
    app.include_router(routes.health)
    for router in (
        routes.api,
        admin_routes.router,
        audit_routes.router,
        governance_routes.router,
        storage_routes.router,
        tracking_routes.router,
    ):
        app.include_router(router, prefix="/api/v1", responses=ERROR_RESPONSES)
    return app


class LimitsAndRequestId:
    """Pure ASGI middleware: a request id on every request and response, and the size
    limit for JSON bodies. (Starlette's BaseHTTPMiddleware would wrap every body message
    of a blob upload in a task group of its own, which costs more than the upload.)"""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        request_id = _request_id(headers.get("x-request-id"))
        scope.setdefault("state", {})["request_id"] = request_id
        refused = _refused(headers.get("content-length"), scope["path"])
        refused = refused or _no_token(headers, scope["path"])
        if refused is None and _has_json_body(scope):
            # chunked bodies declare no length: count what arrives, before the app reads it
            read = await _read_json_body(receive)
            if read is None:
                refused = _too_large()
            else:
                receive = _replay(read, receive)
        if refused is not None:
            refused.headers["x-request-id"] = request_id
            await refused(scope, receive, send)
            return

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["x-request-id"] = request_id
            await send(message)

        await self.app(scope, receive, send_with_id)


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


def _no_token(headers: Headers, path: str) -> JSONResponse | None:
    """Every API route needs a token: without one, answer before reading any body."""
    if path.startswith("/api/") and "authorization" not in headers:
        return _error(Unauthenticated("no token was given"), 401)
    return None


def _has_json_body(scope: Scope) -> bool:
    path, method = scope["path"], scope["method"]
    return method in BODY_METHODS and path.startswith("/api/") and not path.startswith(STREAMED)


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
