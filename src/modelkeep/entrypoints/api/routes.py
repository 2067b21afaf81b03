"""REST resources for everything the CLI does. Bodies are the CLI's JSON documents."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, BinaryIO, cast

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse

from modelkeep.bootstrap import ServerRuntime
from modelkeep.domain.digest import check_digest
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.names import check_model_name
from modelkeep.domain.recipes import parse_chunk_list
from modelkeep.domain.versions import PushRequest, VersionMetadata
from modelkeep.entrypoints.api import schemas
from modelkeep.entrypoints.api.errors import error_response
from modelkeep.entrypoints.api.paging import Cursor, Limit, page
from modelkeep.entrypoints.api.streams import read_body_in_thread
from modelkeep.errors import DigestMismatch, InvalidInput, StoreUnavailable
from modelkeep.services import aliases, audit, governance, maintenance, models, versions
from modelkeep.services import files as file_service
from modelkeep.services.context import ServiceContext

health = APIRouter(tags=["health"])
api = APIRouter()

READ_BLOCK = 1024 * 1024


ACTING = "acting"
"""Where the app's middleware leaves the context it authenticated (in the request state)."""


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer TOKEN`` header; None without one."""
    scheme, _, token = (header or "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def registry(request: Request) -> ServiceContext:
    """The registry, acting for the user the request's bearer token names (as the
    middleware authenticated it, before the body was read)."""
    return _acting(request).for_request(getattr(request.state, "request_id", None))


def _acting(request: Request) -> ServiceContext:
    found: ServiceContext | None = getattr(request.state, ACTING, None)
    if found is not None:
        return found
    # a route outside /api/, which the middleware does not authenticate
    runtime: ServerRuntime = request.app.state.modelkeep
    return runtime.authenticate(bearer_token(request.headers.get("authorization")))


Reg = Annotated[ServiceContext, Depends(registry)]


@health.get("/healthz")
def healthz() -> dict[str, str]:
    """Alive: the process answers."""
    return {"status": "ok"}


@health.get("/readyz", responses={503: {"description": "database or blob store unreachable"}})
def readyz(request: Request) -> JSONResponse:
    """Ready: the database and the blob store answer."""
    try:
        request.app.state.modelkeep.ready()
    except StoreUnavailable as exc:
        return JSONResponse({"status": "unavailable", "error": exc.to_dict()}, status_code=503)
    return JSONResponse({"status": "ready"})


# models ---------------------------------------------------------------------------------


@api.get("/models", tags=["models"])
def list_models(reg: Reg, limit: Limit = 100, after: str | None = None) -> dict[str, Any]:
    found = sorted(models.list_models(reg), key=lambda m: m.name)  # the cursor compares in Python
    return page(((m.name, m.to_dict()) for m in found), limit, after)


@api.post("/models", status_code=201, tags=["models"])
def create_model(reg: Reg, body: schemas.CreateModel) -> dict[str, Any]:
    return models.create_model(reg, body.name, body.description, body.require).to_dict()


@api.get("/models/{name}", tags=["models"])
def get_model(reg: Reg, name: str) -> dict[str, Any]:
    return models.get_model(reg, name).to_dict()


# versions -------------------------------------------------------------------------------


@api.get("/models/{name}/versions", tags=["versions"])
def list_versions(
    reg: Reg, name: str, limit: Limit = 100, after: Cursor | None = None
) -> dict[str, Any]:
    found = versions.list_versions(reg, name, after, limit + 1)  # one more: is there a next page?
    return page(((v.number, v.to_dict()) for v in found), limit, None)


@api.post("/models/{name}/versions", status_code=201, tags=["versions"])
def register_version(reg: Reg, name: str, body: schemas.RegisterVersion) -> dict[str, Any]:
    files = [FileEntry(f.path, f.size, f.digest) for f in body.files]
    metadata = VersionMetadata(**body.metadata.model_dump())
    request = PushRequest(metadata, body.semver, body.bump, body.message, body.if_exists)
    return versions.register_version(reg, name, files, request).to_dict()


@api.post("/models/{name}/versions/check", status_code=204, tags=["versions"])
def check_push(reg: Reg, name: str, body: schemas.PushDetails) -> None:
    """Would this registration be refused? Ask before uploading gigabytes."""
    metadata = VersionMetadata(**body.metadata.model_dump())
    versions.check_push(reg, name, PushRequest(metadata, body.semver, body.bump, body.message))


@api.get("/models/{name}/versions/{ref}", tags=["versions"])
def get_version(reg: Reg, name: str, ref: str) -> dict[str, Any]:
    return versions.get_version(reg, f"{check_model_name(name)}@{ref}").to_dict()


@api.post("/models/{name}/versions/{ref}/archive", tags=["versions"])
def archive(reg: Reg, name: str, ref: str, body: schemas.Reason) -> dict[str, Any]:
    return versions.archive(reg, f"{check_model_name(name)}@{ref}", body.reason).to_dict()


@api.post("/models/{name}/versions/{ref}/unarchive", tags=["versions"])
def unarchive(reg: Reg, name: str, ref: str, body: schemas.Reason) -> dict[str, Any]:
    """Make an archived version usable again (audited as version.unarchive)."""
    return versions.unarchive(reg, f"{check_model_name(name)}@{ref}", body.reason).to_dict()


@api.get("/resolve", tags=["versions"])
def resolve(reg: Reg, ref: str, at: datetime | None = None) -> dict[str, Any]:
    return versions.resolve(reg, ref, _aware(at)).to_dict()


@api.get("/diff", tags=["versions"])
def diff(reg: Reg, old: str, new: str) -> dict[str, Any]:
    return versions.diff(reg, old, new).to_dict()


# aliases and stages ---------------------------------------------------------------------


@api.put("/models/{name}/aliases/{alias}", tags=["aliases"])
def set_alias(reg: Reg, name: str, alias: str, body: schemas.SetAlias) -> dict[str, Any]:
    ref = f"{check_model_name(name)}@{body.version}"
    return aliases.set_alias(reg, ref, alias, body.reason, body.expect).to_dict()


@api.delete("/models/{name}/aliases/{alias}", tags=["aliases"])
def remove_alias(reg: Reg, name: str, alias: str, reason: str | None = None) -> dict[str, Any]:
    return aliases.remove_alias(reg, name, alias, reason).to_dict()


@api.get("/models/{name}/aliases", tags=["aliases"])
def alias_history(
    reg: Reg, name: str, alias: str | None = None, limit: Limit = 1000, after: Cursor | None = None
) -> dict[str, Any]:
    """Every move, oldest first; the cursor is an event's position in the history."""
    events = enumerate(aliases.alias_history(reg, name, alias), start=1)
    return page(((i, {**e.to_dict(), "id": i}) for i, e in events), limit, after)


