"""Datasets: versions of data files stored content-addressed like model files (the same
blobs, chunks and dedup), with their source, preprocessing steps, sampling method and,
for CSV and Parquet files, a schema and profile computed by the client as it pushes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelkeep.domain import access
from modelkeep.domain.datasets import DatasetPush, DatasetVersion, match_version
from modelkeep.domain.manifest import FileEntry, Manifest
from modelkeep.domain.names import Ref, check_model_name, parse_ref
from modelkeep.domain.semver import SemVer
from modelkeep.domain.text import check_text
from modelkeep.errors import (
    DatasetNotFound,
    DuplicateVersion,
    EmptyPush,
    InvalidInput,
    SemverExists,
)
from modelkeep.ports import Transaction
from modelkeep.services.registry import Registry

MAX_STEPS = 100
MAX_PROFILE_BYTES = 4 * 1024 * 1024


def push(
    registry: Registry, name: str, files: Sequence[FileEntry], request: DatasetPush
) -> DatasetVersion:
    """Register uploaded files as the dataset's next version (the dataset is created on
    its first push). Same write ordering as a model version."""
    check_model_name(name)
    registry.authorize(access.TRACK, access.ANY_MODEL)
    if not files:
        raise EmptyPush("a dataset version needs at least one file")
    _check_request(request)
    manifest = Manifest.of(files)
    at = registry.clock()
    with registry.store.transaction(write=True) as tx:
        registry.check_files_stored(tx, manifest)
        dataset_id = tx.dataset_id(name)
        if dataset_id is None:
            dataset_id = tx.add_dataset(name, "", registry.actor, at)
            registry._audit(tx, "dataset.create", f"dataset:{name}", {}, at)
        _check_unique(tx, name, manifest.digest, request.semver)
        registry.blobs.put_bytes(manifest.canonical_bytes())
        fields = {
            "semver": request.semver,
            "source": request.source,
            "steps": list(request.steps),
            "sampling": request.sampling,
            "profiles": dict(request.profiles),
            "message": request.message,
        }
        number = tx.add_dataset_version(
            dataset_id, manifest.digest, manifest.files, fields, registry.actor, at
        )
        details = {"number": number, "digest": manifest.digest}
        registry._audit(tx, "dataset.push", f"dataset:{name}@{number}", details, at)
        tx.commit()
    return get_version(registry, f"{name}@{number}")


def _check_request(request: DatasetPush) -> None:
    for what, text in (
        ("the source", request.source),
        ("the sampling method", request.sampling),
        ("the message", request.message),
    ):
        check_text(what, text)
        if text is not None and len(text) > 10_000:
            raise InvalidInput(f"{what} is longer than 10000 characters")
    if len(request.steps) > MAX_STEPS:
        raise InvalidInput(f"more than {MAX_STEPS} preprocessing steps")
    for step in request.steps:
        check_text("a step", step)
        if not step or len(step) > 10_000:
            raise InvalidInput("a preprocessing step is 1 to 10000 characters")
    if request.semver is not None:
        SemVer.parse(request.semver)


def _check_unique(tx: Any, name: str, digest: str, semver: str | None) -> None:
    for row in tx.dataset_versions(name):
        if row.digest == digest:
            raise DuplicateVersion(
                f"these files are already registered as {name}@{row.number}",
                "use that version",
            )
        if semver is not None and row.semver == semver:
            raise SemverExists(f"{name}@{semver} exists already (version {row.number})")


def get_version(registry: Registry, ref: str) -> DatasetVersion:
    """``NAME@N``, ``NAME@SEMVER``, ``NAME@sha256:PREFIX`` or ``NAME@latest`` (or ``NAME``)."""
    parsed = parse_ref(ref, default_latest=True)
    registry.authorize(access.READ, access.ANY_MODEL)
    with registry.store.transaction() as tx:
        return _version(version_row(tx, parsed))


def version_row(tx: Transaction, parsed: Ref) -> Any:
    """The row of the dataset version ``parsed`` names; DatasetNotFound if none."""
    rows = tx.dataset_versions(parsed.model)
    if not rows:
        raise DatasetNotFound(f"there is no dataset {parsed.model!r}")
    found = match_version(rows, parsed.kind, parsed.value)
    if found is None:
        raise DatasetNotFound(f"dataset {parsed.model!r} has no version {parsed.value!r}")
    return found


def list_versions(registry: Registry, name: str) -> list[DatasetVersion]:
    check_model_name(name)
    registry.authorize(access.READ, access.ANY_MODEL)
    with registry.store.transaction() as tx:
        rows = tx.dataset_versions(name)
    if not rows:
        raise DatasetNotFound(f"there is no dataset {name!r}")
    return [_version(r) for r in rows]


def list_datasets(registry: Registry) -> list[dict[str, Any]]:
    registry.authorize(access.READ, access.ANY_MODEL)
    with registry.store.transaction() as tx:
        return [{"name": n, "versions": c} for n, c in tx.list_dataset_names()]


def _version(row: Any) -> DatasetVersion:
    return DatasetVersion(
        row.dataset,
        row.number,
        row.semver,
        row.digest,
        row.source,
        row.steps,
        row.sampling,
        row.profiles,
        row.message,
        row.created_at,
        row.created_by,
        row.files,
    )
