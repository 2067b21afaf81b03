"""Users, their grants and their tokens (stored only as hashes)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from modelkeep.domain.access import Grant
from modelkeep.domain.users import Token, User


class Users(Protocol):
    def get(self, name: str, now: datetime) -> User | None:
        """The user with its grants and its number of tokens active at ``now``; a deleted
        user too (``deleted_at`` set)."""
        ...

    def all(self, now: datetime) -> list[User]:
        """Every user by name, deleted ones too."""
        ...

    def add(self, name: str, actor: str, at: datetime) -> None: ...
    def set_disabled(self, name: str, at: datetime | None) -> None:
        """Disable the user as of ``at``; None enables it again."""
        ...

    def set_deleted(self, name: str, at: datetime) -> None:
        """Mark the user deleted as of ``at``; its row (id, name, grants) stays."""
        ...

    def add_grant(self, user: str, grant: Grant) -> bool:
        """Give the grant; False if the user had it already."""
        ...

    def remove_grant(self, user: str, grant: Grant) -> bool:
        """Take the grant away; False if the user did not have it."""
        ...

    def add_token(
        self,
        user: str,
        token_hash: str,
        label: str | None,
        actor: str,
        at: datetime,
        expires_at: datetime | None,
    ) -> Token: ...
    def get_token(self, token_id: int) -> Token | None: ...
    def token_by_hash(self, token_hash: str) -> Token | None: ...
    def tokens(self, user: str | None = None) -> list[Token]: ...
    def revoke_token(self, token_id: int, at: datetime) -> None: ...
