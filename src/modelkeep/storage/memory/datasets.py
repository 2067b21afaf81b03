"""Datasets, their versions and files, and the lineage edges between runs, dataset
versions and model versions, in memory."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from modelkeep.domain.manifest import FileEntry
from modelkeep.errors import Conflict
from modelkeep.ports.tracking import DatasetVersionRow
from modelkeep.storage.memory.state import (
    DatasetRow,
    DatasetVersionData,
    VersionInput,
    View,
    json_copy,
    utc,
)
from modelkeep.storage.memory.tracking import dataset_name

_FIELDS = frozenset({"semver", "source", "steps", "sampling", "profiles", "message"})


class DatasetRows:
    def __init__(self, view: View) -> None:
        self._view = view

    def id_of(self, name: str) -> int | None:
        row = self._view.read.datasets.get(name)
        return None if row is None else row.id

    def add(self, name: str, description: str, actor: str, at: datetime) -> int:
        if name in self._view.read.datasets:  # a unique column in SQL
            raise Conflict(f"dataset {name!r} exists already")
        tables = self._view.change()
        dataset_id = tables.next_id("datasets")
        tables.datasets[name] = DatasetRow(dataset_id, name, description, utc(at), actor, 0)
        return dataset_id

    def names(self) -> list[tuple[str, int]]:
        """(name, number of versions) of every dataset."""
        datasets = self._view.read.datasets
        return [(name, datasets[name].last_number) for name in sorted(datasets)]

    def add_version(
        self,
        dataset_id: int,
        digest: str,
        files: Sequence[FileEntry],
        fields: dict[str, Any],
        actor: str,
        at: datetime,
    ) -> int:
        """Allocate the next number (the caller holds the write lock) and insert."""
        if set(fields) - _FIELDS:
            raise TypeError(f"unknown dataset version fields: {sorted(set(fields) - _FIELDS)}")
        name = dataset_name(self._view.read, dataset_id)
        tables = self._view.change()
        dataset = tables.datasets[name]
        number = dataset.last_number + 1
        tables.datasets[name] = replace(dataset, last_number=number)
        version_id = tables.next_id("dataset_versions")
        tables.dataset_versions[version_id] = DatasetVersionData(
            id=version_id,
            dataset_id=dataset_id,
            number=number,
            semver=fields.get("semver"),
            digest=digest,
            source=fields.get("source"),
            steps=json_copy(list(fields["steps"])),
            sampling=fields.get("sampling"),
            profiles=json_copy(dict(fields["profiles"])),
            message=fields.get("message"),
            created_at=utc(at),
            created_by=actor,
            files=tuple(sorted(files, key=lambda f: f.path)),
        )
        return number

    def versions(self, name: str, *where: Any) -> list[DatasetVersionRow]:
        """The dataset's versions by number. ``where`` (SQL conditions, which no service
        passes) cannot be evaluated here and is refused."""
        if where:
            raise NotImplementedError("the memory store takes no SQL conditions")
        dataset = self._view.read.datasets.get(name)
        if dataset is None:
            return []
        found = [v for v in self._view.read.dataset_versions.values() if v.dataset_id == dataset.id]
        return [_row(name, v) for v in sorted(found, key=lambda v: v.number)]

    # lineage edges ----------------------------------------------------------------------

    def link_run(self, run_pk: int, dataset_version_id: int) -> None:
        edge = (run_pk, dataset_version_id)
        if edge not in self._view.read.run_datasets:
            self._view.change().run_datasets[edge] = None

    def link_version_inputs(
        self, model: str, number: int, run_pk: int | None, dataset_version_ids: Sequence[int]
    ) -> None:
        key = (model, number)
        if key not in self._view.read.versions:
            raise Conflict(f"{model}@{number} vanished during the transaction")
        edges = [VersionInput(key, run_pk, None)] if run_pk is not None else []
        edges += [VersionInput(key, None, d) for d in dataset_version_ids]
        if edges:
            self._view.change().version_inputs.extend(edges)

    def lineage_edges(self) -> list[tuple[str, str]]:
        """Every edge of the lineage graph, as (from, to) node names: ``dataset:NAME@N``,
        ``run:ID``, ``model:NAME@N``."""
        tables = self._view.read

        def dataset(version_id: int) -> str:
            version = tables.dataset_versions[version_id]
            return f"dataset:{dataset_name(tables, version.dataset_id)}@{version.number}"

        edges = [
            (dataset(version_id), f"run:{tables.runs[pk].run_id}")
            for pk, version_id in tables.run_datasets
        ]
        for edge in tables.version_inputs:
            if edge.run_pk is not None:
                edges.append((f"run:{tables.runs[edge.run_pk].run_id}", _model(edge)))
        for edge in tables.version_inputs:
            if edge.dataset_version_id is not None:
                edges.append((dataset(edge.dataset_version_id), _model(edge)))
        return edges


def _model(edge: VersionInput) -> str:
    model, number = edge.version
    return f"model:{model}@{number}"


def _row(name: str, version: DatasetVersionData) -> DatasetVersionRow:
    return DatasetVersionRow(
        id=version.id,
        dataset=name,
        number=version.number,
        semver=version.semver,
        digest=version.digest,
        source=version.source,
        steps=tuple(version.steps),
        sampling=version.sampling,
        profiles=json_copy(version.profiles),
        message=version.message,
        created_at=version.created_at,
        created_by=version.created_by,
        files=version.files,
    )
