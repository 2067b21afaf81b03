"""Retention policy rows, and marking versions purged: the SQL half of retention."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, insert, select

from modelkeep.domain.retention import RetentionPolicy
from modelkeep.storage.sql.tables import models, retention_policies

_POLICIES = (
    select(
        models.c.name,
        retention_policies.c.keep_last,
        retention_policies.c.keep_days,
        retention_policies.c.updated_at,
        retention_policies.c.updated_by,
    )
    .join(models, models.c.id == retention_policies.c.model_id)
    .order_by(models.c.name)
)


def _model_id(name: str) -> Any:
    return select(models.c.id).where(models.c.name == name).scalar_subquery()


class RetentionRows:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, model: str) -> RetentionPolicy | None:
        row = self._conn.execute(_POLICIES.where(models.c.name == model)).first()
        return _policy(row) if row else None

    def all(self) -> list[RetentionPolicy]:
        """Every model's policy, by model name."""
        return [_policy(row) for row in self._conn.execute(_POLICIES)]

    def put(self, policy: RetentionPolicy) -> None:
        """Replace the model's policy (write transactions only: the audit head lock
        orders concurrent writers, so delete-then-insert cannot race)."""
        self.clear(policy.model)
        self._conn.execute(
            insert(retention_policies).values(
                model_id=_model_id(policy.model),
                keep_last=policy.keep_last,
                keep_days=policy.keep_days,
                updated_at=policy.updated_at,
                updated_by=policy.updated_by,
            )
        )

    def clear(self, model: str) -> bool:
        """Remove the model's policy; False if it had none."""
        done = self._conn.execute(
            delete(retention_policies).where(retention_policies.c.model_id == _model_id(model))
        )
        return bool(done.rowcount)


def _policy(row: Any) -> RetentionPolicy:
    return RetentionPolicy(row.name, row.keep_last, row.keep_days, row.updated_at, row.updated_by)
