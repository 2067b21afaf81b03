"""Deployments: the desired state of each model in each environment, and its history."""

from __future__ import annotations

from typing import Protocol

from modelkeep.domain.deployments import DeploymentChange, DesiredState


class Deployments(Protocol):
    def get(self, model: str, env: str) -> DesiredState | None:
        """The model's desired state in ``env``; None if it was never deployed there."""
        ...

    def in_env(self, env: str) -> list[DesiredState]:
        """Every desired state of ``env``, by model name."""
        ...

    def record(self, change: DeploymentChange) -> None:
        """Replace the model's desired state in the change's env with ``change.state`` and
        append ``change`` to the history. The service has checked the revision (write
        transactions are ordered by the audit head's lock)."""
        ...

    def history(self, model: str, env: str) -> list[DeploymentChange]:
        """Every change of the model's desired state in ``env``, oldest first."""
        ...

    def marker(self, env: str) -> int:
        """A number that grows with every change in ``env`` (0: none yet): a cheap
        question for a long-poll to ask again and again."""
        ...
