"""Desired states and their history in SQL: the storage half of deployments."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from modelkeep.domain.deployments import DeploymentChange, DesiredState
from modelkeep.storage.sql.tables import deployment_events, deployments, models


def _model_id(name: str) -> Any:
    return select(models.c.id).where(models.c.name == name).scalar_subquery()


def _stored(state: DesiredState) -> dict[str, Any]:
    """What the ``state`` column keeps: the backends and the sticky key."""
    document = state.to_dict()
    return {"backends": document["backends"], "sticky": document["sticky"]}


def _state(model: str, env: str, revision: int, stored: dict[str, Any]) -> DesiredState:
    return DesiredState.from_dict({"model": model, "env": env, "revision": revision, **stored})


class DeploymentRows:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, model: str, env: str) -> DesiredState | None:
        row = self._conn.execute(
            select(deployments.c.revision, deployments.c.state).where(
                deployments.c.model_id == _model_id(model), deployments.c.env == env
            )
        ).first()
        return _state(model, env, row.revision, row.state) if row else None

    def in_env(self, env: str) -> list[DesiredState]:
        rows = self._conn.execute(
            select(models.c.name, deployments.c.revision, deployments.c.state)
            .join(models, models.c.id == deployments.c.model_id)
            .where(deployments.c.env == env)
            .order_by(models.c.name)
        )
        return [_state(row.name, env, row.revision, row.state) for row in rows]

    def record(self, change: DeploymentChange) -> None:
        state = change.state
        model_id = _model_id(change.model)
        values = {"revision": state.revision, "state": _stored(state)}
        if change.previous is None:
            self._conn.execute(
                insert(deployments).values(model_id=model_id, env=change.env, **values)
            )
        else:
            self._conn.execute(
                update(deployments)
                .where(deployments.c.model_id == model_id, deployments.c.env == change.env)
                .values(**values)
            )
        self._conn.execute(
            insert(deployment_events).values(
                model_id=model_id,
                env=change.env,
                revision=change.revision,
                action=change.action,
                previous=_stored(change.previous) if change.previous else None,
                state=_stored(state),
                actor=change.actor,
                at=change.at,
                reason=change.reason,
                attestation=change.attestation,
            )
        )

    def history(self, model: str, env: str) -> list[DeploymentChange]:
        rows = self._conn.execute(
            select(deployment_events)
            .where(
                deployment_events.c.model_id == _model_id(model),
                deployment_events.c.env == env,
            )
            .order_by(deployment_events.c.id)
        )
        return [
            DeploymentChange(
                model=model,
                env=env,
                revision=row.revision,
                action=row.action,
                previous=(
                    _state(model, env, row.revision - 1, row.previous) if row.previous else None
                ),
                state=_state(model, env, row.revision, row.state),
                actor=row.actor,
                at=row.at,
                reason=row.reason,
                attestation=row.attestation,
            )
            for row in rows
        ]

    def marker(self, env: str) -> int:
        found = self._conn.execute(
            select(func.max(deployment_events.c.id)).where(deployment_events.c.env == env)
        ).scalar()
        return int(found or 0)
