"""Runs, their parameters, metric points and artifacts in memory (the SQL adapter's
semantics: a NaN point reads back as NaN, a run's final metric is its last logged point)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from modelkeep.domain.runs import Code, Environment, NewRun, Run
from modelkeep.errors import Conflict
from modelkeep.storage.memory.state import RunRow, Tables, View, json_copy, utc


class TrackingRows:
    def __init__(self, view: View) -> None:
        self._view = view

    # runs -------------------------------------------------------------------------------

    def add_run(self, run_id: str, new: NewRun, actor: str, at: datetime) -> None:
        if run_id in self._view.read.run_ids:  # a unique column in SQL
            raise Conflict(f"run {run_id} exists already")
        tables = self._view.change()
        pk = tables.next_id("runs")
        tables.runs[pk] = RunRow(
            id=pk,
            run_id=run_id,
            experiment=new.experiment,
            name=new.name,
            status="running",
            error=None,
            seed=new.seed,
            params=json_copy(dict(new.params)),
            code=json_copy(new.code.to_dict()),
            environment=json_copy(new.environment.to_dict()),
            notes=list(new.notes),
            started_at=utc(at),
            ended_at=None,
            created_by=actor,
        )
        tables.run_ids[run_id] = pk

    def run_state(self, run_id: str, *, lock: bool = False) -> tuple[int, str] | None:
        """(row id, status) of a run; ``lock`` is moot: writers take turns."""
        pk = self._view.read.run_ids.get(run_id)
        return None if pk is None else (pk, self._view.read.runs[pk].status)

    def experiment_of(self, run_id: str) -> str | None:
        pk = self._view.read.run_ids.get(run_id)
        return None if pk is None else self._view.read.runs[pk].experiment

    def runs_keeping(self, digests: Iterable[str]) -> dict[str, set[str]]:
        wanted = set(digests)
        found: dict[str, set[str]] = {}
        for run in self._view.read.runs.values():
            for kept in (run.code.get("diff_digest"), run.environment.get("packages_digest")):
                if kept in wanted:
                    found.setdefault(str(kept), set()).add(run.run_id)
        return found

    def run_params(self, run_pk: int) -> dict[str, Any]:
        row = self._view.read.runs.get(run_pk)
        return {} if row is None else json_copy(row.params)

    def set_run_params(self, run_pk: int, params: dict[str, Any]) -> None:
        self._update(run_pk, params=json_copy(dict(params)))

    def end_run(self, run_pk: int, status: str, error: str | None, at: datetime) -> None:
        self._update(run_pk, status=status, error=error, ended_at=utc(at))

    def end_running_run(
        self, run_id: str, status: str, error: str | None, at: datetime
    ) -> int | None:
        state = self.run_state(run_id)
        if state is None or state[1] != "running":
            return None
        self.end_run(state[0], status, error, at)
        return state[0]

    def _update(self, run_pk: int, **values: Any) -> None:
        row = self._view.read.runs.get(run_pk)
        if row is not None:  # else, like an UPDATE that matches no row, nothing happens
            self._view.change().runs[run_pk] = replace(row, **values)

    def get_run(self, run_id: str) -> Run | None:
        pk = self._view.read.run_ids.get(run_id)
        return None if pk is None else self._run(self._view.read.runs[pk])

    def list_runs(
        self, experiment: str | None = None, run_ids: Sequence[str] | None = None
    ) -> list[Run]:
        runs = self._view.read.runs
        wanted = None if run_ids is None else set(run_ids)
        return [
            self._run(runs[pk])
            for pk in sorted(runs)
            if (experiment is None or runs[pk].experiment == experiment)
            and (wanted is None or runs[pk].run_id in wanted)
        ]

    def _run(self, row: RunRow) -> Run:
        tables = self._view.read
        code, env = row.code, row.environment
        return Run(
            id=row.run_id,
            experiment=row.experiment,
            name=row.name,
            status=row.status,
            error=row.error,
            seed=row.seed,
            params=json_copy(row.params),
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
            notes=tuple(row.notes),
            started_at=row.started_at,
            ended_at=row.ended_at,
            created_by=row.created_by,
            metrics=_final_metrics(tables, row.id),
            datasets=_datasets_of(tables, row.id),
            artifacts=_artifacts_of(tables, row.id),
        )

    # metric points ----------------------------------------------------------------------

    def add_metric_points(
        self, run_pk: int, points: Iterable[tuple[str, int, float, float]]
    ) -> int:
        """Append points (name, step, value, seconds since 1970)."""
        if run_pk not in self._view.read.runs:  # a foreign key in SQL
            raise Conflict(f"run {run_pk} vanished during the transaction")
        added = tuple((n, int(s), float(v), float(t)) for n, s, v, t in points)
        if added:
            metrics = self._view.change().metrics
            metrics[run_pk] = (*metrics.get(run_pk, ()), *added)
        return len(added)

    def metric_points(
        self, name: str, run_pks: Sequence[int]
    ) -> dict[int, list[tuple[int, float]]]:
        """(step, value) of one metric for some runs, in step order, then logging order."""
        found: dict[int, list[tuple[int, float]]] = {pk: [] for pk in run_pks}
        for pk in found:
            points = self._view.read.metrics.get(pk, ())
            found[pk] = sorted(((s, v) for n, s, v, _ in points if n == name), key=_step)
        return found

    def run_pks(self, run_ids: Sequence[str]) -> dict[str, int]:
        known = self._view.read.run_ids
        return {rid: known[rid] for rid in run_ids if rid in known}

    def add_run_artifact(self, run_pk: int, path: str, size: int, digest: str) -> None:
        if run_pk not in self._view.read.runs:  # a foreign key in SQL
            raise Conflict(f"run {run_pk} vanished during the transaction")
        self._view.change().run_artifacts[(run_pk, path)] = (size, digest)


def _step(point: tuple[int, float]) -> int:
    return point[0]


def _final_metrics(tables: Tables, pk: int) -> dict[str, float | None]:
    """Each metric as last logged (NaN stays NaN, as the SQL adapter reads its NULL)."""
    return {name: value for name, _, value, _ in tables.metrics.get(pk, ())}


def _datasets_of(tables: Tables, pk: int) -> tuple[str, ...]:
    used = []
    for run_pk, version_id in tables.run_datasets:
        if run_pk == pk:
            version = tables.dataset_versions[version_id]
            used.append((dataset_name(tables, version.dataset_id), version.number))
    return tuple(f"{name}@{number}" for name, number in sorted(used))


def _artifacts_of(tables: Tables, pk: int) -> tuple[tuple[str, int, str], ...]:
    files = tables.run_artifacts.items()
    return tuple(sorted((path, size, digest) for (p, path), (size, digest) in files if p == pk))


def dataset_name(tables: Tables, dataset_id: int) -> str:
    return next(row.name for row in tables.datasets.values() if row.id == dataset_id)