@api.post("/models/{name}/promote", tags=["aliases"])
def promote(reg: Reg, name: str, body: schemas.Promote) -> dict[str, Any]:
    """Move a stage if the policy is met (else 409 ``policy_not_met`` listing every unmet
    rule): the move, the evaluation and the signed attestation."""
    ref = f"{check_model_name(name)}@{body.version}"
    return governance.promote(reg, ref, body.to, body.reason, body.expect, body.override).to_dict()


@api.post("/models/{name}/rollback", tags=["aliases"])
def rollback(reg: Reg, name: str, body: schemas.Rollback) -> dict[str, Any]:
    return aliases.rollback(reg, name, body.stage, body.reason).to_dict()


# blobs ----------------------------------------------------------------------------------


@api.post("/blobs/missing", tags=["blobs"])
def missing_blobs(reg: Reg, body: schemas.Digests) -> dict[str, list[str]]:
    """Which of these blobs the store lacks: upload only those."""
    for digest in body.digests:
        check_digest(digest)
    return {"missing": sorted(versions.missing_blobs(reg, body.digests))}


@api.put(
    "/blobs/{digest}",
    status_code=201,
    tags=["blobs"],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        }
    },
)
async def put_blob(request: Request, digest: str) -> JSONResponse:
    """Upload one blob's bytes, streamed; refused unless they hash to ``digest``."""
    reg = await anyio.to_thread.run_sync(registry, request)
    check_digest(digest)
    length = request.headers.get("content-length")
    expected = int(length) if length else None
    try:
        info = await read_body_in_thread(
            request.stream().__aiter__(),
            expected,
            lambda reader: versions.put_blob(reg, cast(BinaryIO, reader), expected=digest),
        )
    except DigestMismatch as exc:  # the sender's bytes are wrong, not the store's
        return error_response(exc, 422)
    return JSONResponse({"digest": info.digest, "size": info.size}, status_code=201)


