"""Rows of datasets, their versions and files, and the lineage edges between runs,
dataset versions and model versions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from modelkeep.domain.manifest import FileEntry
from modelkeep.ports.tracking import DatasetVersionRow
from modelkeep.storage.sql.tables import (
    dataset_files,
    dataset_versions,
    datasets,
    models,
    run_datasets,
    runs,
    version_inputs,
    versions,
)


class DatasetRows:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def id_of(self, name: str) -> int | None:
        found = self._conn.execute(select(datasets.c.id).where(datasets.c.name == name)).scalar()
        return None if found is None else int(found)

    def add(self, name: str, description: str, actor: str, at: datetime) -> int:
        row = {
            "name": name,
            "description": description,
            "created_at": at,
            "created_by": actor,
            "last_number": 0,
        }
        return int(
            self._conn.execute(insert(datasets).values(row).returning(datasets.c.id)).scalar_one()
        )

    def names(self) -> list[tuple[str, int]]:
        """(name, number of versions) of every dataset."""
        query = select(datasets.c.name, datasets.c.last_number).order_by(datasets.c.name)
        return [(n, int(c)) for n, c in self._conn.execute(query)]

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
        number = int(
            self._conn.execute(
                update(datasets)
                .where(datasets.c.id == dataset_id)
                .values(last_number=datasets.c.last_number + 1)
                .returning(datasets.c.last_number)
            ).scalar_one()
        )
        row = {"dataset_id": dataset_id, "number": number, "digest": digest, **fields}
        version_id = self._conn.execute(
            insert(dataset_versions)
            .values({**row, "created_at": at, "created_by": actor})
            .returning(dataset_versions.c.id)
        ).scalar_one()
        self._conn.execute(
            insert(dataset_files),
            [
                {
                    "dataset_version_id": version_id,
                    "path": f.path,
                    "size": f.size,
                    "digest": f.digest,
                }
                for f in files
            ],
        )
        return number

    def versions(self, name: str, *where: Any) -> list[DatasetVersionRow]:
        query = (
            select(dataset_versions, datasets.c.name.label("dataset"))
            .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
            .where(datasets.c.name == name, *where)
            .order_by(dataset_versions.c.number)
        )
        rows = self._conn.execute(query).all()
        files = self._dataset_files([int(r.id) for r in rows])
        return [_dataset_version(r, files.get(int(r.id), ())) for r in rows]

    def _dataset_files(self, ids: list[int]) -> dict[int, tuple[FileEntry, ...]]:
        found: dict[int, list[FileEntry]] = {}
        query = (
            select(dataset_files)
            .where(dataset_files.c.dataset_version_id.in_(ids))
            .order_by(dataset_files.c.path)
        )
        for row in self._conn.execute(query):
            entry = FileEntry(row.path, int(row.size), row.digest)
            found.setdefault(int(row.dataset_version_id), []).append(entry)
        return {i: tuple(f) for i, f in found.items()}

    # lineage edges ----------------------------------------------------------------------

    def link_run(self, run_pk: int, dataset_version_id: int) -> None:
        exists = select(run_datasets.c.run_pk).where(
            run_datasets.c.run_pk == run_pk, run_datasets.c.dataset_version_id == dataset_version_id
        )
        if self._conn.execute(exists).first() is None:
            self._conn.execute(
                insert(run_datasets).values(run_pk=run_pk, dataset_version_id=dataset_version_id)
            )

    def link_version_inputs(
        self, model: str, number: int, run_pk: int | None, dataset_version_ids: Sequence[int]
    ) -> None:
        version_id = self._conn.execute(
            select(versions.c.id)
            .join(models, models.c.id == versions.c.model_id)
            .where(models.c.name == model, versions.c.number == number)
        ).scalar_one()
        rows = [{"version_id": version_id, "run_pk": run_pk, "dataset_version_id": None}]
        rows = rows if run_pk is not None else []
        rows += [
            {"version_id": version_id, "run_pk": None, "dataset_version_id": d}
            for d in dataset_version_ids
        ]
        if rows:
            self._conn.execute(insert(version_inputs), rows)

    def lineage_edges(self) -> list[tuple[str, str]]:
        """Every edge of the lineage graph, as (from, to) node names: ``dataset:NAME@N``,
        ``run:ID``, ``model:NAME@N``."""
        edges: list[tuple[str, str]] = []
        used = (
            select(datasets.c.name, dataset_versions.c.number, runs.c.run_id)
            .select_from(run_datasets)
            .join(dataset_versions, dataset_versions.c.id == run_datasets.c.dataset_version_id)
            .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
            .join(runs, runs.c.id == run_datasets.c.run_pk)
        )
        edges += [(f"dataset:{n}@{v}", f"run:{r}") for n, v, r in self._conn.execute(used)]
        made = (
            select(runs.c.run_id, models.c.name, versions.c.number)
            .select_from(version_inputs)
            .join(runs, runs.c.id == version_inputs.c.run_pk)
            .join(versions, versions.c.id == version_inputs.c.version_id)
            .join(models, models.c.id == versions.c.model_id)
        )
        edges += [(f"run:{r}", f"model:{m}@{v}") for r, m, v in self._conn.execute(made)]
        fed = (
            select(datasets.c.name, dataset_versions.c.number, models.c.name, versions.c.number)
            .select_from(version_inputs)
            .join(dataset_versions, dataset_versions.c.id == version_inputs.c.dataset_version_id)
            .join(datasets, datasets.c.id == dataset_versions.c.dataset_id)
            .join(versions, versions.c.id == version_inputs.c.version_id)
            .join(models, models.c.id == versions.c.model_id)
        )
        edges += [(f"dataset:{d}@{n}", f"model:{m}@{v}") for d, n, m, v in self._conn.execute(fed)]
        return edges


def _dataset_version(row: Any, files: tuple[FileEntry, ...]) -> DatasetVersionRow:
    return DatasetVersionRow(
        id=int(row.id),
        dataset=row.dataset,
        number=int(row.number),
        semver=row.semver,
        digest=row.digest,
        source=row.source,
        steps=tuple(row.steps or ()),
        sampling=row.sampling,
        profiles=dict(row.profiles or {}),
        message=row.message,
        created_at=row.created_at,
        created_by=row.created_by,
        files=files,
    )
