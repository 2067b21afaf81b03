"""The SDK's user and token verbs, whichever way the client reaches the registry.

Both transports implement ``UserAdmin`` (part of ``Backend``): in process
(client/local.py) they call ``services.admin`` as the operator; over HTTP
(client/http.py) the server's ``/api/v1/users`` and ``/api/v1/tokens``, as the token's
user (a global admin).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol, runtime_checkable

from modelkeep.domain.users import IssuedToken, Token, User


@runtime_checkable
class UserAdmin(Protocol):
    def create_user(
        self, name: str, role: str, model: str | None, expires_in: timedelta | None
    ) -> tuple[User, IssuedToken]: ...
    def list_users(self, include_deleted: bool = False) -> list[User]: ...
    def grant(self, name: str, role: str, model: str | None, **scope: str | None) -> User:
        """``scope``: ``experiment`` or ``dataset``, when the grant is on one."""
        ...

    def revoke_grant(
        self, name: str, role: str, model: str | None, **scope: str | None
    ) -> User: ...
    def set_user_disabled(self, name: str, disabled: bool) -> User: ...
    def delete_user(self, name: str) -> User: ...
    def create_token(
        self, name: str, expires_in: timedelta | None, label: str | None
    ) -> IssuedToken: ...
    def list_tokens(self, name: str | None) -> list[Token]: ...
    def revoke_token(self, token: int | str) -> Token: ...
