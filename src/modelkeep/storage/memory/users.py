"""Users, grants and tokens in memory, with the SQL adapter's semantics."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from modelkeep.domain.access import ROLES, Grant
from modelkeep.domain.users import Token, User
from modelkeep.errors import Conflict
from modelkeep.storage.memory.state import TokenRow, UserRow, View, maybe_utc, utc

_ROLE_ORDER = list(ROLES)


class UserRows:
    def __init__(self, view: View) -> None:
        self._view = view

    def _require(self, name: str) -> UserRow:
        row = self._view.read.users.get(name)
        if row is None:  # services check first; this guards the invariant
            raise Conflict(f"user {name!r} vanished during the transaction")
        return row

    def get(self, name: str, now: datetime) -> User | None:
        row = self._view.read.users.get(name)
        return None if row is None else self._user(row, now)

    def all(self, now: datetime) -> list[User]:
        users = self._view.read.users
        return [self._user(users[name], now) for name in sorted(users)]

    def _user(self, row: UserRow, now: datetime) -> User:
        tables = self._view.read
        grants = sorted(
            tables.grants.get(row.name, ()),
            key=lambda g: (not g.is_global, g.scope or "", _ROLE_ORDER.index(g.role)),
        )
        active = sum(
            1
            for token in tables.tokens.values()
            if token.user == row.name
            and token.revoked_at is None
            and (token.expires_at is None or token.expires_at > now)
        )
        return User(
            row.name,
            row.created_at,
            row.created_by,
            row.disabled_at,
            tuple(grants),
            active,
            row.deleted_at,
            row.id,
        )

    def add(self, name: str, actor: str, at: datetime) -> None:
        if name in self._view.read.users:  # a unique column in SQL
            raise Conflict(f"user {name!r} exists already")
        tables = self._view.change()
        tables.users[name] = UserRow(tables.next_id("users"), name, utc(at), actor)

    def set_disabled(self, name: str, at: datetime | None) -> None:
        row = self._require(name)
        self._view.change().users[name] = replace(row, disabled_at=maybe_utc(at))

    def set_deleted(self, name: str, at: datetime) -> None:
        row = self._require(name)
        self._view.change().users[name] = replace(row, deleted_at=utc(at))

    def add_grant(self, user: str, grant: Grant) -> bool:
        held = self._view.read.grants.get(self._require(user).name, ())
        if grant in held:
            return False
        self._view.change().grants[user] = (*held, grant)
        return True

    def remove_grant(self, user: str, grant: Grant) -> bool:
        held = self._view.read.grants.get(self._require(user).name, ())
        if grant not in held:
            return False
        self._view.change().grants[user] = tuple(g for g in held if g != grant)
        return True

    def add_token(
        self,
        user: str,
        token_hash: str,
        label: str | None,
        actor: str,
        at: datetime,
        expires_at: datetime | None,
    ) -> Token:
        self._require(user)
        if any(t.token_hash == token_hash for t in self._view.read.tokens.values()):
            raise Conflict("a token with this hash exists already")  # a unique column in SQL
        tables = self._view.change()
        token_id = tables.next_id("tokens")
        tables.tokens[token_id] = TokenRow(
            token_id, user, token_hash, label, utc(at), actor, maybe_utc(expires_at)
        )
        return Token(token_id, user, label, at, actor, expires_at)

    def get_token(self, token_id: int) -> Token | None:
        row = self._view.read.tokens.get(token_id)
        return None if row is None else _token(row)

    def token_by_hash(self, token_hash: str) -> Token | None:
        for row in self._view.read.tokens.values():
            if row.token_hash == token_hash:
                return _token(row)
        return None

    def tokens(self, user: str | None = None) -> list[Token]:
        rows = self._view.read.tokens
        return [_token(rows[i]) for i in sorted(rows) if user is None or rows[i].user == user]

    def revoke_token(self, token_id: int, at: datetime) -> None:
        row = self._view.read.tokens.get(token_id)
        if row is not None:  # else, like an UPDATE that matches no row, nothing happens
            self._view.change().tokens[token_id] = replace(row, revoked_at=utc(at))


def _token(row: TokenRow) -> Token:
    return Token(
        row.id, row.user, row.label, row.created_at, row.created_by, row.expires_at, row.revoked_at
    )
