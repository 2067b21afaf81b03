"""Users, their roles and their API tokens; and turning a token back into an ``Actor``.

Managing users needs a global admin (an operator of the store is one). Every change
writes an audit event in its own transaction; events name a token by its id, never by
its secret or hash. A token's secret exists only in the value returned at creation.

A user is deleted softly: its row stays (``deleted_at``), its tokens are revoked, and
its name is never given to another user, since the audit log, ``created_by`` and
approvals name users. A deleted user cannot be changed or enabled again. Nobody may
disable or delete themselves, nor the last active global admin (``_keep_someone_in_charge``).

A server authenticates each request with ``authenticate`` (or ``context_for_token``)
and serves it with ``ctx.for_actor(actor)``.
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timedelta
from typing import Any

from modelkeep.domain import access
from modelkeep.domain.access import Actor, Grant
from modelkeep.domain.events import EventKind
from modelkeep.domain.users import (
    TOKEN_BYTES,
    TOKEN_PREFIX,
    IssuedToken,
    Token,
    User,
    check_label,
    check_user_name,
    hash_token,
    subject,
)
from modelkeep.errors import (
    Conflict,
    GrantNotFound,
    InvalidInput,
    ModelNotFound,
    TokenNotFound,
    Unauthenticated,
    UserExists,
    UserNotFound,
)
from modelkeep.ports.unit_of_work import Transaction
from modelkeep.services.context import ServiceContext


def create_user(
    ctx: ServiceContext,
    name: str,
    role: str,
    model: str | None = None,
    expires_in: timedelta | None = None,
) -> tuple[User, IssuedToken]:
    """A new user with one grant and a first token (its secret is shown only now)."""
    ctx.authorize(access.MANAGE_USERS, None)
    check_user_name(name)
    grant = Grant(role, model)
    with ctx.store.transaction(write=True) as tx:
        at = ctx.clock()
        _name_is_free(tx, name, at)
        _require_model(tx, grant)
        tx.users.add(name, ctx.actor, at)
        tx.users.add_grant(name, grant)
        issued = _issue(tx, ctx, name, None, _expiry(at, expires_in), at)
        details = {**grant.to_dict(), **_token_details(issued.info)}
        _audit(tx, ctx, EventKind.USER_CREATE, name, details, at)
        user = _user(tx, name, at)
        tx.commit()
    return user, issued


def list_users(ctx: ServiceContext, include_deleted: bool = False) -> list[User]:
    """Every user by name; deleted ones only with ``include_deleted``."""
    ctx.authorize(access.MANAGE_USERS, None)
    with ctx.store.transaction() as tx:
        found = tx.users.all(ctx.clock())
    return found if include_deleted else [u for u in found if u.deleted_at is None]


def get_user(ctx: ServiceContext, name: str) -> User:
    """The user, a deleted one too (``state`` says which)."""
    ctx.authorize(access.MANAGE_USERS, None)
    with ctx.store.transaction() as tx:
        return _known_user(tx, name, ctx.clock())


def grant(
    ctx: ServiceContext,
    name: str,
    role: str,
    model: str | None = None,
    *,
    experiment: str | None = None,
    dataset: str | None = None,
) -> User:
    """Give ``name`` the role (on ``model``, ``experiment`` or ``dataset``, or globally);
    nothing changes if it has it. A model must exist; an experiment or a dataset need
    not yet (their first run or push needs the grant)."""
    ctx.authorize(access.MANAGE_USERS, None)
    wanted = Grant(role, model, experiment, dataset)
    with ctx.store.transaction(write=True) as tx:
        at = ctx.clock()
        held = _user(tx, name, at).grants
        _require_model(tx, wanted)
        access.check_runner_grants(held, wanted)
        if tx.users.add_grant(name, wanted):
            _audit(tx, ctx, EventKind.GRANT_ADD, name, wanted.to_dict(), at)
        user = _user(tx, name, at)
        tx.commit()
    return user


def revoke_grant(
    ctx: ServiceContext,
    name: str,
    role: str,
    model: str | None = None,
    *,
    experiment: str | None = None,
    dataset: str | None = None,
) -> User:
    """Take the role (on the scope named, or the global one) away from ``name``."""
    ctx.authorize(access.MANAGE_USERS, None)
    held = Grant(role, model, experiment, dataset)
    with ctx.store.transaction(write=True) as tx:
        at = ctx.clock()
        user = _user(tx, name, at)
        if held == Grant(access.ADMIN):
            _keep_another_admin(tx, user, "revoking their admin role", at)
        if not tx.users.remove_grant(name, held):
            raise GrantNotFound(f"{name} is not {held.describe()}")
        _audit(tx, ctx, EventKind.GRANT_REMOVE, name, held.to_dict(), at)
        user = _user(tx, name, at)
        tx.commit()
    return user


def set_disabled(ctx: ServiceContext, name: str, disabled: bool) -> User:
    """Disable a user (its tokens stop working at once, its grants and approvals stop
    counting) or enable it again. Neither yourself nor the last active global admin."""
    ctx.authorize(access.MANAGE_USERS, None)
    with ctx.store.transaction(write=True) as tx:
        at = ctx.clock()
        user = _user(tx, name, at)
        if (user.disabled_at is not None) != disabled:
            if disabled:
                _keep_someone_in_charge(ctx, tx, user, "disabling", at)
            tx.users.set_disabled(name, at if disabled else None)
            action = EventKind.USER_DISABLE if disabled else EventKind.USER_ENABLE
            _audit(tx, ctx, action, name, {}, at)
            user = _user(tx, name, at)
            tx.commit()
    return user


def delete_user(ctx: ServiceContext, name: str) -> User:
    """Delete a user softly: its row stays, marked deleted, its active tokens are revoked,
    its grants and approvals stop counting, and its name is never used again. Neither
    yourself nor the last active global admin; deleting a deleted user changes nothing."""
    ctx.authorize(access.MANAGE_USERS, None)
    with ctx.store.transaction(write=True) as tx:
        at = ctx.clock()
        user = _known_user(tx, name, at)
        if user.deleted_at is not None:
            return user
        _keep_someone_in_charge(ctx, tx, user, "deleting", at)
        revoked = [t.id for t in tx.users.tokens(name) if t.state(at) == "active"]
        for token_id in revoked:
            tx.users.revoke_token(token_id, at)
        tx.users.set_deleted(name, at)
        details = {"user_id": user.id, "tokens_revoked": revoked}
        _audit(tx, ctx, EventKind.USER_DELETE, name, details, at)
        user = _known_user(tx, name, at)
        tx.commit()
    return user


def create_token(
    ctx: ServiceContext,
    name: str,
    expires_in: timedelta | None = None,
    label: str | None = None,
) -> IssuedToken:
    """Another token for ``name`` (its secret is shown only now)."""
    ctx.authorize(access.MANAGE_USERS, None)
    check_label(label)
    with ctx.store.transaction(write=True) as tx:
        at = ctx.clock()
        _user(tx, name, at)
        issued = _issue(tx, ctx, name, label, _expiry(at, expires_in), at)
        details = {**_token_details(issued.info), "label": label}
        _audit(tx, ctx, EventKind.TOKEN_CREATE, name, details, at)
        tx.commit()
    return issued


def list_tokens(ctx: ServiceContext, name: str | None = None) -> list[Token]:
    """Every token (of ``name``, if given), oldest first, revoked and expired ones too."""
    ctx.authorize(access.MANAGE_USERS, None)
    with ctx.store.transaction() as tx:
        if name is not None:
            _known_user(tx, name, ctx.clock())
        return tx.users.tokens(name)


def revoke_token(ctx: ServiceContext, token: int | str) -> Token:
    """Revoke a token named by its id (as listed) or by its secret; already revoked is fine."""
    ctx.authorize(access.MANAGE_USERS, None)
    with ctx.store.transaction(write=True) as tx:
        found = _find_token(tx, token)
        if found.revoked_at is not None:
            return found
        at = ctx.clock()
        tx.users.revoke_token(found.id, at)
        _audit(tx, ctx, EventKind.TOKEN_REVOKE, found.user, {"token_id": found.id}, at)
        revoked = tx.users.get_token(found.id)
        tx.commit()
    assert revoked is not None
    return revoked


def authenticate(ctx: ServiceContext, token: str | None) -> Actor:
    """The actor a bearer token stands for, with its grants; ``Unauthenticated`` if the
    token is missing, unknown, revoked or expired, or its user is disabled or deleted."""
    if not token:
        raise Unauthenticated("no token was given")
    if not token.startswith(TOKEN_PREFIX):
        raise Unauthenticated(
            f"the token is not a modelkeep token (they start with {TOKEN_PREFIX})"
        )
    with ctx.store.transaction() as tx:
        now = ctx.clock()
        found = tx.users.token_by_hash(hash_token(token))
        if found is None:
            raise Unauthenticated("the token is unknown")
        user = tx.users.get(found.user, now)
    if user is None or not user.active:  # first: it says more than "revoked"
        raise Unauthenticated(f"user {found.user} is {user.state if user else 'deleted'}")
    state = found.state(now)
    if state != "active":
        raise Unauthenticated(f"token {found.id} of {found.user} is {state}")
    return Actor(user.name, user.grants)


def context_for_token(ctx: ServiceContext, token: str | None) -> ServiceContext:
    """A registry acting for the token's user (one per request on a server)."""
    return ctx.for_actor(authenticate(ctx, token))


