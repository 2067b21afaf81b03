"""Rows of runs, metric points, datasets and lineage edges (the SQL half of tracking)."""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Text, and_, bindparam, cast, func, insert, or_, select, update

from modelkeep.domain.runs import Code, Environment, NewRun, Run
from modelkeep.storage.sql.tables import (
    dataset_versions,
    datasets,
    run_artifacts,
    run_datasets,
    run_metrics,
    runs,
)

_INSERT_RUN = insert(runs)
_RUN = select(runs).where(runs.c.run_id == bindparam("run_id"))
_RUN_STATE = select(runs.c.id, runs.c.status).where(runs.c.run_id == bindparam("run_id"))
_RUN_STATE_FOR_UPDATE = _RUN_STATE.with_for_update()
_END_RUN = (
    update(runs)
    .where(runs.c.id == bindparam("pk"))
    .values(status=bindparam("status"), error=bindparam("error"), ended_at=bindparam("at"))
)
# Names of parameters differ from the columns': SQLAlchemy reserves those in an UPDATE.
_END_RUNNING = (
    update(runs)
    .where(runs.c.run_id == bindparam("rid"), runs.c.status == "running")
    .values(
        status=bindparam("new_status"), error=bindparam("new_error"), ended_at=bindparam("when")
    )
    .returning(runs.c.id)
)
# Built once with expanding IN parameters, so SQLAlchemy compiles each only once.
_PKS: Any = bindparam("pks", expanding=True)
_LAST_POINT = (
    select(run_metrics.c.run_pk, run_metrics.c.name, func.max(run_metrics.c.id).label("id"))
    .where(run_metrics.c.run_pk.in_(_PKS))
    .group_by(run_metrics.c.run_pk, run_metrics.c.name)
    .subquery()
)
_FINAL_METRICS = select(run_metrics.c.run_pk, run_metrics.c.name, run_metrics.c.value).join(
    _LAST_POINT, run_metrics.c.id == _LAST_POINT.c.id
)
_DATASETS_OF = (
    select(run_datasets.c.run_pk, datasets.c.name, dataset_versions.c.number)
    .join(dataset_versions, dataset_versions.c.id == run_datasets.c.dataset_version_id)
    .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
    .where(run_datasets.c.run_pk.in_(_PKS))
    .order_by(datasets.c.name, dataset_versions.c.number)
)
_ARTIFACTS_OF = (
    select(run_artifacts).where(run_artifacts.c.run_pk.in_(_PKS)).order_by(run_artifacts.c.path)
)


_INSERT_POINTS = "INSERT INTO run_metrics (run_pk, name, step, value, at) VALUES {values}"
_SQLITE_ROWS = 199
"""Rows per INSERT: 5 parameters each, within the 999 parameters any SQLite allows."""


@functools.cache
def _sqlite_insert(rows: int) -> str:
    return _INSERT_POINTS.format(values=", ".join(["(?, ?, ?, ?, ?)"] * rows))


