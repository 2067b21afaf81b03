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
from datetime import datetime
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


# --- changes of a desired state (pure rules the registry applies) -------------------------

Action = Literal["deploy", "promote", "rollback"]
ACTIONS: tuple[Action, ...] = ("deploy", "promote", "rollback")
Mode = Literal["stable", "canary", "ab", "shadow"]


@dataclass(frozen=True)
class DeploymentChange:
    """One change of a desired state, as the history keeps it."""

    model: str
    env: str
    revision: int
    """The revision the change made (``state.revision``)."""
    action: Action
    previous: DesiredState | None
    """The state it replaced (None: the model was not deployed to ``env``)."""
    state: DesiredState
    actor: str
    at: datetime
    reason: str | None
    attestation: str | None = None
    """The blob digest of the change's signed DSSE envelope (docs/serving.md)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "env": self.env,
            "revision": self.revision,
            "action": self.action,
            "previous": self.previous.to_dict() if self.previous else None,
            "state": self.state.to_dict(),
            "actor": self.actor,
            "at": self.at.isoformat(),
            "reason": self.reason,
            "attestation": self.attestation,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeploymentChange:
        previous = data.get("previous")
        return cls(
            str(data["model"]),
            str(data["env"]),
            int(data["revision"]),
            data["action"],
            DesiredState.from_dict(previous) if previous else None,
            DesiredState.from_dict(data["state"]),
            str(data["actor"]),
            datetime.fromisoformat(data["at"]),
            data.get("reason"),
            data.get("attestation"),
        )


def next_state(
    current: DesiredState | None,
    model: str,
    env: str,
    target: Backend,
    mode: Mode,
    sticky: str | None = None,
) -> DesiredState:
    """The state a deploy of ``target`` (role and weight not yet set) makes.

    ``stable``: the version alone, at 100 (any candidate removed). ``canary``/``ab``: the
    version answers ``weight`` percent beside the current stable (A/B: by ``sticky``
    key), replacing any canary and keeping a shadow (not with A/B). ``shadow``: the
    version receives a copy of ``weight`` percent, replacing any shadow."""
    check_weight(target.weight)
    if mode != "ab" and sticky is not None:
        raise InvalidInput(
            "a sticky key is for A/B only", "use --ab PCT --sticky KEY, or drop --sticky"
        )
    revision = (current.revision if current else 0) + 1
    if mode == "stable":
        only = Backend(target.ref, target.digest, "stable", 100)
        return DesiredState(model, env, revision, (only,))
    if mode == "ab" and sticky is None:
        raise InvalidInput(
            "A/B needs a sticky key", "add --sticky header:NAME|cookie:NAME|query:NAME"
        )
    stable = current.backend("stable") if current else None
    if stable is None:
        raise InvalidInput(
            f"{model} has no stable version in {env} to set a candidate beside",
            f"deploy one first: modelkeep deploy {target.ref} --env {env}",
        )
    if stable.digest == target.digest:
        raise InvalidInput(
            f"{target.ref} is already the stable version in {env}", "deploy another version"
        )
    assert current is not None
    canary, shadow = current.backend("canary"), current.backend("shadow")
    keep_sticky = current.sticky
    if mode == "shadow":
        if current.sticky is not None:
            raise InvalidInput(
                f"{model} runs an A/B test in {env}; a shadow cannot run beside it",
                f"end the A/B first: modelkeep deploy promote|rollback {model} --env {env}",
            )
        shadow = Backend(target.ref, target.digest, "shadow", target.weight)
    else:
        if mode == "ab" and shadow is not None:
            raise InvalidInput(
                f"{model} has a shadow in {env}; an A/B test cannot run beside it",
                f"end the shadow first: modelkeep deploy promote|rollback {model} --env {env}",
            )
        canary = Backend(target.ref, target.digest, "canary", target.weight)
        keep_sticky = sticky
    stable = Backend(stable.ref, stable.digest, "stable", 100 - (canary.weight if canary else 0))
    backends = tuple(b for b in (stable, canary, shadow) if b is not None)
    return DesiredState(model, env, revision, backends, keep_sticky)


def promoted(current: DesiredState | None, model: str, env: str) -> DesiredState:
    """The candidate (the canary, else the shadow) becomes the only, stable, version."""
    candidate = None
    if current is not None:
        candidate = current.backend("canary") or current.backend("shadow")
    if current is None or candidate is None:
        raise InvalidInput(
            f"{model} has no candidate in {env} to promote",
            "deploy one with --canary, --ab or --shadow first",
        )
    only = Backend(candidate.ref, candidate.digest, "stable", 100)
    return DesiredState(model, env, current.revision + 1, (only,))


def rollback_target(history: list[DeploymentChange]) -> DesiredState | None:
    """The state a rollback returns to: each rollback undoes the newest change it has not
    undone yet, so rolling back twice goes two changes back. None: nothing to go back to."""
    undone: list[DeploymentChange] = []
    for change in history:
        if change.action == "rollback":
            if undone:
                undone.pop()
        else:
            undone.append(change)
    return undone[-1].previous if undone else None


def with_revision(state: DesiredState, revision: int) -> DesiredState:
    return DesiredState(state.model, state.env, revision, state.backends, state.sticky)


@dataclass(frozen=True)
class EnvironmentRule:
    """What the policy asks of a version deployed to one environment."""

    requires_stage: str | None = None
    """The stage a version must be in to become stable there (None: any version)."""
    canary_from: str | None = None
    """The stage a candidate (canary, A/B, shadow) must be in; None: ``requires_stage``."""

    def stage_for(self, role: Role) -> str | None:
        if role == "stable":
            return self.requires_stage
        return self.canary_from or self.requires_stage

    def to_dict(self) -> dict[str, Any]:
        return {"requires_stage": self.requires_stage, "canary_from": self.canary_from}