# helpers ---------------------------------------------------------------------------------


def _known_user(tx: Transaction, name: str, now: datetime) -> User:
    """The user, even deleted."""
    check_user_name(name)
    user = tx.users.get(name, now)
    if user is None:
        raise UserNotFound(f"user {name!r} does not exist")
    return user


def _user(tx: Transaction, name: str, now: datetime) -> User:
    """The user, not deleted: the only ones whose grants, tokens and state may change."""
    user = _known_user(tx, name, now)
    if user.deleted_at is not None:
        raise UserNotFound(
            f"user {name!r} was deleted on {user.deleted_at:%Y-%m-%d %H:%M:%S} UTC",
            "a deleted user cannot be changed or enabled; create a user with another name",
        )
    return user


def _name_is_free(tx: Transaction, name: str, now: datetime) -> None:
    """Refuse a name in use, or once used: the audit log, ``created_by`` and approvals
    name users, so a second user of a deleted user's name would inherit its history (and
    its approvals would count again)."""
    found = tx.users.get(name, now)
    if found is None:
        return
    if found.deleted_at is None:
        raise UserExists(f"user {name!r} already exists")
    raise UserExists(
        f"user {name!r} was deleted on {found.deleted_at:%Y-%m-%d %H:%M:%S} UTC, and a "
        "user's name is never given to another user",
        f"choose another name, e.g. '{name}-2' (the audit log names users)",
    )


