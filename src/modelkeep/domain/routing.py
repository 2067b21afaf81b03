"""Routing: which version of a desired state answers a request, and whether a copy of it
goes to the shadow. Pure: the gateway passes in the request's sticky value and uniform
draws from a random source it owns (tests inject their own), so every decision can be
replayed.

- **Weighted canary** (no sticky key): the canary answers when ``draw * 100 < weight``,
  so a uniform ``draw`` in [0, 1) sends it ``weight`` percent of requests.
- **A/B** (a sticky key): the request's key value is hashed with SHA-256 together with
  the model, the environment and a fixed salt into a bucket 0..99; buckets below the
  canary's weight go to the canary. The same key reaches the same version in every
  process and after every restart (Python's ``hash()`` is salted per process, so it is
  not used), and raising the weight only moves keys from stable to canary, never back.
  The revision is left out of the hash on purpose: a new revision with the same weight
  keeps every assignment. A request without the key is answered by the stable version
  and its assignment is ``unassigned``.
- **Shadow**: a copy of the request goes to the shadow when ``shadow_draw * 100 <
  weight``; its answer is compared with the one returned and never returned itself.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from modelkeep.domain.deployments import Backend, DesiredState

STICKY_SALT = "modelkeep-sticky-1"
"""Part of every sticky hash: changing it would reassign every key, so it never changes."""
Assignment = Literal["stable", "canary", "unassigned"]
UNASSIGNED: Assignment = "unassigned"
"""The assignment of an A/B request that did not carry the sticky key."""


@dataclass(frozen=True)
class Route:
    """Where one request goes."""

    serve: Backend
    """The version whose answer is returned."""
    mirror: Backend | None
    """The shadow that also gets a copy of the request (its answer is never returned)."""
    assignment: Assignment | None
    """For an A/B state: the request's arm (``stable``, ``canary`` or ``unassigned``);
    None when the state has no sticky key."""


def sticky_bucket(model: str, env: str, key: str) -> int:
    """The A/B bucket (0..99) of a sticky key value: the same in every process."""
    material = "\0".join((STICKY_SALT, model, env, key)).encode("utf-8", "surrogatepass")
    return int.from_bytes(hashlib.sha256(material).digest()[:8], "big") % 100


def sticky_source(sticky: str) -> tuple[str, str]:
    """``("header", "x-user-id")`` for ``header:x-user-id``."""
    where, _, name = sticky.partition(":")
    return where, name


def route(state: DesiredState, *, draw: float, shadow_draw: float, key: str | None = None) -> Route:
    """The route of one request. ``draw`` and ``shadow_draw`` are uniform in [0, 1);
    ``key`` is the request's sticky value (ignored without a sticky key)."""
    stable = state.backend("stable")
    if stable is None:
        raise ValueError(f"{state.model} in {state.env} has no stable version to route to")
    canary = state.backend("canary")
    shadow = state.backend("shadow")
    assignment: Assignment | None = None
    serve = stable
    if canary is not None and state.sticky is not None:
        assignment = "stable"
        if key is None:
            assignment = UNASSIGNED
        elif sticky_bucket(state.model, state.env, key) < canary.weight:
            serve, assignment = canary, "canary"
    elif canary is not None and draw * 100 < canary.weight:
        serve = canary
    mirror = shadow if shadow is not None and shadow_draw * 100 < shadow.weight else None
    return Route(serve, mirror, assignment)
