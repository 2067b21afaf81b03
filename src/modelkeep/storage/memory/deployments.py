"""Desired states and their history in memory, as the SQL adapter keeps them."""

from __future__ import annotations

from dataclasses import replace

from modelkeep.domain.deployments import DeploymentChange, DesiredState
from modelkeep.storage.memory.state import View, utc


class DeploymentRows:
    def __init__(self, view: View) -> None:
        self._view = view

    def get(self, model: str, env: str) -> DesiredState | None:
        return self._view.read.deployments.get((model, env))

    def in_env(self, env: str) -> list[DesiredState]:
        states = self._view.read.deployments
        return [states[key] for key in sorted(states) if key[1] == env]

    def record(self, change: DeploymentChange) -> None:
        tables = self._view.change()
        tables.deployments[(change.model, change.env)] = change.state
        tables.deployment_events.append(
            (tables.next_id("deployment_events"), replace(change, at=utc(change.at)))
        )

    def history(self, model: str, env: str) -> list[DeploymentChange]:
        return [
            change
            for _, change in self._view.read.deployment_events
            if change.model == model and change.env == env
        ]

    def marker(self, env: str) -> int:
        events = self._view.read.deployment_events
        return max((i for i, change in events if change.env == env), default=0)