def _keep_someone_in_charge(
    ctx: ServiceContext, tx: Transaction, user: User, doing: str, at: datetime
) -> None:
    """Refuse disabling or deleting yourself (your own token would stop at once, mid
    task), and the last active global admin (nobody could manage users over the API)."""
    if user.name == ctx.actor:
        raise Conflict(
            f"{doing} {user.name} would lock you out: you are {user.name}",
            "ask another global admin to do it",
        )
    _keep_another_admin(tx, user, f"{doing} them", at)


def _keep_another_admin(tx: Transaction, user: User, doing: str, at: datetime) -> None:
    if not (user.active and _global_admin(user)):
        return
    if not any(u.active and _global_admin(u) for u in tx.users.all(at) if u.name != user.name):
        raise Conflict(
            f"{user.name} is the last active global admin: {doing} would leave nobody "
            "to manage users",
            "make another user a global admin first: 'modelkeep users grant NAME --role admin'",
        )


def _global_admin(user: User) -> bool:
    return Grant(access.ADMIN) in user.grants


def _require_model(tx: Transaction, wanted: Grant) -> None:
    if wanted.model is not None and tx.models.required_fields(wanted.model) is None:
        raise ModelNotFound(
            f"model {wanted.model!r} does not exist",
            "create the model first, or grant the role globally",
        )


def _expiry(at: datetime, expires_in: timedelta | None) -> datetime | None:
    if expires_in is None:
        return None
    if expires_in <= timedelta(0):
        raise InvalidInput("a token must expire in the future", "give a positive duration")
    try:
        return at + expires_in
    except OverflowError:
        raise InvalidInput("the token would expire too far in the future") from None


