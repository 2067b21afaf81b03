"""The seam between the SDK and a registry: in process, or over HTTP.

``Client`` speaks only to a ``Backend``; ``LocalBackend`` calls the services directly and
``HttpBackend`` (client/http.py) calls a ``modelkeep server``. One contract test suite
runs the SDK over both.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, BinaryIO, Protocol

from modelkeep.client.files import LocalFile, is_chunked, upload, upload_chunked
from modelkeep.client.governance import GovernanceBackend, LocalGovernance
from modelkeep.client.metrics_buffer import MetricPoint
from modelkeep.content.scanning import Piece, Scan
from modelkeep.domain.aliases import AliasEvent, Resolution
from modelkeep.domain.audit import AuditEvent, ChainReport
from modelkeep.domain.diff import VersionDiff
from modelkeep.domain.lineage import Lineage
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.recipes import Recipe
from modelkeep.domain.retention import RetentionPolicy
from modelkeep.domain.runs import NewRun, Run
from modelkeep.domain.versions import Model, Scalar, Version
from modelkeep.ports import Progress, report_skipped
from modelkeep.services import audit, datasets, maintenance, tracking
from modelkeep.services import files as file_service
from modelkeep.services import lineage as lineage_service
from modelkeep.services import retention as retention_service
from modelkeep.services import storage as storage_service
from modelkeep.services.audit import CheckpointResult, PublicKey
from modelkeep.services.maintenance import GcReport, VerifyReport
from modelkeep.services.registry import PushRequest, Registry
from modelkeep.services.storage import StorageReport

LOCAL_WRITERS = 4
"""Chunks hashed and written at once: each write waits on its fsync, so more threads
than cores keep the disk busy."""


class Backend(GovernanceBackend, Protocol):
    def close(self) -> None: ...
    def create_model(self, name: str, description: str, require: Iterable[str]) -> Model: ...
    def list_models(self) -> list[Model]: ...
    def get_model(self, name: str) -> Model: ...
    def check_push(self, model: str, request: PushRequest) -> None: ...
    def upload(self, files: Sequence[LocalFile], progress: Progress | None) -> list[FileEntry]: ...
    def missing(self, digests: Iterable[str]) -> set[str]:
        """Which of these files or blobs the store lacks."""
        ...

    def register_version(
        self, model: str, files: Sequence[FileEntry], request: PushRequest
    ) -> Version: ...
    def list_versions(self, model: str) -> list[Version]: ...
    def get_version(self, ref: str) -> Version: ...
    def resolve(self, ref: str, at: datetime | None = None) -> Resolution: ...
    def diff(self, old: str, new: str) -> VersionDiff: ...
    def archive(self, ref: str, reason: str | None = None) -> Version: ...
    def set_alias(
        self, ref: str, alias: str, reason: str | None = None, expect: int | None = None
    ) -> AliasEvent: ...
    def remove_alias(self, model: str, alias: str, reason: str | None = None) -> AliasEvent: ...
    def alias_history(self, model: str, alias: str | None = None) -> list[AliasEvent]: ...
    def promote(
        self, ref: str, to: str, reason: str | None = None, expect: int | None = None
    ) -> AliasEvent: ...
    def rollback(self, model: str, stage: str, reason: str | None = None) -> AliasEvent: ...
    def file_recipe(self, digest: str) -> Recipe: ...
    def open_blob(self, digest: str) -> BinaryIO: ...
    def fetch_chunk(self, digest: str, size: int) -> bytes: ...
    def verify(self, ref: str | None = None, sample: float | None = None) -> VerifyReport: ...
    def gc(self, dry_run: bool = False) -> GcReport: ...
    def audit_log(
        self, model: str | None = None, since: datetime | None = None
    ) -> list[AuditEvent]: ...
    def audit_verify(self) -> ChainReport: ...
    def audit_checkpoint(self) -> CheckpointResult: ...
    def audit_key(self) -> PublicKey: ...
    def storage(self, model: str | None = None) -> StorageReport: ...
    def retention(self, model: str) -> RetentionPolicy | None: ...
    def set_retention(
        self, model: str, keep_last: int | None, keep_days: int | None
    ) -> RetentionPolicy: ...
    def clear_retention(self, model: str) -> RetentionPolicy | None: ...

    # runs
    def put_bytes(self, data: bytes) -> str: ...
    def start_run(self, new: NewRun) -> Run: ...
    def get_run(self, run_id: str) -> Run: ...
    def list_runs(
        self, experiment: str | None = None, run_ids: Sequence[str] | None = None
    ) -> list[Run]: ...
    def log_params(self, run_id: str, params: Mapping[str, Scalar]) -> Run: ...
    def log_points(self, run_id: str, points: Sequence[MetricPoint]) -> None: ...
    def use_dataset(self, run_id: str, ref: str) -> Run: ...
    def log_artifact(self, run_id: str, entry: FileEntry) -> None: ...
    def end_run(self, run_id: str, status: str, error: str | None) -> Run: ...
    def finish_run(
        self, run_id: str, status: str, error: str | None, points: Sequence[MetricPoint]
    ) -> None: ...
    def metric_series(
        self, name: str, run_ids: Sequence[str], max_points: int
    ) -> list[tracking.Series]: ...
    # datasets and lineage
    def push_dataset(
        self, name: str, files: Sequence[FileEntry], request: datasets.DatasetPush
    ) -> datasets.DatasetVersion: ...
    def get_dataset_version(self, ref: str) -> datasets.DatasetVersion: ...
    def list_datasets(self) -> list[dict[str, Any]]: ...
    def list_dataset_versions(self, name: str) -> list[datasets.DatasetVersion]: ...
    def lineage(self, ref: str, direction: str) -> Lineage: ...


class LocalBackend(LocalGovernance):
    """The services in this process: an embedded store, or a database an operator reaches."""

    def __init__(self, registry: Registry, gc_grace_seconds: int) -> None:
        self.registry = registry
        self._grace = gc_grace_seconds

    def close(self) -> None:
        self.registry.close()

    def create_model(self, name: str, description: str, require: Iterable[str]) -> Model:
        return self.registry.create_model(name, description, require)

    def list_models(self) -> list[Model]:
        return self.registry.list_models()

    def get_model(self, name: str) -> Model:
        return self.registry.get_model(name)

    def check_push(self, model: str, request: PushRequest) -> None:
        self.registry.check_push(model, request)

    def missing(self, digests: Iterable[str]) -> set[str]:
        return self.registry.missing_blobs(digests)

    def upload(self, files: Sequence[LocalFile], progress: Progress | None) -> list[FileEntry]:
        """One pass per file: hashed while it streams (or its chunks go) into the store."""
        return [self._upload(f, progress) for f in files]

    def _upload(self, file: LocalFile, progress: Progress | None) -> FileEntry:
        if is_chunked(file):
            return upload_chunked(
                file,
                lambda piece: self._store_chunk(piece, progress),
                self._record,
                progress,
                workers=LOCAL_WRITERS,
            )
        return upload(file, lambda s, p: self.registry.put_blob(s, progress=p), progress)

    def _store_chunk(self, piece: Piece, progress: Progress | None) -> None:
        if not file_service.store_chunk(self.registry, piece.data, piece.digest):
            report_skipped(progress, len(piece.data))

    def _record(self, scan: Scan) -> str:
        # this process hashed the chunks and the file from the same bytes it stored
        return file_service.put_recipe(self.registry, scan.recipe()).digest

    def register_version(
        self, model: str, files: Sequence[FileEntry], request: PushRequest
    ) -> Version:
        return self.registry.register_version(model, files, request)

    def list_versions(self, model: str) -> list[Version]:
        return self.registry.list_versions(model)

    def get_version(self, ref: str) -> Version:
        return self.registry.get_version(ref)

    def resolve(self, ref: str, at: datetime | None = None) -> Resolution:
        return self.registry.resolve(ref, at)

    def diff(self, old: str, new: str) -> VersionDiff:
        return self.registry.diff(old, new)

    def archive(self, ref: str, reason: str | None = None) -> Version:
        return self.registry.archive(ref, reason)

    def set_alias(
        self, ref: str, alias: str, reason: str | None = None, expect: int | None = None
    ) -> AliasEvent:
        return self.registry.set_alias(ref, alias, reason, expect)

    def remove_alias(self, model: str, alias: str, reason: str | None = None) -> AliasEvent:
        return self.registry.remove_alias(model, alias, reason)

    def alias_history(self, model: str, alias: str | None = None) -> list[AliasEvent]:
        return self.registry.alias_history(model, alias)

    def promote(
        self, ref: str, to: str, reason: str | None = None, expect: int | None = None
    ) -> AliasEvent:
        return self.registry.promote(ref, to, reason, expect)

    def rollback(self, model: str, stage: str, reason: str | None = None) -> AliasEvent:
        return self.registry.rollback(model, stage, reason)

    def file_recipe(self, digest: str) -> Recipe:
        return file_service.file_recipe(self.registry, digest)

    def open_blob(self, digest: str) -> BinaryIO:
        return self.registry.open_blob(digest)

    def fetch_chunk(self, digest: str, size: int) -> bytes:
        return file_service.read_chunk(self.registry.open_blob, digest, size)

    def verify(self, ref: str | None = None, sample: float | None = None) -> VerifyReport:
        return maintenance.verify(self.registry, ref, sample)

    def gc(self, dry_run: bool = False) -> GcReport:
        return maintenance.gc(self.registry, grace_seconds=self._grace, dry_run=dry_run)

    def audit_log(
        self, model: str | None = None, since: datetime | None = None
    ) -> list[AuditEvent]:
        return self.registry.audit_log(model, since)

    def audit_verify(self) -> ChainReport:
        return self.registry.audit_verify()

    def audit_checkpoint(self) -> CheckpointResult:
        return audit.checkpoint(self.registry)

    def audit_key(self) -> PublicKey:
        return audit.public_key(self.registry)

    def storage(self, model: str | None = None) -> StorageReport:
        return storage_service.report(self.registry, model)

    def retention(self, model: str) -> RetentionPolicy | None:
        return retention_service.get_policy(self.registry, model)

    def set_retention(
        self, model: str, keep_last: int | None, keep_days: int | None
    ) -> RetentionPolicy:
        return retention_service.set_policy(self.registry, model, keep_last, keep_days)

    def clear_retention(self, model: str) -> RetentionPolicy | None:
        return retention_service.clear_policy(self.registry, model)

    # runs -------------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        return self.registry.put_blob(io.BytesIO(data)).digest

    def start_run(self, new: NewRun) -> Run:
        return tracking.start_run(self.registry, new)

    def get_run(self, run_id: str) -> Run:
        return tracking.get_run(self.registry, run_id)

    def list_runs(
        self, experiment: str | None = None, run_ids: Sequence[str] | None = None
    ) -> list[Run]:
        return tracking.list_runs(self.registry, experiment, run_ids)

    def log_params(self, run_id: str, params: Mapping[str, Scalar]) -> Run:
        return tracking.log_params(self.registry, run_id, params)

    def log_points(self, run_id: str, points: Sequence[MetricPoint]) -> None:
        tracking.log_points(self.registry, run_id, points)

    def use_dataset(self, run_id: str, ref: str) -> Run:
        return tracking.use_dataset(self.registry, run_id, ref)

    def log_artifact(self, run_id: str, entry: FileEntry) -> None:
        tracking.log_artifact(self.registry, run_id, entry)

    def end_run(self, run_id: str, status: str, error: str | None) -> Run:
        return tracking.end_run(self.registry, run_id, status, error)

    def finish_run(
        self, run_id: str, status: str, error: str | None, points: Sequence[MetricPoint]
    ) -> None:
        tracking.finish_run(self.registry, run_id, status, error, points)

    def metric_series(
        self, name: str, run_ids: Sequence[str], max_points: int
    ) -> list[tracking.Series]:
        return tracking.metric_series(self.registry, name, run_ids, max_points)

    # datasets and lineage -----------------------------------------------------------------

    def push_dataset(
        self, name: str, files: Sequence[FileEntry], request: datasets.DatasetPush
    ) -> datasets.DatasetVersion:
        return datasets.push(self.registry, name, files, request)

    def get_dataset_version(self, ref: str) -> datasets.DatasetVersion:
        return datasets.get_version(self.registry, ref)

    def list_datasets(self) -> list[dict[str, Any]]:
        return datasets.list_datasets(self.registry)

    def list_dataset_versions(self, name: str) -> list[datasets.DatasetVersion]:
        return datasets.list_versions(self.registry, name)

    def lineage(self, ref: str, direction: str) -> Lineage:
        return lineage_service.lineage(self.registry, ref, direction)
