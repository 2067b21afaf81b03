"""Datasets: versions of data files stored content-addressed like model files (the same
blobs, chunks and dedup), with their source, preprocessing steps, sampling method and,
for CSV and Parquet files, a schema and profile computed by the client as it pushes.

A dataset is its own scope (``dataset:NAME``): pushing a version (the first one creates
the dataset) needs the contributor role on it, reading it a reader's, or a global one."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from modelkeep.domain import access
from modelkeep.domain.access import dataset_scope
from modelkeep.domain.datasets import DatasetPush, DatasetVersion, match_version
from modelkeep.domain.events import EventKind
from modelkeep.domain.manifest import FileEntry, Manifest, check_new_paths
from modelkeep.domain.names import Ref, check_model_name, parse_ref
from modelkeep.domain.semver import SemVer
from modelkeep.domain.text import check_text
from modelkeep.domain.versions import check_if_exists, duplicate
from modelkeep.errors import (
    DatasetNotFound,
    EmptyPush,
    InvalidInput,
    SemverExists,
)
from modelkeep.ports.tracking import DatasetVersionRow
from modelkeep.ports.unit_of_work import Transaction
from modelkeep.services import scopes, versions
from modelkeep.services.context import ServiceContext

MAX_STEPS = 100
MAX_PROFILE_BYTES = 4 * 1024 * 1024


def push(
    ctx: ServiceContext, name: str, files: Sequence[FileEntry], request: DatasetPush
) -> DatasetVersion:
    """Register uploaded files as the dataset's next version (the dataset is created on
    its first push). Same write ordering as a model version."""
    check_model_name(name)
    ctx.authorize(access.TRACK, dataset_scope(name))
    if not files:
        raise EmptyPush("a dataset version needs at least one file")
    _check_request(request)
    check_if_exists(request.if_exists)
    manifest = Manifest.of(files)
    check_new_paths(f.path for f in manifest.files)
    at = ctx.clock()
    with ctx.store.transaction(write=True) as tx:
        versions.check_files_stored(ctx, tx, manifest)
        scopes.check_usable(ctx, tx, (e.digest for e in manifest.files))
        dataset_id = tx.datasets.id_of(name)
        if dataset_id is None:
            dataset_id = tx.datasets.add(name, "", ctx.actor, at)
            ctx.record_event(tx, EventKind.DATASET_CREATE, f"dataset:{name}", {}, at)
        same = _check_unique(tx, name, manifest.digest, request.semver)
        if same is not None:
            return _existing(same, request)
        ctx.blobs.put_bytes(manifest.canonical_bytes())
        fields = {
            "semver": request.semver,
            "source": request.source,
            "steps": list(request.steps),
            "sampling": request.sampling,
            "profiles": dict(request.profiles),
            "message": request.message,
        }
        number = tx.datasets.add_version(
            dataset_id, manifest.digest, manifest.files, fields, ctx.actor, at
        )
        details = {"number": number, "digest": manifest.digest}
        ctx.record_event(tx, EventKind.DATASET_PUSH, f"dataset:{name}@{number}", details, at)
        tx.commit()
    return get_version(ctx, f"{name}@{number}")


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


def _check_unique(tx: Any, name: str, digest: str, semver: str | None) -> DatasetVersionRow | None:
    """The version with these very files (and this semver, if one is given), if any;
    SemverExists if another version has the semver, DuplicateVersion if one has the
    files under another semver."""
    rows = tx.datasets.versions(name)
    for row in rows:
        if row.digest == digest and semver in (None, row.semver):
            return row  # type: ignore[no-any-return]
    for row in rows:
        if semver is not None and row.semver == semver:
            raise SemverExists(f"{name}@{semver} exists already (version {row.number})")
        if row.digest == digest:
            raise duplicate(f"{name}@{row.number}", digest, dataset=True)
    return None


def _existing(row: DatasetVersionRow, request: DatasetPush) -> DatasetVersion:
    """A push of files registered as ``row`` already: that version if the push asked
    to reuse it, else the refusal, which names it."""
    if request.if_exists != "reuse":
        raise duplicate(f"{row.dataset}@{row.number}", row.digest, dataset=True)
    return replace(row.version(), reused=True)


def get_version(ctx: ServiceContext, ref: str) -> DatasetVersion:
    """``NAME@N``, ``NAME@SEMVER``, ``NAME@sha256:PREFIX`` or ``NAME@latest`` (or ``NAME``)."""
    parsed = parse_ref(ref, default_latest=True)
    ctx.authorize(access.READ, dataset_scope(parsed.model))
    with ctx.store.transaction() as tx:
        return version_row(tx, parsed).version()


def version_row(tx: Transaction, parsed: Ref) -> DatasetVersionRow:
    """The row of the dataset version ``parsed`` names; DatasetNotFound if none."""
    rows = tx.datasets.versions(parsed.model)
    if not rows:
        raise DatasetNotFound(f"there is no dataset {parsed.model!r}")
    found = match_version(rows, parsed.kind, parsed.value)
    if found is None:
        raise DatasetNotFound(f"dataset {parsed.model!r} has no version {parsed.value!r}")
    return found


def list_versions(ctx: ServiceContext, name: str) -> list[DatasetVersion]:
    check_model_name(name)
    ctx.authorize(access.READ, dataset_scope(name))
    with ctx.store.transaction() as tx:
        rows = tx.datasets.versions(name)
    if not rows:
        raise DatasetNotFound(f"there is no dataset {name!r}")
    return [r.version() for r in rows]


def list_datasets(ctx: ServiceContext) -> list[dict[str, Any]]:
    """The datasets the actor may read."""
    ctx.authorize(access.READ, access.ANY_MODEL)
    with ctx.store.transaction() as tx:
        found = tx.datasets.names()
    return [{"name": n, "versions": c} for n, c in found if ctx.can(access.READ, dataset_scope(n))]
