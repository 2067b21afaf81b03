"""Users, grants and tokens: rows <-> domain records in one transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, update

from modelkeep.domain.access import ROLES, Grant
from modelkeep.domain.users import Token, User
from modelkeep.errors import Conflict
from modelkeep.storage.sql.tables import grants, tokens, users

_USER_ID = select(users.c.id).where(users.c.name == bindparam("name"))
_TOKENS = select(
    tokens.c.id,
    users.c.name.label("user_name"),
    tokens.c.label,
    tokens.c.created_at,
    tokens.c.created_by,
    tokens.c.expires_at,
    tokens.c.revoked_at,
).join(users, users.c.id == tokens.c.user_id)
_TOKEN_BY_HASH = _TOKENS.where(tokens.c.token_hash == bindparam("token_hash"))


class UserRows:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def _user_id(self, name: str) -> int | None:
        found = self._conn.execute(_USER_ID, {"name": name}).scalar()
        return None if found is None else int(found)

    def _require_user_id(self, name: str) -> int:
        user_id = self._user_id(name)
        if user_id is None:  # services check first; this guards the invariant
            raise Conflict(f"user {name!r} vanished during the transaction")
        return user_id

    def get(self, name: str, now: datetime) -> User | None:
        found = self._users(users.c.name == name, now)
        return found[0] if found else None

    def all(self, now: datetime) -> list[User]:
        return self._users(None, now)

    def _users(self, where: Any, now: datetime) -> list[User]:
        query = select(users).order_by(users.c.name)
        if where is not None:
            query = query.where(where)
        rows = list(self._conn.execute(query))
        ids = [row.id for row in rows]
        held = self._grants_of(ids)
        active = self._active_tokens_of(ids, now)
        return [
            User(
                row.name,
                row.created_at,
                row.created_by,
                row.disabled_at,
                held.get(row.id, ()),
                active.get(row.id, 0),
                row.deleted_at,
                int(row.id),
            )
            for row in rows
        ]

    def _grants_of(self, user_ids: list[int]) -> dict[int, tuple[Grant, ...]]:
        result: dict[int, list[Grant]] = {}
        if user_ids:
            query = select(grants.c.user_id, grants.c.role, grants.c.model).where(
                grants.c.user_id.in_(user_ids)
            )
            for row in self._conn.execute(query):
                # the column holds the grant's scope: a model, experiment:E or dataset:D
                result.setdefault(row.user_id, []).append(Grant.on(row.role, row.model))
        order = list(ROLES)
        return {
            key: tuple(
                sorted(value, key=lambda g: (not g.is_global, g.scope or "", order.index(g.role)))
            )
            for key, value in result.items()
        }

    def _active_tokens_of(self, user_ids: list[int], now: datetime) -> dict[int, int]:
        if not user_ids:
            return {}
        query = (
            select(tokens.c.user_id, func.count())
            .where(
                tokens.c.user_id.in_(user_ids),
                tokens.c.revoked_at.is_(None),
                or_(tokens.c.expires_at.is_(None), tokens.c.expires_at > now),
            )
            .group_by(tokens.c.user_id)
        )
        return {int(user_id): int(count) for user_id, count in self._conn.execute(query)}

    def add(self, name: str, actor: str, at: datetime) -> None:
        self._conn.execute(insert(users).values(name=name, created_at=at, created_by=actor))

    def set_disabled(self, name: str, at: datetime | None) -> None:
        self._conn.execute(
            update(users).where(users.c.id == self._require_user_id(name)).values(disabled_at=at)
        )

    def set_deleted(self, name: str, at: datetime) -> None:
        self._conn.execute(
            update(users).where(users.c.id == self._require_user_id(name)).values(deleted_at=at)
        )

    def _grant_row(self, user_id: int, grant: Grant) -> Any:
        model = grants.c.model.is_(None) if grant.is_global else grants.c.model == grant.scope
        return and_(grants.c.user_id == user_id, grants.c.role == grant.role, model)

    def add_grant(self, user: str, grant: Grant) -> bool:
        user_id = self._require_user_id(user)
        where = self._grant_row(user_id, grant)
        if self._conn.execute(select(grants.c.id).where(where)).first() is not None:
            return False
        self._conn.execute(
            insert(grants).values(user_id=user_id, role=grant.role, model=grant.scope)
        )
        return True

    def remove_grant(self, user: str, grant: Grant) -> bool:
        where = self._grant_row(self._require_user_id(user), grant)
        return bool(self._conn.execute(grants.delete().where(where)).rowcount)

    def add_token(
        self,
        user: str,
        token_hash: str,
        label: str | None,
        actor: str,
        at: datetime,
        expires_at: datetime | None,
    ) -> Token:
        token_id = self._conn.execute(
            insert(tokens)
            .values(
                user_id=self._require_user_id(user),
                token_hash=token_hash,
                label=label,
                created_at=at,
                created_by=actor,
                expires_at=expires_at,
                revoked_at=None,
            )
            .returning(tokens.c.id)
        ).scalar_one()
        return Token(int(token_id), user, label, at, actor, expires_at)

    def get_token(self, token_id: int) -> Token | None:
        row = self._conn.execute(_TOKENS.where(tokens.c.id == token_id)).first()
        return _token(row) if row else None

    def token_by_hash(self, token_hash: str) -> Token | None:
        row = self._conn.execute(_TOKEN_BY_HASH, {"token_hash": token_hash}).first()
        return _token(row) if row else None

    def tokens(self, user: str | None = None) -> list[Token]:
        query = _TOKENS.order_by(tokens.c.id)
        if user is not None:
            query = query.where(users.c.name == user)
        return [_token(row) for row in self._conn.execute(query)]

    def revoke_token(self, token_id: int, at: datetime) -> None:
        self._conn.execute(update(tokens).where(tokens.c.id == token_id).values(revoked_at=at))


def _token(row: Any) -> Token:
    return Token(
        int(row.id),
        row.user_name,
        row.label,
        row.created_at,
        row.created_by,
        row.expires_at,
        row.revoked_at,
    )
