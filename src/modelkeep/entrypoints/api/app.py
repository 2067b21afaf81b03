"""``create_app``: the ASGI application over the registry's services.

Every route but the health checks needs a bearer token; the token names the actor, and
the services authorise each call for that actor. Lists use keyset pagination: ``limit``
and ``after`` (the key of the last item of the previous page); ``next`` is the key to
pass for the following page, or null on the last one.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from modelkeep import __version__
from modelkeep.entrypoints.api import admin_routes, audit_routes, errors, routes, schemas
from modelkeep.errors import InvalidInput, ModelkeepError
from modelkeep.services.registry import Registry

MAX_JSON_BYTES = 16 * 1024 * 1024

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

Authenticate = Callable[[str | None], Registry]
"""Turns a request's bearer token into a Registry acting for its user (or raises)."""


@dataclass(frozen=True)
class ServerState:
    authenticate: Authenticate
    ready: Callable[[], None]
    """Raises when the database or the blob store cannot be reached."""
    gc_grace_seconds: int


def create_app(state: ServerState) -> FastAPI:
    app = FastAPI(
        title="modelkeep",
        version=__version__,
        description="Versioned, content-addressed, audited models.",
    )
    app.state.modelkeep = state
    errors.install(app)
    app.middleware("http")(_limits_and_request_id)
    app.include_router(routes.health)
    for router in (routes.api, admin_routes.router, audit_routes.router):
        app.include_router(router, prefix="/api/v1", responses=ERROR_RESPONSES)
    return app


async def _limits_and_request_id(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    request.state.request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
    length = request.headers.get("content-length")
    is_blob = request.url.path.startswith("/api/v1/blobs/")
    try:
        declared = int(length) if length is not None else None
    except ValueError:
        return _error(InvalidInput(f"Content-Length {length!r} is not a number"), 400)
    if declared is not None and declared > MAX_JSON_BYTES and not is_blob:
        return _error(
            InvalidInput(
                f"the request body is over {MAX_JSON_BYTES} bytes", "send less per request"
            ),
            413,
        )
    response = await call_next(request)
    response.headers["x-request-id"] = request.state.request_id
    return response


def _error(exc: ModelkeepError, status: int) -> JSONResponse:
    return errors.error_response(exc, status)