@api.get(
    "/blobs/{digest}",
    tags=["blobs"],
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_blob(reg: Reg, digest: str) -> StreamingResponse:
    """A blob's bytes, verified as they are read (a damaged blob ends the stream early)."""
    stream = versions.open_blob(reg, check_digest(digest))
    return StreamingResponse(_chunks(stream), media_type="application/octet-stream")


def _chunks(stream: Any) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(READ_BLOCK):
            yield chunk


# files: whole or chunked ----------------------------------------------------------------


@api.put(
    "/chunks",
    status_code=201,
    tags=["blobs"],
    openapi_extra={
        "parameters": [
            {
                "name": "x-modelkeep-chunks",
                "in": "header",
                "required": True,
                "description": "the chunks in the body, in order: digest:size,...",
                "schema": {"type": "string", "maxLength": 200_000},
            }
        ],
        "requestBody": {
            "required": True,
            "content": {
                "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
            },
        },
    },
)
async def put_chunks(request: Request) -> JSONResponse:
    """Upload several chunks in one body, back to back, as listed in the
    ``X-Modelkeep-Chunks`` header (``digest:size,…``); each is refused (422) unless it
    hashes to its digest."""
    reg = await anyio.to_thread.run_sync(registry, request)  # the token first
    refs = file_service.parse_pack(request.headers.get("x-modelkeep-chunks", ""))
    length = request.headers.get("content-length")
    expected = int(length) if length else None
    if expected is not None and expected != sum(c.size for c in refs):
        raise InvalidInput(f"Content-Length {expected} is not the listed chunks' total size")
    try:
        stored = await read_body_in_thread(
            request.stream().__aiter__(),
            expected,
            lambda reader: file_service.put_pack(reg, cast(BinaryIO, reader), refs),
        )
    except DigestMismatch as exc:  # the sender's bytes are wrong, not the store's
        return error_response(exc, 422)
    return JSONResponse({"chunks": len(refs), "stored": stored}, status_code=201)


@api.get("/files/{digest}/recipe", tags=["blobs"])
def get_recipe(reg: Reg, digest: str) -> dict[str, Any]:
    """How to rebuild a file: its chunks in order (a file kept whole is its own chunk)."""
    return file_service.file_recipe(reg, digest).to_dict()


@api.post("/files", status_code=201, tags=["blobs"])
def assemble_file(reg: Reg, body: dict[str, Any]) -> dict[str, Any]:
    """A file made of uploaded chunks, in order (``{"chunker", "chunks": [[digest,
    size], …]}``): the server hashes them into the file's digest and records the
    recipe; register versions with that digest."""
    chunker, chunks = parse_chunk_list(body)
    recipe = file_service.assemble(reg, chunker, chunks)
    return {"digest": recipe.digest, "size": recipe.size, "chunks": len(recipe.chunks)}


@api.get(
    "/files/{digest}",
    tags=["blobs"],
    responses={200: {"content": {"application/octet-stream": {}}}},
)
def get_file(reg: Reg, digest: str) -> StreamingResponse:
    """A file's bytes, rebuilt from its chunks if it has any, verified as they are read."""
    stream = file_service.open_file(reg, digest)
    return StreamingResponse(_chunks(stream), media_type="application/octet-stream")


# maintenance and audit ------------------------------------------------------------------


@api.post("/verify", tags=["maintenance"])
def verify(reg: Reg, body: schemas.Verify) -> dict[str, Any]:
    return maintenance.verify(reg, body.ref, body.sample).to_dict()


@api.post("/gc", tags=["maintenance"])
def gc(request: Request, reg: Reg, body: schemas.Gc) -> dict[str, Any]:
    grace = request.app.state.modelkeep.gc_grace_seconds
    return maintenance.gc(reg, grace_seconds=grace, dry_run=body.dry_run).to_dict()


@api.get("/audit", tags=["audit"])
def audit_log(
    reg: Reg,
    model: str | None = None,
    since: datetime | None = None,
    limit: Limit = 1000,
    after: Cursor | None = None,
) -> dict[str, Any]:
    events = audit.audit_log(reg, model, _aware(since), after, limit + 1)  # one more: a next page?
    return page(((e.seq, e.to_dict()) for e in events), limit, None)


@api.get("/audit/verify", tags=["audit"])
def audit_verify(reg: Reg) -> dict[str, Any]:
    return audit.verify(reg).to_dict()


def _aware(when: datetime | None) -> datetime | None:
    """The time in UTC; one without a time zone is the server's local time."""
    if when is None:
        return None
    try:
        return when.astimezone(UTC) if when.tzinfo else when.astimezone().astimezone(UTC)
    except (OverflowError, ValueError):  # within a day of year 1 or year 9999
        raise InvalidInput(
            f"the time {when.isoformat()} is out of range", "give a time between years 2 and 9998"
        ) from None
