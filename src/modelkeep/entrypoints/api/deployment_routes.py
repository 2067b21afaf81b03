"""Deployments over HTTP: change and read a model's desired state in an environment, and
the feed gateways follow (``GET /deployments?env=ENV``, with ETag and long-poll).

The long-poll waits on the event loop, not in a worker thread: every 200 ms it asks the
database one cheap question (the newest change's id in the environment) in a worker
thread, and builds the document again only when that number moved."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import JSONResponse, Response

from modelkeep.domain.names import check_model_name
from modelkeep.entrypoints.api import schemas
from modelkeep.entrypoints.api.paging import Cursor, Limit, page
from modelkeep.entrypoints.api.routes import Reg
from modelkeep.services import deployments
from modelkeep.services.context import ServiceContext

router = APIRouter(tags=["deployments"])

MAX_WAIT_SECONDS = 30.0
POLL_SECONDS = 0.2
"""How often a waiting long-poll asks the database whether its environment changed."""


def _ref(name: str, ref: str) -> str:
    return f"{check_model_name(name)}@{ref}"


@router.post("/models/{name}/deployments/{env}")
def deploy(reg: Reg, name: str, env: str, body: schemas.Deploy) -> dict[str, Any]:
    """Deploy a version: stable (no percent), or a candidate beside the stable one
    (``canary``, ``ab`` with ``sticky``, or ``shadow``). Answers the change."""
    change = deployments.deploy(
        reg,
        _ref(name, body.version),
        env,
        canary=body.canary,
        ab=body.ab,
        sticky=body.sticky,
        shadow=body.shadow,
        expect_revision=body.expect_revision,
        reason=body.reason,
    )
    return change.to_dict()


@router.get("/models/{name}/deployments/{env}")
def deployment_status(reg: Reg, name: str, env: str) -> dict[str, Any]:
    """The model's desired state in the environment."""
    return deployments.status(reg, name, env).to_dict()


@router.get("/models/{name}/deployments/{env}/history")
def deployment_history(
    reg: Reg, name: str, env: str, limit: Limit = 1000, after: Cursor | None = None
) -> dict[str, Any]:
    """Every change of the desired state, oldest first (keyed by revision)."""
    found = deployments.history(reg, name, env)
    return page(((c.revision, c.to_dict()) for c in found), limit, after)


@router.post("/models/{name}/deployments/{env}/promote")
def promote_deployment(
    reg: Reg, name: str, env: str, body: schemas.DeploymentChangeIn
) -> dict[str, Any]:
    """The candidate (canary, else shadow) becomes the stable version."""
    change = deployments.promote(
        reg, name, env, expect_revision=body.expect_revision, reason=body.reason
    )
    return change.to_dict()


@router.post("/models/{name}/deployments/{env}/rollback")
def rollback_deployment(
    reg: Reg, name: str, env: str, body: schemas.DeploymentChangeIn
) -> dict[str, Any]:
    """Back to the desired state before the last change not yet rolled back."""
    change = deployments.rollback(
        reg, name, env, expect_revision=body.expect_revision, reason=body.reason
    )
    return change.to_dict()


def _document(reg: ServiceContext, env: str) -> tuple[dict[str, Any], int]:
    """The feed of ``env`` as this caller may read it, and the change marker it saw."""
    seen = deployments.marker(reg, env)  # read first: a change after it shows next time
    states = [s.to_dict() for s in deployments.feed(reg, env)]
    canonical = json.dumps(states, sort_keys=True, separators=(",", ":"))
    etag = hashlib.sha256(f"{env}\n{canonical}".encode()).hexdigest()[:32]
    return {"env": env, "etag": etag, "deployments": states}, seen


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = {t.strip().removeprefix("W/").strip('"') for t in if_none_match.split(",")}
    return etag in tags


def _answer(document: dict[str, Any]) -> JSONResponse:
    return JSONResponse(document, headers={"etag": f'"{document["etag"]}"'})


@router.get(
    "/deployments",
    responses={304: {"description": "nothing changed (If-None-Match) within the wait"}},
)
async def deployment_feed(
    request: Request,
    reg: Reg,
    env: str,
    wait: Annotated[float, Query(ge=0, description="Long-poll up to this many seconds")] = 0,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """Every desired state of ``env`` the caller may read: what a gateway serves.

    With ``If-None-Match`` naming the current ETag, answers 304; with ``wait`` (seconds,
    at most 30) it first waits for a change, answering 200 as soon as there is one."""
    document, seen = await anyio.to_thread.run_sync(_document, reg, env)
    if not _matches(if_none_match, document["etag"]):
        return _answer(document)
    deadline = time.monotonic() + min(wait, MAX_WAIT_SECONDS)
    while (left := deadline - time.monotonic()) > 0:
        await anyio.sleep(min(POLL_SECONDS, left))
        if await request.is_disconnected():
            break
        now = await anyio.to_thread.run_sync(deployments.marker, reg, env)
        if now == seen:
            continue
        document, seen = await anyio.to_thread.run_sync(_document, reg, env)
        if not _matches(if_none_match, document["etag"]):
            return _answer(document)
    return Response(status_code=304, headers={"etag": f'"{document["etag"]}"'})
