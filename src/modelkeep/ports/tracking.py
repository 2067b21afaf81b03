"""Experiment tracking: runs, their parameters, metric points and artifacts; datasets and
the lineage edges between data, runs and versions."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Protocol

from modelkeep.domain.datasets import DatasetVersion
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.runs import NewRun, Run


@dataclass(frozen=True)
class DatasetVersionRow(DatasetVersion):
    """A dataset version and the id of its row (what lineage edges link)."""

    id: int = field(kw_only=True)

    def version(self) -> DatasetVersion:
        """The dataset version alone, as every layer above storage sees it."""
        return DatasetVersion(**{f.name: getattr(self, f.name) for f in fields(DatasetVersion)})


class Tracking(Protocol):
    def add_run(self, run_id: str, new: NewRun, actor: str, at: datetime) -> None: ...
    def run_state(self, run_id: str, *, lock: bool = False) -> tuple[int, str] | None: ...
    def end_run(self, run_pk: int, status: str, error: str | None, at: datetime) -> None: ...
    def end_running_run(
        self, run_id: str, status: str, error: str | None, at: datetime
    ) -> int | None: ...
    def experiment_of(self, run_id: str) -> str | None:
        """The experiment a run is recorded under (its scope), None if there is no run."""
        ...

    def runs_keeping(self, digests: Iterable[str]) -> dict[str, set[str]]:
        """Digest -> the runs (ids) whose dirty diff or package lock it is. Not indexed:
        asked only about digests nothing else lets the reader read."""
        ...

    def run_params(self, run_pk: int) -> dict[str, Any]: ...
    def set_run_params(self, run_pk: int, params: dict[str, Any]) -> None: ...
    def get_run(self, run_id: str) -> Run | None: ...
    def list_runs(
        self, experiment: str | None = None, run_ids: Sequence[str] | None = None
    ) -> list[Run]: ...
    def add_metric_points(
        self, run_pk: int, points: Iterable[tuple[str, int, float, float]]
    ) -> int: ...
    def metric_points(
        self, name: str, run_pks: Sequence[int]
    ) -> dict[int, list[tuple[int, float]]]: ...
    def run_pks(self, run_ids: Sequence[str]) -> dict[str, int]: ...
    def add_run_artifact(self, run_pk: int, path: str, size: int, digest: str) -> None: ...


class Datasets(Protocol):
    def id_of(self, name: str) -> int | None: ...
    def add(self, name: str, description: str, actor: str, at: datetime) -> int: ...
    def names(self) -> list[tuple[str, int]]: ...
    def add_version(
        self,
        dataset_id: int,
        digest: str,
        files: Sequence[FileEntry],
        fields: dict[str, Any],
        actor: str,
        at: datetime,
    ) -> int: ...
    def versions(self, name: str, *where: Any) -> list[DatasetVersionRow]: ...
    def link_run(self, run_pk: int, dataset_version_id: int) -> None: ...
    def link_version_inputs(
        self, model: str, number: int, run_pk: int | None, dataset_version_ids: Sequence[int]
    ) -> None: ...
    def lineage_edges(self) -> list[tuple[str, str]]: ...