class TrackingRows:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    # runs -----------------------------------------------------------------------------

    def add_run(self, run_id: str, new: NewRun, actor: str, at: datetime) -> None:
        # A statement built once: building ``insert().values(...)`` per run cost more
        # than the insert itself.
        row = {
            "run_id": run_id,
            "experiment": new.experiment,
            "name": new.name,
            "status": "running",
            "seed": new.seed,
            "params": dict(new.params),
            "code": new.code.to_dict(),
            "environment": new.environment.to_dict(),
            "notes": list(new.notes),
            "started_at": at,
            "created_by": actor,
        }
        self._conn.execute(_INSERT_RUN, row)

    def run_state(self, run_id: str, *, lock: bool = False) -> tuple[int, str] | None:
        """(row id, status) of a run; with ``lock``, held until the transaction ends."""
        locking = lock and self._conn.dialect.name == "postgresql"
        query = _RUN_STATE_FOR_UPDATE if locking else _RUN_STATE
        row = self._conn.execute(query, {"run_id": run_id}).one_or_none()
        return None if row is None else (int(row.id), str(row.status))

    def experiment_of(self, run_id: str) -> str | None:
        query = select(runs.c.experiment).where(runs.c.run_id == run_id)
        found = self._conn.execute(query).scalar()
        return None if found is None else str(found)

    def runs_keeping(self, digests: Iterable[str]) -> dict[str, set[str]]:
        wanted = sorted(set(digests))
        found: dict[str, set[str]] = {}
        for start in range(0, len(wanted), 100):
            part = wanted[start : start + 100]
            columns = (runs.c.code, runs.c.environment)
            near = or_(*(cast(c, Text).contains(d) for c in columns for d in part))
            query = select(runs.c.run_id, runs.c.code, runs.c.environment).where(near)
            for run_id, code, env in self._conn.execute(query):
                for kept in ((code or {}).get("diff_digest"), (env or {}).get("packages_digest")):
                    if kept in part:
                        found.setdefault(str(kept), set()).add(str(run_id))
        return found

    def run_params(self, run_pk: int) -> dict[str, Any]:
        found = self._conn.execute(select(runs.c.params).where(runs.c.id == run_pk)).scalar()
        return dict(found or {})

    def set_run_params(self, run_pk: int, params: dict[str, Any]) -> None:
        self._conn.execute(update(runs).where(runs.c.id == run_pk).values(params=params))

    def end_run(self, run_pk: int, status: str, error: str | None, at: datetime) -> None:
        self._conn.execute(_END_RUN, {"pk": run_pk, "status": status, "error": error, "at": at})

    def end_running_run(
        self, run_id: str, status: str, error: str | None, at: datetime
    ) -> int | None:
        """End the run if it is running, in one statement where the database can answer
        the updated row (``RETURNING``); its row id, or None when it is not running."""
        if not self._conn.dialect.update_returning:
            state = self.run_state(run_id, lock=True)
            if state is None or state[1] != "running":
                return None
            self.end_run(state[0], status, error, at)
            return state[0]
        values = {"rid": run_id, "new_status": status, "new_error": error, "when": at}
        pk = self._conn.execute(_END_RUNNING, values).scalar()
        return None if pk is None else int(pk)

    def get_run(self, run_id: str) -> Run | None:
        row = self._conn.execute(_RUN, {"run_id": run_id}).one_or_none()
        if row is None:
            return None
        return self._runs([row])[0]

    def list_runs(
        self, experiment: str | None = None, run_ids: Sequence[str] | None = None
    ) -> list[Run]:
        query = select(runs).order_by(runs.c.id)
        if experiment is not None:
            query = query.where(runs.c.experiment == experiment)
        if run_ids is not None:
            query = query.where(runs.c.run_id.in_(list(run_ids)))
        return self._runs(self._conn.execute(query).all())

    def _runs(self, rows: Sequence[Any]) -> list[Run]:
        pks = [int(r.id) for r in rows]
        finals = self._final_metrics(pks)
        used = self._datasets_of(pks)
        files = self._artifacts_of(pks)
        return [
            _run(r, finals.get(int(r.id), {}), used.get(int(r.id), ()), files.get(int(r.id), ()))
            for r in rows
        ]

    def _final_metrics(self, pks: list[int]) -> dict[int, dict[str, float | None]]:
        """Each run's metrics as last logged."""
        found: dict[int, dict[str, float | None]] = {}
        for start in range(0, len(pks), 500):
            rows = self._conn.execute(_FINAL_METRICS, {"pks": pks[start : start + 500]})
            for pk, name, value in rows:
                found.setdefault(int(pk), {})[name] = _value(value)
        return found

    def _datasets_of(self, pks: list[int]) -> dict[int, tuple[str, ...]]:
        found: dict[int, list[str]] = {}
        for pk, name, number in self._conn.execute(_DATASETS_OF, {"pks": pks}):
            found.setdefault(int(pk), []).append(f"{name}@{number}")
        return {pk: tuple(refs) for pk, refs in found.items()}

    def _artifacts_of(self, pks: list[int]) -> dict[int, tuple[tuple[str, int, str], ...]]:
        found: dict[int, list[tuple[str, int, str]]] = {}
        for row in self._conn.execute(_ARTIFACTS_OF, {"pks": pks}):
            found.setdefault(int(row.run_pk), []).append((row.path, int(row.size), row.digest))
        return {pk: tuple(files) for pk, files in found.items()}

    # metric points ----------------------------------------------------------------------

    def add_metric_points(
        self, run_pk: int, points: Iterable[tuple[str, int, float, float]]
    ) -> int:
        """Insert points (name, step, value, seconds since 1970); NaN is kept as NULL. A
        batch goes straight to the driver: SQLAlchemy's per-row processing would cost more
        than the insert itself. SQLite takes rows by the hundred per statement (a third
        faster than its executemany); PostgreSQL's driver pipelines an executemany."""
        rows = [(run_pk, n, s, None if v != v else v, t) for n, s, v, t in points]  # v != v: NaN
        if self._conn.dialect.name != "sqlite":
            if rows:
                self._conn.exec_driver_sql(
                    _INSERT_POINTS.format(values="(%s, %s, %s, %s, %s)"), rows
                )
            return len(rows)
        for start in range(0, len(rows), _SQLITE_ROWS):
            chunk = rows[start : start + _SQLITE_ROWS]
            self._conn.exec_driver_sql(
                _sqlite_insert(len(chunk)), tuple(itertools.chain.from_iterable(chunk))
            )
        return len(rows)

    def metric_points(
        self, name: str, run_pks: Sequence[int]
    ) -> dict[int, list[tuple[int, float]]]:
        """(step, value) of one metric for some runs, in step order (NaN for NULL)."""
        query = (
            select(run_metrics.c.run_pk, run_metrics.c.step, run_metrics.c.value)
            .where(run_metrics.c.name == name, run_metrics.c.run_pk.in_(list(run_pks)))
            .order_by(run_metrics.c.run_pk, run_metrics.c.step, run_metrics.c.id)
        )
        found: dict[int, list[tuple[int, float]]] = {pk: [] for pk in run_pks}
        for pk, step, value in self._conn.execute(query):
            found[int(pk)].append((int(step), math.nan if value is None else float(value)))
        return found

    def run_pks(self, run_ids: Sequence[str]) -> dict[str, int]:
        query = select(runs.c.run_id, runs.c.id).where(runs.c.run_id.in_(list(run_ids)))
        return {rid: int(pk) for rid, pk in self._conn.execute(query)}

    def add_run_artifact(self, run_pk: int, path: str, size: int, digest: str) -> None:
        existing = select(run_artifacts.c.path).where(
            and_(run_artifacts.c.run_pk == run_pk, run_artifacts.c.path == path)
        )
        if self._conn.execute(existing).first() is None:
            self._conn.execute(
                insert(run_artifacts).values(run_pk=run_pk, path=path, size=size, digest=digest)
            )
        else:
            self._conn.execute(
                update(run_artifacts)
                .where(run_artifacts.c.run_pk == run_pk, run_artifacts.c.path == path)
                .values(size=size, digest=digest)
            )


def _value(value: Any) -> float:
    return math.nan if value is None else float(value)


def _run(
    row: Any,
    metrics: dict[str, float | None],
    used: tuple[str, ...],
    files: tuple[tuple[str, int, str], ...],
) -> Run:
    code, env = row.code or {}, row.environment or {}
    return Run(
        id=row.run_id,
        experiment=row.experiment,
        name=row.name,
        status=row.status,
        error=row.error,
        seed=row.seed,
        params=dict(row.params or {}),
        code=Code(
            code.get("commit"), code.get("branch"), code.get("dirty"), code.get("diff_digest")
        ),
        environment=Environment(
            env.get("python"),
            env.get("packages_digest"),
            env.get("hostname"),
            env.get("platform"),
            tuple(env.get("command") or ()),
        ),
        notes=tuple(row.notes or ()),
        started_at=row.started_at,
        ended_at=row.ended_at,
        created_by=row.created_by,
        metrics=metrics,
        datasets=used,
        artifacts=files,
    )
