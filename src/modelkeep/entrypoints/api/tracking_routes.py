"""Runs, metric points, datasets and lineage over HTTP.

Metric points travel as columns (``names``, ``steps``, ``values``, ``at``), so a batch of
thousands costs one small JSON document; non-finite values are the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``. The SDK packs them tighter still (``/metrics/packed``
and ``/finish``): the columns as base64 of binary arrays, exact and without writing out
or parsing one number in decimal.
"""

from __future__ import annotations

import array
import base64
import sys
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from modelkeep.domain.datasets import DatasetPush
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.numbers import INT64_MAX
from modelkeep.domain.runs import Code, Environment, NewRun, metric_from_json
from modelkeep.entrypoints.api import schemas
from modelkeep.entrypoints.api.paging import Cursor, Limit, page
from modelkeep.entrypoints.api.routes import Reg
from modelkeep.errors import InvalidInput
from modelkeep.services import datasets, lineage, tracking

router = APIRouter(tags=["tracking"])

MAX_NAME = 250
"""Characters in a metric name: the SDK's limit, and the width of ``run_metrics.name``."""
_B64_LIMIT = 4 * (100_000 * 8 // 3 + 1)
"""Base64 characters of 100,000 eight-byte items, the most a batch holds."""


@router.post("/runs", status_code=201)
def start_run(reg: Reg, body: schemas.StartRun) -> dict[str, Any]:
    new = NewRun(
        experiment=body.experiment,
        params=body.params,
        seed=body.seed,
        name=body.name,
        code=Code(**body.code.model_dump()),
        environment=Environment(
            **{**body.environment.model_dump(), "command": tuple(body.environment.command)}
        ),
        notes=tuple(body.notes),
    )
    return tracking.start_run(reg, new).to_dict()


@router.get("/runs")
def list_runs(
    reg: Reg,
    experiment: str | None = None,
    ids: Annotated[str | None, Query(max_length=100_000)] = None,
    limit: Limit = 1000,
    after: Cursor | None = None,
) -> dict[str, Any]:
    """Runs oldest first (of one experiment, or the ``ids`` given comma-separated)."""
    wanted = [i for i in ids.split(",") if i] if ids is not None else None
    found = tracking.list_runs(reg, experiment, wanted)
    return page(enumerate((r.to_dict() for r in found), start=1), limit, after)


@router.get("/runs/{run_id}")
def get_run(reg: Reg, run_id: str) -> dict[str, Any]:
    return tracking.get_run(reg, run_id).to_dict()


@router.post("/runs/{run_id}/params")
def log_params(reg: Reg, run_id: str, body: schemas.RunParams) -> dict[str, Any]:
    return tracking.log_params(reg, run_id, body.params).to_dict()


@router.post("/runs/{run_id}/metrics")
def log_metrics(reg: Reg, run_id: str, body: schemas.MetricBatch) -> dict[str, int]:
    """Append a batch of points in one transaction; refused once the run has ended."""
    return {"stored": tracking.log_points(reg, run_id, _points(body))}


class PackedPoints(BaseModel):
    """Points as the SDK packs them (``metrics_buffer.pack_points``): the distinct names,
    then per point its name's index, step, value and time, as little-endian int32, int64,
    float64 and float64 arrays in base64."""

    model_config = ConfigDict(extra="forbid")
    names: list[str] = Field(max_length=100_000)
    index: str = Field(max_length=_B64_LIMIT)
    steps: str = Field(max_length=_B64_LIMIT)
    values: str = Field(max_length=_B64_LIMIT)
    at: str = Field(max_length=_B64_LIMIT)


class FinishRun(BaseModel):
    """How a run ended, with the points its SDK still held (stored in the same
    transaction)."""

    model_config = ConfigDict(extra="forbid")
    status: Literal["finished", "failed", "killed"] = "finished"
    error: str | None = Field(default=None, max_length=10_000)
    points: PackedPoints | None = None


@router.post("/runs/{run_id}/metrics/packed")
def log_packed_metrics(reg: Reg, run_id: str, body: PackedPoints) -> dict[str, int]:
    """``/metrics`` for packed points: the SDK's way, several times cheaper for both sides."""
    return {"stored": tracking.log_points(reg, run_id, _unpack(body))}


@router.post("/runs/{run_id}/finish")
def finish_run(reg: Reg, run_id: str, body: FinishRun) -> dict[str, int]:
    """End a run with its last points in one transaction, answering only how many points
    were stored (the SDK's ``with`` block needs no more)."""
    points = _unpack(body.points) if body.points is not None else []
    return {"stored": tracking.finish_run(reg, run_id, body.status, body.error, points)}


def _unpack(body: PackedPoints) -> list[tracking.PointRow]:
    """Packed points as rows, checked like the columns of ``/metrics``."""
    index = _column("i", body.index)
    steps, values, at = _column("q", body.steps), _column("d", body.values), _column("d", body.at)
    if not len(steps) == len(values) == len(at) == len(index):
        raise InvalidInput("index, steps, values and at must hold as many points")
    if index and (min(index) < 0 or max(index) >= len(body.names)):
        raise InvalidInput("a point's name index is out of range")
    if steps and min(steps) < 0:
        raise InvalidInput("a point's step is negative", "give steps of 0 or more")
    if not all(0 <= t < 1e11 for t in at):  # math.isfinite is implied
        raise InvalidInput("a point's time is not in seconds since 1970", "send time.time()")
    for name in body.names:
        _check_name(name)
    names = [body.names[i] for i in index]
    return list(zip(names, steps.tolist(), values.tolist(), at.tolist(), strict=True))


def _column(code: str, text: str) -> array.array[Any]:
    try:
        column = array.array(code, base64.b64decode(text, validate=True))
    except ValueError:  # binascii.Error is one; and a length that is not whole items
        raise InvalidInput(f"a packed column is not base64 of {code!r} items") from None
    if sys.byteorder == "big":
        column.byteswap()
    return column


def _check_name(name: str) -> None:
    if not 0 < len(name) <= MAX_NAME or not name.strip() or not name.isprintable():
        raise InvalidInput(
            f"metric name {name[:40]!r} is empty, longer than {MAX_NAME} characters or "
            "holds control characters"
        )


def _points(body: schemas.MetricBatch) -> list[tracking.PointRow]:
    """The columns of a batch as rows, checked."""
    count = len(body.names)
    if not len(body.steps) == len(body.values) == len(body.at) == count:
        raise InvalidInput("names, steps, values and at must be lists of the same length")
    if body.steps and not 0 <= min(body.steps) <= max(body.steps) <= INT64_MAX:
        raise InvalidInput("a point's step is out of range", f"give steps from 0 to {INT64_MAX}")
    if not all(0 <= t < 1e11 for t in body.at):  # math.isfinite is implied
        raise InvalidInput("a point's time is not in seconds since 1970", "send time.time()")
    values = [v if type(v) is float else metric_from_json(v) for v in body.values]
    return list(zip(body.names, body.steps, values, body.at, strict=True))


@router.post("/runs/{run_id}/datasets")
def use_dataset(reg: Reg, run_id: str, body: schemas.UseDataset) -> dict[str, Any]:
    return tracking.use_dataset(reg, run_id, body.ref).to_dict()


@router.post("/runs/{run_id}/artifacts", status_code=201)
def log_artifact(reg: Reg, run_id: str, body: schemas.FileEntryIn) -> dict[str, Any]:
    tracking.log_artifact(reg, run_id, FileEntry(body.path, body.size, body.digest))
    return body.model_dump()


@router.post("/runs/{run_id}/end")
def end_run(reg: Reg, run_id: str, body: schemas.EndRun) -> dict[str, Any]:
    return tracking.end_run(reg, run_id, body.status, body.error).to_dict()


@router.get("/metrics/{name}")
def metric_series(
    reg: Reg,
    name: str,
    runs: Annotated[str, Query(max_length=100_000)],
    max_points: Annotated[int, Query(ge=2, le=tracking.MAX_SERIES_POINTS)] = 1000,
) -> dict[str, Any]:
    """One metric of several runs (``runs`` comma-separated), each downsampled."""
    ids = [i for i in runs.split(",") if i]
    return {"series": [s.to_dict() for s in tracking.metric_series(reg, name, ids, max_points)]}


@router.get("/datasets")
def list_datasets(reg: Reg) -> dict[str, Any]:
    return {"items": datasets.list_datasets(reg)}


@router.post("/datasets/{name}/versions", status_code=201)
def push_dataset(reg: Reg, name: str, body: schemas.PushDataset) -> dict[str, Any]:
    files = [FileEntry(f.path, f.size, f.digest) for f in body.files]
    request = DatasetPush(
        body.source,
        tuple(body.steps),
        body.sampling,
        body.semver,
        body.message,
        body.profiles,
        body.if_exists,
    )
    return datasets.push(reg, name, files, request).to_dict()


@router.get("/datasets/{name}/versions")
def dataset_versions(
    reg: Reg, name: str, limit: Limit = 1000, after: Cursor | None = None
) -> dict[str, Any]:
    found = datasets.list_versions(reg, name)
    return page(((v.number, v.to_dict()) for v in found), limit, after)


@router.get("/datasets/{name}/versions/{ref}")
def dataset_version(reg: Reg, name: str, ref: str) -> dict[str, Any]:
    return datasets.get_version(reg, f"{name}@{ref}").to_dict()


@router.get("/lineage")
def get_lineage(
    reg: Reg,
    ref: Annotated[str, Query(max_length=300)],
    direction: str = "upstream",
) -> dict[str, Any]:
    return lineage.lineage(reg, ref, direction).to_dict()
