"""Deployments: a model in an environment, and the desired state a gateway serves.

This module is the contract between the registry (which records desired states: who
deployed which versions where, with compare-and-set and an audit trail) and the gateway
(which loads those versions by digest and routes requests to them). It is pure: no I/O.

A **desired state** names, for one model in one environment, the versions to serve by
digest, each in a role:

- ``stable``: what answers requests; its weight is what is left after the canary's;
- ``canary``: answers ``weight`` percent of requests (weighted canary), or, when the
  state has a ``sticky`` key, the requests whose key hashes into its ``weight`` percent
  (A/B: the same key always reaches the same version);
- ``shadow``: receives a copy of ``weight`` percent of requests off the request path; its
  answers are compared with the stable ones and never returned.

``revision`` grows by one with every change of the state; a change names the revision it
read (compare-and-set), so two releasers cannot overwrite each other unseen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from modelkeep.errors import InvalidInput

Role = Literal["stable", "canary", "shadow"]
ROLES: tuple[Role, ...] = ("stable", "canary", "shadow")
ENV_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
STICKY = re.compile(r"(header|cookie|query):[A-Za-z0-9._-]{1,128}")
"""Where A/B reads its sticky key: ``header:x-user-id``, ``cookie:uid``, ``query:user``."""


def check_env(env: str) -> str:
    if not ENV_NAME.fullmatch(env):
        raise InvalidInput(
            f"{env!r} is not an environment name",
            "use lowercase letters, digits, '.', '_' or '-' (e.g. dev, staging, prod)",
        )
    return env


def check_sticky(sticky: str) -> str:
    if not STICKY.fullmatch(sticky):
        raise InvalidInput(
            f"{sticky!r} is not a sticky key",
            "name where the key is read: header:NAME, cookie:NAME or query:NAME",
        )
    return sticky


def check_weight(weight: int) -> int:
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
        raise InvalidInput(f"{weight!r} is not a weight", "give a whole percent from 0 to 100")
    return weight


@dataclass(frozen=True)
class Backend:
    """One version of a desired state, in its role."""

    ref: str
    """``fraud@4``: the model and version number."""
    digest: str
    """The version digest (``sha256:``): what the gateway loads and verifies."""
    role: Role
    weight: int
    """Percent of requests: the canary's share, the shadow's mirrored share; the stable
    backend's weight is 100 minus the canary's."""

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise InvalidInput(f"{self.role!r} is not a role", f"use one of {', '.join(ROLES)}")
        check_weight(self.weight)

    def to_dict(self) -> dict[str, Any]:
        return {"ref": self.ref, "digest": self.digest, "role": self.role, "weight": self.weight}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Backend:
        return cls(str(data["ref"]), str(data["digest"]), data["role"], int(data["weight"]))


@dataclass(frozen=True)
class DesiredState:
    """What one model in one environment should serve."""

    model: str
    env: str
    revision: int
    backends: tuple[Backend, ...] = field(default_factory=tuple)
    sticky: str | None = None
    """``header:NAME`` / ``cookie:NAME`` / ``query:NAME`` for A/B; None for a plain canary."""

    def __post_init__(self) -> None:
        check_env(self.env)
        if self.sticky is not None:
            check_sticky(self.sticky)
        roles = [b.role for b in self.backends]
        if self.backends and roles.count("stable") != 1:
            raise InvalidInput("a deployment serves exactly one stable version", "deploy one")
        for role in ("canary", "shadow"):
            if roles.count(role) > 1:
                raise InvalidInput(f"a deployment has at most one {role}", "deploy one")
        if self.sticky is not None and "canary" not in roles:
            raise InvalidInput("a sticky key needs a candidate (--ab)", "drop --sticky")

    def backend(self, role: Role) -> Backend | None:
        return next((b for b in self.backends if b.role == role), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "env": self.env,
            "revision": self.revision,
            "backends": [b.to_dict() for b in self.backends],
            "sticky": self.sticky,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DesiredState:
        return cls(
            str(data["model"]),
            str(data["env"]),
            int(data["revision"]),
            tuple(Backend.from_dict(b) for b in data.get("backends", ())),
            data.get("sticky"),
        )
