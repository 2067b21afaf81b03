"""Runs: start one (with its code and environment, stored as blobs), log metric points in
batches, attach files, end it; read runs, compare them, query metric series.

A run belongs to its experiment: starting one, and every change to it, needs the
contributor role on that experiment (``experiment:E``) or a global one; reading it needs
a reader of the experiment, or of a model a version was pushed to from it (``scopes``).

Every change is audited, one event per batch call (a run may log millions of points:
never one per point): start, params, metric points, files, datasets read, end. Changes
are refused once the run has ended.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import NamedTuple

from modelkeep.domain import access
from modelkeep.domain.access import dataset_scope, experiment_scope
from modelkeep.domain.digest import check_digest
from modelkeep.domain.events import EventKind
from modelkeep.domain.manifest import FileEntry, check_new_paths
from modelkeep.domain.names import parse_ref
from modelkeep.domain.runs import (
    ENDED,
    FAILED,
    FINISHED,
    KILLED,
    MAX_ERROR_CHARS,
    RUNNING,
    NewRun,
    Run,
    Series,
    check_experiment,
    check_run_id,
)
from modelkeep.domain.versions import Scalar, check_params
from modelkeep.errors import Forbidden, InvalidInput, RunEnded, RunNotFound
from modelkeep.ports.unit_of_work import Transaction
from modelkeep.services import datasets, scopes
from modelkeep.services.context import ServiceContext

MAX_POINTS_PER_BATCH = 100_000
MAX_SERIES_POINTS = 10_000
MAX_AUDITED_NAMES = 100


PointRow = tuple[str, int, float, float]
"""(name, step, value, seconds since 1970): ``Point``, or the SDK's ``MetricPoint``, which
has the same fields in the same order and is stored as it is (no copy per point)."""


class Point(NamedTuple):
    """A metric point to store (a tuple: batches hold thousands)."""

    name: str
    step: int
    value: float
    at: float
    """When it was logged, in seconds since 1970 (UTC)."""


def start_run(ctx: ServiceContext, new: NewRun) -> Run:
    """Record a new running run. Its dirty diff and package lock, if any, are blobs
    uploaded first (``put_blob``), named by their digests in ``new``."""
    ctx.authorize(access.TRACK, access.ANY_MODEL)
    new = new.validated()
    ctx.authorize(access.TRACK, experiment_scope(new.experiment))
    kept = [d for d in (new.code.diff_digest, new.environment.packages_digest) if d is not None]
    for digest in kept:
        if not ctx.blobs.has(check_digest(digest)):
            raise InvalidInput(f"blob {digest} was not uploaded", "upload it before the run")
    run_id = secrets.token_hex(6)
    at = ctx.clock()
    with ctx.store.transaction(write=True) as tx:
        scopes.check_usable(ctx, tx, kept)
        tx.tracking.add_run(run_id, new, ctx.actor, at)
        ctx.record_event(
            tx, EventKind.RUN_START, f"run:{run_id}", {"experiment": new.experiment}, at
        )
        tx.commit()
    return Run(
        run_id,
        new.experiment,
        new.name,
        RUNNING,
        None,
        new.seed,
        dict(new.params),
        new.code,
        new.environment,
        new.notes,
        at,
        None,
        ctx.actor,
    )


def get_run(ctx: ServiceContext, run_id: str) -> Run:
    ctx.authorize(access.READ, access.ANY_MODEL)
    with ctx.store.transaction() as tx:
        run = tx.tracking.get_run(check_run_id(run_id))
        if run is None:
            raise RunNotFound(f"there is no run {run_id}", "list runs with 'modelkeep runs list'")
        scopes.check_run_readable(ctx, tx, run.id, run.experiment)
        node = f"run:{run.id}"
        pushed = [
            made.removeprefix("model:")
            for used, made in tx.datasets.lineage_edges()
            if used == node and made.startswith("model:")
        ]
    readable = [ref for ref in pushed if ctx.can(access.READ, ref.rpartition("@")[0])]
    return replace(run, model_versions=tuple(sorted(readable, key=_by_name_and_number)))


def _by_name_and_number(ref: str) -> tuple[str, int]:
    name, _, number = ref.rpartition("@")
    return name, int(number)


def list_runs(
    ctx: ServiceContext, experiment: str | None = None, run_ids: Sequence[str] | None = None
) -> list[Run]:
    ctx.authorize(access.READ, access.ANY_MODEL)
    if experiment is not None:
        check_experiment(experiment)
    ids = [check_run_id(r) for r in run_ids] if run_ids is not None else None
    with ctx.store.transaction() as tx:
        found = tx.tracking.list_runs(experiment, ids)
        reach = scopes.Reach(ctx, tx)
        if ids is None:  # a listing shows the runs the actor may read
            return [r for r in found if reach.run(r.id, r.experiment)]
        for run in found:  # runs asked for by id: each must be readable
            scopes.check_run_readable(ctx, tx, run.id, run.experiment)
    missing = sorted(set(ids) - {r.id for r in found})
    if missing:
        raise RunNotFound(f"there is no run {', '.join(missing)}")
    order = {r: i for i, r in enumerate(ids)}
    found.sort(key=lambda r: order[r.id])
    return found


def log_params(ctx: ServiceContext, run_id: str, params: Mapping[str, Scalar]) -> Run:
    """Add params to a running run; a param, once logged, keeps its value."""
    ctx.authorize(access.TRACK, access.ANY_MODEL)
    check_params("param", params)
    at = ctx.clock()
    with ctx.store.transaction(write=True) as tx:
        run_pk = _running(ctx, tx, run_id)
        current = tx.tracking.run_params(run_pk)
        changed = sorted(k for k, v in params.items() if k in current and current[k] != v)
        if changed:
            raise InvalidInput(
                f"param {changed[0]!r} of run {run_id} is {current[changed[0]]!r} already",
                "a run's params do not change; log another name or start a new run",
            )
        tx.tracking.set_run_params(run_pk, {**current, **params})
        _audit(ctx, tx, EventKind.RUN_PARAMS, run_id, {"params": _names(params)}, at)
        tx.commit()
    return get_run(ctx, run_id)


def log_points(ctx: ServiceContext, run_id: str, points: Sequence[PointRow]) -> int:
    """Append metric points to a running run, in one transaction."""
    ctx.authorize(access.TRACK, access.ANY_MODEL)
    _check_batch(points)
    at = ctx.clock()
    with ctx.store.transaction(write=True) as tx:
        count = _store_points(tx, _running(ctx, tx, run_id), points)
        if count:
            _audit(ctx, tx, EventKind.RUN_METRICS, run_id, _points_details(points), at)
        tx.commit()
    return count


def use_dataset(ctx: ServiceContext, run_id: str, ref: str) -> Run:
    """Record that a running run read a dataset version (a lineage edge)."""
    ctx.authorize(access.TRACK, access.ANY_MODEL)
    parsed = parse_ref(ref, default_latest=True)
    ctx.authorize(access.READ, dataset_scope(parsed.model))
    at = ctx.clock()
    with ctx.store.transaction(write=True) as tx:
        run_pk = _running(ctx, tx, run_id)
        version = datasets.version_row(tx, parsed)
        tx.datasets.link_run(run_pk, version.id)
        details = {"dataset": f"{parsed.model}@{version.number}"}
        _audit(ctx, tx, EventKind.RUN_DATASET, run_id, details, at)
        tx.commit()
    return get_run(ctx, run_id)


def log_artifact(ctx: ServiceContext, run_id: str, entry: FileEntry) -> None:
    """Attach an uploaded file (its blob must exist) to a running run."""
    ctx.authorize(access.TRACK, access.ANY_MODEL)
    check_new_paths([entry.path])
    stored = ctx.blobs.stat(entry.digest)
    if stored is None or stored.size != entry.size:
        raise InvalidInput(f"file {entry.path!r} ({entry.digest}) was not uploaded")
    at = ctx.clock()
    with ctx.store.transaction(write=True) as tx:
        run_pk = _running(ctx, tx, run_id)
        scopes.check_usable(ctx, tx, [entry.digest])
        tx.tracking.add_run_artifact(run_pk, entry.path, entry.size, entry.digest)
        details = {"path": entry.path, "digest": entry.digest, "size": entry.size}
        _audit(ctx, tx, EventKind.RUN_ARTIFACT, run_id, details, at)
        tx.commit()


def end_run(
    ctx: ServiceContext, run_id: str, status: str = FINISHED, error: str | None = None
) -> Run:
    """End a running run as finished, failed (with the error's message) or killed."""
    finish_run(ctx, run_id, status, error)
    return get_run(ctx, run_id)


def finish_run(
    ctx: ServiceContext,
    run_id: str,
    status: str = FINISHED,
    error: str | None = None,
    points: Sequence[PointRow] = (),
) -> int:
    """``end_run`` with the run's last metric points stored in the same transaction (one
    commit, so one disk sync, where a flush then an end made two), and without reading
    the run back; the number of points stored."""
    ctx.authorize(access.TRACK, access.ANY_MODEL)
    if status not in ENDED:
        raise InvalidInput(f"{status!r} is not how a run ends", f"use one of {', '.join(ENDED)}")
    _check_batch(points)
    if error is not None:
        error = error[:MAX_ERROR_CHARS]
    at = ctx.clock()
    error = error if status in (FAILED, KILLED) else None
    with ctx.store.transaction(write=True) as tx:
        _check_writer(ctx, tx, run_id)
        run_pk = tx.tracking.end_running_run(check_run_id(run_id), status, error, at)
        if run_pk is None:
            raise _not_running(tx, run_id)
        count = _store_points(tx, run_pk, points)
        details: dict[str, object] = {"status": status}
        if count:
            details.update(_points_details(points))
        ctx.record_event(tx, EventKind.RUN_END, f"run:{run_id}", details, at)
        tx.commit()
    return count


def _check_batch(points: Sequence[PointRow]) -> None:
    if len(points) > MAX_POINTS_PER_BATCH:
        raise InvalidInput(f"a batch holds at most {MAX_POINTS_PER_BATCH} points")


def _store_points(tx: Transaction, run_pk: int, points: Sequence[PointRow]) -> int:
    return tx.tracking.add_metric_points(run_pk, points) if points else 0


def _audit(
    ctx: ServiceContext,
    tx: Transaction,
    action: EventKind,
    run_id: str,
    details: Mapping[str, object],
    at: datetime,
) -> None:
    ctx.record_event(tx, action, f"run:{run_id}", dict(details), at)


def _names(names: Iterable[str]) -> list[str]:
    """Sorted names, at most ``MAX_AUDITED_NAMES``: an audit event stays small."""
    return sorted(set(names))[:MAX_AUDITED_NAMES]


def _points_details(points: Sequence[PointRow]) -> dict[str, object]:
    return {"points": len(points), "names": _names(p[0] for p in points)}


def _check_writer(ctx: ServiceContext, tx: Transaction, run_id: str) -> None:
    """Changing a run needs the contributor role on its experiment (or a global one)."""
    experiment = tx.tracking.experiment_of(check_run_id(run_id))
    if experiment is None:
        raise RunNotFound(f"there is no run {run_id}")
    decision = ctx.decide(access.TRACK, experiment_scope(experiment))
    if not decision.allowed:
        reader = scopes.Reach(ctx, tx).run(run_id, experiment)
        if not reader:  # nor may they read it: its experiment's name is not theirs to learn
            raise Forbidden(f"{ctx.actor} may not change run {run_id}")
        raise Forbidden(decision.reason)


def _running(ctx: ServiceContext, tx: Transaction, run_id: str) -> int:
    """The row id of a running run the actor may change (locked until the end of ``tx``)."""
    _check_writer(ctx, tx, run_id)
    state = tx.tracking.run_state(check_run_id(run_id), lock=True)
    if state is None or state[1] in ENDED:
        raise _not_running(tx, run_id, state)
    return int(state[0])


def _not_running(
    tx: Transaction, run_id: str, state: tuple[int, str] | None = None
) -> RunNotFound | RunEnded:
    """Why a run takes nothing more: it does not exist, or it has ended."""
    state = state or tx.tracking.run_state(check_run_id(run_id))
    if state is None:
        return RunNotFound(f"there is no run {run_id}")
    return RunEnded(
        f"run {run_id} has ended ({state[1]}): nothing more can be logged to it",
        "start a new run",
    )


def metric_series(
    ctx: ServiceContext, name: str, run_ids: Sequence[str], max_points: int = 1000
) -> list[Series]:
    """One metric across runs, each run's series reduced to at most ``max_points``
    (evenly spaced points, always keeping the first and the last)."""
    ctx.authorize(access.READ, access.ANY_MODEL)
    if not 2 <= max_points <= MAX_SERIES_POINTS:
        raise InvalidInput(f"max_points is 2 to {MAX_SERIES_POINTS}")
    ids = [check_run_id(r) for r in run_ids]
    with ctx.store.transaction() as tx:
        pks = tx.tracking.run_pks(ids)
        missing = sorted(set(ids) - set(pks))
        if missing:
            raise RunNotFound(f"there is no run {', '.join(missing)}")
        for run_id in ids:
            scopes.check_run_readable(ctx, tx, run_id)
        found = tx.tracking.metric_points(name, [pks[r] for r in ids])
    return [
        Series(r, tuple(_downsample(found[pks[r]], max_points)), len(found[pks[r]])) for r in ids
    ]


def _downsample(points: list[tuple[int, float]], limit: int) -> Iterable[tuple[int, float]]:
    if len(points) <= limit:
        return points
    stride = (len(points) - 1) / (limit - 1)
    return [points[round(i * stride)] for i in range(limit)]
