"""The SDK's user and token verbs, whichever way the client reaches the registry.

In process (an embedded store, or a database an operator reaches) they call
``services.admin`` as the operator. Over HTTP ``HttpBackend`` implements ``UserAdmin``
itself: the server's ``/api/v1/users`` and ``/api/v1/tokens``, as the token's user
(a global admin).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol, runtime_checkable

from modelkeep.domain.users import IssuedToken, Token, User
from modelkeep.services import admin
from modelkeep.services.context import ServiceContext


@runtime_checkable
class UserAdmin(Protocol):
    def create_user(
        self, name: str, role: str, model: str | None, expires_in: timedelta | None
    ) -> tuple[User, IssuedToken]: ...
    def list_users(self) -> list[User]: ...
    def grant(self, name: str, role: str, model: str | None) -> User: ...
    def revoke_grant(self, name: str, role: str, model: str | None) -> User: ...
    def set_user_disabled(self, name: str, disabled: bool) -> User: ...
    def create_token(
        self, name: str, expires_in: timedelta | None, label: str | None
    ) -> IssuedToken: ...
    def list_tokens(self, name: str | None) -> list[Token]: ...
    def revoke_token(self, token: int | str) -> Token: ...


class LocalUserAdmin:
    """``services.admin`` on an open registry."""

    def __init__(self, registry: ServiceContext) -> None:
        self.registry = registry

    def create_user(
        self, name: str, role: str, model: str | None, expires_in: timedelta | None
    ) -> tuple[User, IssuedToken]:
        return admin.create_user(self.registry, name, role, model, expires_in)

    def list_users(self) -> list[User]:
        return admin.list_users(self.registry)

    def grant(self, name: str, role: str, model: str | None) -> User:
        return admin.grant(self.registry, name, role, model)

    def revoke_grant(self, name: str, role: str, model: str | None) -> User:
        return admin.revoke_grant(self.registry, name, role, model)

    def set_user_disabled(self, name: str, disabled: bool) -> User:
        return admin.set_disabled(self.registry, name, disabled)

    def create_token(
        self, name: str, expires_in: timedelta | None, label: str | None
    ) -> IssuedToken:
        return admin.create_token(self.registry, name, expires_in, label)

    def list_tokens(self, name: str | None) -> list[Token]:
        return admin.list_tokens(self.registry, name)

    def revoke_token(self, token: int | str) -> Token:
        return admin.revoke_token(self.registry, token)


def user_admin(backend: object) -> UserAdmin:
    """The user verbs of ``backend``: its registry's, in process; its own, over HTTP."""
    registry = getattr(backend, "registry", None)
    if isinstance(registry, ServiceContext):
        return LocalUserAdmin(registry)
    if isinstance(backend, UserAdmin):
        return backend
    raise TypeError(f"{type(backend).__name__} has no registry and implements no UserAdmin")
