"""One JSON error shape for every failure: ``{"error": {"code", "message", "hint"}}``.

HTTP status codes live here and in the routes only; services raise ModelkeepError
subclasses, each carrying its own ``http_status``.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from modelkeep.errors import InternalError, InvalidInput, ModelkeepError, NotFound, UsageError

log = logging.getLogger("modelkeep.api")


def error_response(exc: ModelkeepError, status: int | None = None) -> JSONResponse:
    return JSONResponse({"error": exc.to_dict()}, status_code=status or exc.http_status)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ModelkeepError, _modelkeep_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(StarletteHTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _unexpected)


async def _modelkeep_error(_request: Request, exc: ModelkeepError) -> JSONResponse:
    return error_response(exc)


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = f"{where}: {first.get('msg', 'invalid')}" if where else "the request is invalid"
    return error_response(InvalidInput(message, "see /openapi.json for the request shape"), 422)


async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    if exc.status_code == 404:
        return error_response(NotFound("no such endpoint", "see /openapi.json"), 404)
    error = UsageError(str(exc.detail), "see /openapi.json")
    return error_response(error, exc.status_code)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.exception("unexpected error")
    return error_response(InternalError(f"{type(exc).__name__}: {exc}"), 500)