def _issue(
    tx: Transaction,
    ctx: ServiceContext,
    name: str,
    label: str | None,
    expires_at: datetime | None,
    at: datetime,
) -> IssuedToken:
    secret = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
    info = tx.users.add_token(name, hash_token(secret), label, ctx.actor, at, expires_at)
    return IssuedToken(secret, info)


def _token_details(token: Token) -> dict[str, Any]:
    expires = token.expires_at.isoformat() if token.expires_at else None
    return {"token_id": token.id, "expires_at": expires}


def _find_token(tx: Transaction, token: int | str) -> Token:
    if isinstance(token, str) and token.startswith(TOKEN_PREFIX):
        found = tx.users.token_by_hash(hash_token(token))
        shown = "the given token"
    else:
        token_id = _token_id(token)
        found = tx.users.get_token(token_id)
        shown = f"token {token_id}"
    if found is None:
        raise TokenNotFound(f"{shown} does not exist")
    return found


def _token_id(token: int | str) -> int:
    if isinstance(token, int):
        return token
    if not (token.isascii() and token.isdigit()) or len(token) > 18:
        raise InvalidInput(
            f"{token!r} names no token",
            "give the id 'modelkeep tokens list' shows, or the token itself (mk_…)",
        )
    return int(token)


def _audit(
    tx: Transaction,
    ctx: ServiceContext,
    action: EventKind,
    user: str,
    details: dict[str, Any],
    at: datetime,
) -> None:
    ctx.record_event(tx, action, subject(user), details, at)


class TokenCache:
    """Remembers who a token stands for, for ``ttl`` seconds: a server checks the same
    token on every request, and the lookup costs more than most requests.

    Every change to users, grants and tokens is audited, so the cache is dropped whenever
    the audit head moves: a revoked token, a disabled or deleted user or a changed grant
    takes effect on the next request when this process made the change, and within
    ``HEAD_RECHECK_SECONDS`` when another one did (a CLI on the store, another replica).
    The head is read at most that often, not on every request: that read cost more than
    the rest of authenticating. Only a token's expiry may be noticed up to ``ttl`` late."""

    MAX_ENTRIES = 10_000
    HEAD_RECHECK_SECONDS = 0.25

    def __init__(self, ctx: ServiceContext, ttl: float = 2.0) -> None:
        self._base = ctx
        self._ttl = ttl
        self._seen: dict[str, tuple[float, tuple[int, str] | None, Actor]] = {}
        self._head: tuple[float, int, tuple[int, str] | None] | None = None
        """When the head was read, this process's change count then, and the head."""

    def context_for(self, token: str | None) -> ServiceContext:
        if self._ttl <= 0:
            return self._base.for_actor(authenticate(self._base, token))
        key = hash_token(token) if token else ""
        now = time.monotonic()
        head = self._audit_head()  # read first: what authenticate reads is at least as new
        hit = self._seen.get(key)
        if hit is not None and hit[0] > now and hit[1] == head:
            return self._base.for_actor(hit[2])
        actor = authenticate(self._base, token)
        if len(self._seen) >= self.MAX_ENTRIES:
            self._seen.clear()
        self._seen[key] = (now + self._ttl, head, actor)
        return self._base.for_actor(actor)

    def remembered(self, token: str | None) -> ServiceContext | None:
        """``context_for(token)`` if it can be answered without reading the database (the
        token is remembered and the audit head was read recently), else None."""
        memo, hit = self._head, self._seen.get(hash_token(token) if token else "")
        now = time.monotonic()
        if self._ttl <= 0 or memo is None or hit is None or hit[0] <= now:
            return None
        fresh = now - memo[0] < self.HEAD_RECHECK_SECONDS and memo[1] == self._base.changes.count
        if not fresh or hit[1] != memo[2]:
            return None
        return self._base.for_actor(hit[2])

    def _audit_head(self) -> tuple[int, str] | None:
        now, changes = time.monotonic(), self._base.changes.count
        memo = self._head
        if memo is not None and now - memo[0] < self.HEAD_RECHECK_SECONDS and memo[1] == changes:
            return memo[2]
        with self._base.store.transaction() as tx:
            head = tx.audit.head()
        self._head = (now, changes, head)
        return head
