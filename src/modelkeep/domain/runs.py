"""Runs: one training or evaluation execution, what went in and what came out.

A run's params, seed, code and environment are fixed when it starts; metric points are
appended while it runs; its status ends as ``finished``, ``failed`` (with the exception's
message) or ``killed``. Metric values may be NaN or infinite: they are kept as such and
written in JSON as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelkeep.domain.numbers import INT64_MAX, INT64_MIN, is_int64
from modelkeep.domain.versions import Scalar, VersionMetadata, check_params
from modelkeep.errors import InvalidInput, InvalidName

RUNNING, FINISHED, FAILED, KILLED = "running", "finished", "failed", "killed"
STATUSES = (RUNNING, FINISHED, FAILED, KILLED)
ENDED = (FINISHED, FAILED, KILLED)
EXPERIMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
RUN_ID = re.compile(r"[0-9a-f]{12}")
MAX_ERROR_CHARS = 10_000
_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def check_experiment(name: str) -> str:
    if not isinstance(name, str) or not EXPERIMENT_NAME.fullmatch(name):
        raise InvalidName(
            f"{name!r} is not a valid experiment name",
            "use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit",
        )
    return name


def check_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID.fullmatch(run_id):
        raise InvalidInput(f"{run_id!r} is not a run id", "a run id is 12 hex digits")
    return run_id


def metric_to_json(value: float | None) -> float | str | None:
    """A metric value for JSON: non-finite numbers as strings, since JSON has none."""
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def metric_from_json(value: Any) -> float:
    if isinstance(value, str) and value in _NON_FINITE:
        return _NON_FINITE[value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"metric value {value!r} is not a number")
    return float(value)


@dataclass(frozen=True)
class Code:
    """Where the code came from, as captured when the run started."""

    commit: str | None = None
    branch: str | None = None
    dirty: bool | None = None
    diff_digest: str | None = None
    """The blob holding the uncommitted changes (a patch), when the tree was dirty."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "branch": self.branch,
            "dirty": self.dirty,
            "diff_digest": self.diff_digest,
        }


@dataclass(frozen=True)
class Environment:
    python: str | None = None
    packages_digest: str | None = None
    """The blob holding the installed packages as a lock file (``name==version`` lines)."""
    hostname: str | None = None
    platform: str | None = None
    command: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "packages_digest": self.packages_digest,
            "hostname": self.hostname,
            "platform": self.platform,
            "command": list(self.command),
        }


@dataclass(frozen=True)
class NewRun:
    experiment: str
    params: Mapping[str, Scalar] = field(default_factory=dict)
    seed: int | None = None
    name: str | None = None
    code: Code = field(default_factory=Code)
    environment: Environment = field(default_factory=Environment)
    notes: tuple[str, ...] = ()

    def validated(self) -> NewRun:
        check_experiment(self.experiment)
        check_params("param", self.params)
        if self.seed is not None and not is_int64(self.seed):
            raise InvalidInput(
                f"seed {self.seed!r} is not a whole number of 64 bits",
                f"give a seed from {INT64_MIN} to {INT64_MAX}",
            )
        if self.name is not None and not (0 < len(self.name) <= 256 and self.name.isprintable()):
            raise InvalidInput(f"run name {self.name!r} is empty, too long or unprintable")
        return self


@dataclass(frozen=True)
class Run:
    id: str
    experiment: str
    name: str | None
    status: str
    error: str | None
    seed: int | None
    params: Mapping[str, Scalar]
    code: Code
    environment: Environment
    notes: tuple[str, ...]
    started_at: datetime
    ended_at: datetime | None
    created_by: str
    metrics: Mapping[str, float | None] = field(default_factory=dict)
    """Each metric's value as last logged."""
    datasets: tuple[str, ...] = ()
    """Dataset versions the run used, as ``NAME@N``."""
    artifacts: tuple[tuple[str, int, str], ...] = ()
    """(path, size, digest) of each file the run logged."""
    model_versions: tuple[str, ...] = ()
    """The model versions pushed from the run (``push --run``), as ``NAME@N``."""

    @property
    def ended(self) -> bool:
        return self.status in ENDED

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "experiment": self.experiment,
            "name": self.name,
            "status": self.status,
            "error": self.error,
            "seed": self.seed,
            "params": dict(self.params),
            "metrics": {k: metric_to_json(v) for k, v in self.metrics.items()},
            "datasets": list(self.datasets),
            "artifacts": [{"path": p, "size": s, "digest": d} for p, s, d in self.artifacts],
            "model_versions": list(self.model_versions),
            "code": self.code.to_dict(),
            "environment": self.environment.to_dict(),
            "notes": list(self.notes),
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "created_by": self.created_by,
        }


def through_run(metadata: VersionMetadata, run: Run) -> VersionMetadata:
    """A version's metadata as seen through its run: what the version does not say
    itself (commit, seed, params, finite final metrics, datasets), the run does."""
    return VersionMetadata(
        params={**run.params, **metadata.params},
        metrics={
            **{k: v for k, v in run.metrics.items() if v is not None and math.isfinite(v)},
            **metadata.metrics,
        },
        datasets=tuple(dict.fromkeys((*metadata.datasets, *run.datasets))),
        commit=metadata.commit or run.code.commit,
        seed=metadata.seed if metadata.seed is not None else run.seed,
        run=metadata.run,
        meta=metadata.meta,
    )


@dataclass(frozen=True)
class Series:
    """One metric of one run, possibly downsampled: (step, value) pairs in step order."""

    run: str
    points: tuple[tuple[int, float], ...]
    total: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "total": self.total,
            "steps": [s for s, _ in self.points],
            "values": [metric_to_json(v) for _, v in self.points],
        }
