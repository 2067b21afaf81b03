"""Users and their API tokens: records, name rules, and how a token is stored.

A token is ``mk_`` followed by 43 URL-safe characters of randomness (32 bytes); it holds
nothing else. The store keeps only ``sha256(token)`` in hex, so whoever reads the
database cannot use a token, and a token is found again by hashing what a client sends.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from modelkeep.domain.access import Grant
from modelkeep.errors import InvalidInput, InvalidName

USER_NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,127}")
RESERVED_PREFIX = "local:"
TOKEN_PREFIX = "mk_"
TOKEN_BYTES = 32

TokenState = Literal["active", "expired", "revoked"]
UserState = Literal["active", "disabled", "deleted"]


def check_user_name(name: str) -> str:
    if name.startswith(RESERVED_PREFIX):
        raise InvalidName(
            f"{name!r} starts with {RESERVED_PREFIX!r}, which is reserved",
            "'local:' names the operator of an embedded store; choose another name",
        )
    if not USER_NAME.fullmatch(name):
        raise InvalidName(
            f"{name!r} is not a valid user name",
            "use 1-128 lowercase letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit",
        )
    return name


def hash_token(token: str) -> str:
    """What the store keeps of a token: its sha256, in hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def subject(user: str) -> str:
    """The audit subject of a user (``user:alice``): never a model name, which has no ':'."""
    return f"user:{user}"


@dataclass(frozen=True)
class User:
    """A user of a server. A deleted user keeps its row (``deleted_at`` set): its name and
    ``id`` are never given to anyone else, so the audit log and approvals, which name
    users, always mean one person."""

    name: str
    created_at: datetime
    created_by: str
    disabled_at: datetime | None = None
    grants: tuple[Grant, ...] = ()
    active_tokens: int = 0
    deleted_at: datetime | None = None
    id: int | None = None

    @property
    def state(self) -> UserState:
        if self.deleted_at is not None:
            return "deleted"
        return "disabled" if self.disabled_at is not None else "active"

    @property
    def active(self) -> bool:
        """Whether its tokens work, and its grants and approvals count."""
        return self.state == "active"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "id": self.id,
            "state": self.state,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "disabled_at": self.disabled_at.isoformat() if self.disabled_at else None,
            "deleted_at": self.deleted_at.isoformat() if self.deleted_at else None,
            "grants": [g.to_dict() for g in self.grants],
            "tokens": self.active_tokens,
        }


@dataclass(frozen=True)
class Token:
    """What is known of a token besides its secret. ``id`` names it in listings."""

    id: int
    user: str
    label: str | None
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None

    def state(self, at: datetime) -> TokenState:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= at:
            return "expired"
        return "active"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "user": self.user,
            "label": self.label,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True)
class IssuedToken:
    """A new token: the secret, shown once and never stored, and what the store keeps."""

    secret: str = field(repr=False)
    info: Token

    def to_dict(self) -> dict[str, Any]:
        return {**self.info.to_dict(), "token": self.secret}


MAX_LABEL = 256


def check_label(label: str | None) -> str | None:
    if label is not None and not (0 < len(label) <= MAX_LABEL and label.isprintable()):
        raise InvalidInput(
            f"the token label {label!r} is empty, too long or unprintable",
            f"give 1-{MAX_LABEL} printable characters",
        )
    return label
