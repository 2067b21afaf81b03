"""Aliases and stages: named pointers whose every move is an event.

``staging`` and ``production`` are stages: protected aliases that only ``promote`` and
``rollback`` move. A stage's history is a stack: promote pushes a target, rollback pops
back to the one before it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from modelkeep.domain.names import STAGES
from modelkeep.errors import NothingToRollBack

AliasAction = Literal["set", "rm", "promote", "rollback"]


@dataclass(frozen=True)
class AliasEvent:
    model: str
    alias: str
    action: AliasAction
    old: int | None
    new: int | None
    actor: str
    at: datetime
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "alias": self.alias,
            "action": self.action,
            "old": self.old,
            "new": self.new,
            "actor": self.actor,
            "at": self.at.isoformat(),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Resolution:
    """What a reference resolved to: always a number and a digest."""

    model: str
    ref: str
    number: int
    digest: str

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "ref": self.ref, "number": self.number, "digest": self.digest}


def is_stage(alias: str) -> bool:
    return alias in STAGES


def replay(events: Iterable[AliasEvent]) -> dict[str, int]:
    """The current target of every alias after ``events`` (in order)."""
    state: dict[str, int] = {}
    for event in events:
        if event.new is None:
            state.pop(event.alias, None)
        else:
            state[event.alias] = event.new
    return state


def target_at(events: Iterable[AliasEvent], alias: str, at: datetime) -> int | None:
    """Where ``alias`` pointed at time ``at``; None if it pointed nowhere."""
    target: int | None = None
    for event in events:
        if event.alias == alias and event.at <= at:
            target = event.new
    return target


def rollback_target(stage: str, events: Iterable[AliasEvent]) -> tuple[int, int]:
    """``(current, previous)`` targets of ``stage``: rollback moves it to ``previous``."""
    stack: list[int] = []
    for event in events:
        if event.alias != stage or event.new is None:
            continue
        if event.action == "rollback":
            stack.pop()
        else:
            stack.append(event.new)
    if len(stack) < 2:
        detail = "was never promoted" if not stack else "has no earlier target"
        raise NothingToRollBack(f"stage {stage!r} {detail}")
    return stack[-1], stack[-2]
