"""Users, their grants and their tokens: what ``modelkeep users|tokens`` do, over HTTP.

Every route needs a global admin (``services.admin`` authorises each call). A token's
secret appears only in the answers that create it (``POST /users``, ``POST /tokens``);
listings never show it. A secret is revoked by sending it in a body
(``POST /tokens/revoke``), never in a URL, which servers and proxies log.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from modelkeep.domain.access import ROLES
from modelkeep.domain.numbers import INT64_MAX
from modelkeep.domain.users import Token
from modelkeep.entrypoints.api import schemas
from modelkeep.entrypoints.api.paging import Cursor, Limit, page
from modelkeep.entrypoints.api.routes import Reg
from modelkeep.services import admin

router = APIRouter(tags=["users"])

TokenId = Annotated[int, Path(ge=1, le=INT64_MAX, description="The id tokens are listed by")]
Role = Annotated[
    str,
    Query(max_length=32, description="The role", json_schema_extra={"enum": list(ROLES)}),
]


def _expires_in(seconds: int | None) -> timedelta | None:
    return timedelta(seconds=seconds) if seconds is not None else None


def _token(token: Token, reg: Reg) -> dict[str, Any]:
    return {**token.to_dict(), "state": token.state(reg.clock())}


# users ----------------------------------------------------------------------------------


@router.get("/users")
def list_users(
    reg: Reg, limit: Limit = 100, after: str | None = None, include_deleted: bool = False
) -> dict[str, Any]:
    """Every user with its grants and number of active tokens, by name; deleted users
    only with ``include_deleted=true``."""
    found = admin.list_users(reg, include_deleted)
    found = sorted(found, key=lambda u: u.name)  # Python's order, as ``after``
    return page(((u.name, u.to_dict()) for u in found), limit, after)


@router.post("/users", status_code=201)
def create_user(reg: Reg, body: schemas.CreateUser) -> dict[str, Any]:
    """A new user with one grant, and its first token: ``token.token`` is shown only now."""
    user, issued = admin.create_user(
        reg, body.name, body.role, body.model, _expires_in(body.expires_in)
    )
    return {"user": user.to_dict(), "token": issued.to_dict()}


@router.get("/users/{name}")
def get_user(reg: Reg, name: str) -> dict[str, Any]:
    return admin.get_user(reg, name).to_dict()


@router.post("/users/{name}/grants")
def grant(reg: Reg, name: str, body: schemas.ScopedGrantIn) -> dict[str, Any]:
    """Give the user the role (on ``model``, ``experiment`` or ``dataset``, or globally);
    nothing changes if it has it."""
    scope = {"experiment": body.experiment, "dataset": body.dataset}
    return admin.grant(reg, name, body.role, body.model, **scope).to_dict()


@router.delete("/users/{name}/grants")
def revoke_grant(
    reg: Reg,
    name: str,
    role: Role,
    model: str | None = None,
    experiment: str | None = None,
    dataset: str | None = None,
) -> dict[str, Any]:
    """Take the role (on the scope named, or the global one) away from the user."""
    scope = {"experiment": experiment, "dataset": dataset}
    return admin.revoke_grant(reg, name, role, model, **scope).to_dict()


@router.post("/users/{name}/disable")
def disable_user(reg: Reg, name: str) -> dict[str, Any]:
    """Its tokens stop working at once."""
    return admin.set_disabled(reg, name, True).to_dict()


@router.post("/users/{name}/enable")
def enable_user(reg: Reg, name: str) -> dict[str, Any]:
    return admin.set_disabled(reg, name, False).to_dict()


@router.delete("/users/{name}")
def delete_user(reg: Reg, name: str) -> dict[str, Any]:
    """Soft delete: the user stays listed with ``include_deleted``, its tokens are revoked,
    its grants and approvals stop counting, its name is never used again. Not undone."""
    return admin.delete_user(reg, name).to_dict()


# tokens ---------------------------------------------------------------------------------


@router.get("/tokens")
def list_tokens(
    reg: Reg, user: str | None = None, limit: Limit = 100, after: Cursor | None = None
) -> dict[str, Any]:
    """Every token (of ``user``, if given), oldest first, revoked and expired ones too;
    never their secrets."""
    found = admin.list_tokens(reg, user)
    return page(((t.id, _token(t, reg)) for t in found), limit, after)


@router.post("/tokens", status_code=201)
def create_token(reg: Reg, body: schemas.CreateToken) -> dict[str, Any]:
    """Another token for a user: ``token`` is shown only now."""
    issued = admin.create_token(reg, body.user, _expires_in(body.expires_in), body.label)
    return {**issued.to_dict(), "state": issued.info.state(reg.clock())}


@router.delete("/tokens/{token_id}")
def revoke_token(reg: Reg, token_id: TokenId) -> dict[str, Any]:
    """Revoke a token by its id; revoking it again changes nothing."""
    return _token(admin.revoke_token(reg, token_id), reg)


@router.post("/tokens/revoke")
def revoke_token_given(reg: Reg, body: schemas.RevokeToken) -> dict[str, Any]:
    """Revoke a token named by its id or by its secret (kept out of URLs and logs)."""
    return _token(admin.revoke_token(reg, body.token), reg)
