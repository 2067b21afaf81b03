"""The in-process transport: the SDK calling the services directly, on an embedded
store or a database an operator reaches (``connect()`` of a path).

This is the one client module that imports the services and the composition root, so
it is loaded only when a local registry is opened: ``import modelkeep`` and a client
over HTTP never import SQLAlchemy or boto3.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO

from modelkeep.attest.serving import BuiltBundle
from modelkeep.bootstrap import missing_store, open_context
from modelkeep.client.files import LocalFile, is_chunked, upload, upload_chunked
from modelkeep.client.metrics_buffer import MetricPoint
from modelkeep.config import Settings
from modelkeep.content.scanning import Piece, Scan
from modelkeep.domain.aliases import AliasEvent, Resolution
from modelkeep.domain.audit import (
    AuditEvent,
    AuditHead,
    ChainReport,
    CheckpointEntry,
    CheckpointResult,
    PublicKey,
)
from modelkeep.domain.datasets import DatasetPush, DatasetVersion
from modelkeep.domain.deployments import DeploymentChange, DesiredState
from modelkeep.domain.diff import VersionDiff
from modelkeep.domain.governance import (
    Approval,
    Attestation,
    CheckResult,
    Evidence,
    GateResult,
    NewCheckResult,
    PolicyRecord,
    Promotion,
)
from modelkeep.domain.lineage import Lineage
from modelkeep.domain.maintenance import GcReport, VerifyReport
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.recipes import Recipe
from modelkeep.domain.retention import RetentionPolicy
from modelkeep.domain.runs import NewRun, Run, Series
from modelkeep.domain.storage_report import StorageReport
from modelkeep.domain.users import IssuedToken, Token, User
from modelkeep.domain.versions import Model, PushRequest, Scalar, Version
from modelkeep.errors import StoreNotFound
from modelkeep.ports.blobs import Progress, report_skipped
from modelkeep.services import (
    admin,
    aliases,
    attestations,
    audit,
    bundles,
    cards,
    datasets,
    governance,
    maintenance,
    models,
    tracking,
    versions,
)
from modelkeep.services import deployments as deployment_service
from modelkeep.services import files as file_service
from modelkeep.services import lineage as lineage_service
from modelkeep.services import retention as retention_service
from modelkeep.services import storage as storage_service
from modelkeep.services.context import ServiceContext

LOCAL_WRITERS = 4
"""Chunks hashed and written at once: each write waits on its fsync, so more threads
than cores keep the disk busy."""


def open_local(settings: Settings, *, create: bool = True) -> LocalBackend:
    """The store ``settings.uri`` names, opened in this process. A missing embedded store
    is made when ``create``, else refused (``store_not_found``): a read never makes one."""
    missing = missing_store(settings)
    if missing is not None and not create:
        raise StoreNotFound(f"no store at {missing}")
    backend = LocalBackend(open_context(settings), settings.gc_grace_seconds)
    backend.created_store = missing
    return backend


class LocalGovernance:
    ctx: ServiceContext

    def set_policy(self, document: str) -> PolicyRecord:
        return governance.set_policy(self.ctx, document)

    def policy(self) -> PolicyRecord | None:
        return governance.current_policy(self.ctx)

    def policy_history(self) -> list[PolicyRecord]:
        return governance.policy_history(self.ctx)

    def model_policy(self, model: str) -> dict[str, Any]:
        return governance.effective_policy(self.ctx, model)

    def record_check(self, ref: str, dataset: str | None, result: NewCheckResult) -> CheckResult:
        return governance.record_check(self.ctx, ref, dataset, result)

    def checks(self, ref: str) -> list[CheckResult]:
        return governance.list_checks(self.ctx, ref)

    def decide(
        self,
        ref: str,
        stage: str,
        decision: str,
        comment: str | None,
        expect_digest: str | None,
    ) -> Approval:
        return governance.review(self.ctx, ref, stage, decision, comment, expect_digest)

    def approvals(self, ref: str) -> list[Approval]:
        return governance.list_approvals(self.ctx, ref)

    def gate(self, ref: str, stage: str, promoter: str | None = None) -> GateResult:
        return governance.gate(self.ctx, ref, stage, promoter)

    def promotion(
        self,
        ref: str,
        to: str,
        reason: str | None = None,
        expect: int | None = None,
        override: bool = False,
    ) -> Promotion:
        return governance.promote(self.ctx, ref, to, reason, expect, override)

    def attestations(self, ref: str) -> list[Attestation]:
        return attestations.list_attestations(self.ctx, ref)

    def evidence(self, ref: str, stage: str | None = None) -> Evidence:
        return attestations.evidence(self.ctx, ref, stage)

    def card(self, ref: str, fmt: str = "md") -> str:
        return cards.card(self.ctx, ref, fmt)

    def governance_report(self, model: str | None = None, fmt: str = "md") -> str:
        return cards.governance_report(self.ctx, model, fmt)

    def build_bundle(self, ref: str, out: BinaryIO) -> BuiltBundle:
        return bundles.build(self.ctx, ref, out)

    def openssf_signature(self, ref: str) -> bytes:
        return bundles.openssf_signature(self.ctx, ref)

    def openssf_key(self) -> str:
        return bundles.openssf_public_key(self.ctx)


class LocalUserAdmin:
    """``services.admin`` on the open registry, as its operator."""

    ctx: ServiceContext

    def create_user(
        self, name: str, role: str, model: str | None, expires_in: timedelta | None
    ) -> tuple[User, IssuedToken]:
        return admin.create_user(self.ctx, name, role, model, expires_in)

    def list_users(self, include_deleted: bool = False) -> list[User]:
        return admin.list_users(self.ctx, include_deleted)

    def grant(self, name: str, role: str, model: str | None, **scope: str | None) -> User:
        return admin.grant(self.ctx, name, role, model, **scope)

    def revoke_grant(self, name: str, role: str, model: str | None, **scope: str | None) -> User:
        return admin.revoke_grant(self.ctx, name, role, model, **scope)

    def set_user_disabled(self, name: str, disabled: bool) -> User:
        return admin.set_disabled(self.ctx, name, disabled)

    def delete_user(self, name: str) -> User:
        return admin.delete_user(self.ctx, name)

    def create_token(
        self, name: str, expires_in: timedelta | None, label: str | None
    ) -> IssuedToken:
        return admin.create_token(self.ctx, name, expires_in, label)

    def list_tokens(self, name: str | None) -> list[Token]:
        return admin.list_tokens(self.ctx, name)

    def revoke_token(self, token: int | str) -> Token:
        return admin.revoke_token(self.ctx, token)


class LocalDeployments:
    ctx: ServiceContext

    def deploy(
        self,
        ref: str,
        env: str,
        canary: int | None = None,
        ab: int | None = None,
        sticky: str | None = None,
        shadow: int | None = None,
        expect_revision: int | None = None,
        reason: str | None = None,
    ) -> DeploymentChange:
        return deployment_service.deploy(
            self.ctx,
            ref,
            env,
            canary=canary,
            ab=ab,
            sticky=sticky,
            shadow=shadow,
            expect_revision=expect_revision,
            reason=reason,
        )

    def promote_deployment(
        self, model: str, env: str, expect_revision: int | None = None, reason: str | None = None
    ) -> DeploymentChange:
        return deployment_service.promote(
            self.ctx, model, env, expect_revision=expect_revision, reason=reason
        )

    def rollback_deployment(
        self, model: str, env: str, expect_revision: int | None = None, reason: str | None = None
    ) -> DeploymentChange:
        return deployment_service.rollback(
            self.ctx, model, env, expect_revision=expect_revision, reason=reason
        )

    def deployment(self, model: str, env: str) -> DesiredState:
        return deployment_service.status(self.ctx, model, env)

    def deployment_history(self, model: str, env: str) -> list[DeploymentChange]:
        return deployment_service.history(self.ctx, model, env)

    def deployments(self, env: str) -> list[DesiredState]:
        return deployment_service.feed(self.ctx, env)


class LocalBackend(LocalGovernance, LocalDeployments, LocalUserAdmin):
    """The services in this process: an embedded store, or a database an operator reaches."""

    def __init__(self, ctx: ServiceContext, gc_grace_seconds: int) -> None:
        self.ctx = ctx
        self._grace = gc_grace_seconds
        self.created_store: Path | None = None
        """The directory of the embedded store that opening this backend made."""

    def close(self) -> None:
        self.ctx.close()

    def create_model(self, name: str, description: str, require: Iterable[str]) -> Model:
        return models.create_model(self.ctx, name, description, require)

    def list_models(self) -> list[Model]:
        return models.list_models(self.ctx)

    def get_model(self, name: str) -> Model:
        return models.get_model(self.ctx, name)

    def check_push(self, model: str, request: PushRequest) -> None:
        versions.check_push(self.ctx, model, request)

    def missing(self, digests: Iterable[str]) -> set[str]:
        return versions.missing_blobs(self.ctx, digests)

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
        return upload(file, lambda s, p: versions.put_blob(self.ctx, s, progress=p), progress)

    def _store_chunk(self, piece: Piece, progress: Progress | None) -> None:
        if not file_service.store_chunk(self.ctx, piece.data, piece.digest):
            report_skipped(progress, len(piece.data))

    def _record(self, scan: Scan) -> str:
        # this process hashed the chunks and the file from the same bytes it stored
        return file_service.put_recipe(self.ctx, scan.recipe()).digest

    def register_version(
        self, model: str, files: Sequence[FileEntry], request: PushRequest
    ) -> Version:
        return versions.register_version(self.ctx, model, files, request)

    def list_versions(self, model: str) -> list[Version]:
        return versions.list_versions(self.ctx, model)

    def get_version(self, ref: str) -> Version:
        return versions.get_version(self.ctx, ref)

    def resolve(self, ref: str, at: datetime | None = None) -> Resolution:
        return versions.resolve(self.ctx, ref, at)

    def diff(self, old: str, new: str) -> VersionDiff:
        return versions.diff(self.ctx, old, new)

    def archive(self, ref: str, reason: str | None = None) -> Version:
        return versions.archive(self.ctx, ref, reason)

    def unarchive(self, ref: str, reason: str | None = None) -> Version:
        return versions.unarchive(self.ctx, ref, reason)

    def set_alias(
        self, ref: str, alias: str, reason: str | None = None, expect: int | None = None
    ) -> AliasEvent:
        return aliases.set_alias(self.ctx, ref, alias, reason, expect)

    def remove_alias(self, model: str, alias: str, reason: str | None = None) -> AliasEvent:
        return aliases.remove_alias(self.ctx, model, alias, reason)

    def alias_history(self, model: str, alias: str | None = None) -> list[AliasEvent]:
        return aliases.alias_history(self.ctx, model, alias)

    def promote(
        self, ref: str, to: str, reason: str | None = None, expect: int | None = None
    ) -> AliasEvent:
        return governance.promote(self.ctx, ref, to, reason, expect).event

    def rollback(self, model: str, stage: str, reason: str | None = None) -> AliasEvent:
        return aliases.rollback(self.ctx, model, stage, reason)

    def file_recipe(self, digest: str) -> Recipe:
        return file_service.file_recipe(self.ctx, digest)

    def open_blob(self, digest: str) -> BinaryIO:
        return versions.open_blob(self.ctx, digest)

    def fetch_chunk(self, digest: str, size: int) -> bytes:
        return file_service.read_chunk(lambda d: versions.open_blob(self.ctx, d), digest, size)

    def verify(self, ref: str | None = None, sample: float | None = None) -> VerifyReport:
        return maintenance.verify(self.ctx, ref, sample)

    def gc(self, dry_run: bool = False) -> GcReport:
        return maintenance.gc(self.ctx, grace_seconds=self._grace, dry_run=dry_run)

    def audit_log(
        self, model: str | None = None, since: datetime | None = None
    ) -> list[AuditEvent]:
        return audit.audit_log(self.ctx, model, since)

    def audit_verify(self) -> ChainReport:
        return audit.verify(self.ctx)

    def audit_checkpoint(self) -> CheckpointResult:
        return audit.checkpoint(self.ctx)

    def audit_key(self) -> PublicKey:
        return audit.public_key(self.ctx)

    def audit_head(self) -> AuditHead:
        return audit.head(self.ctx)

    def audit_checkpoints(self) -> list[CheckpointEntry]:
        return audit.checkpoints(self.ctx)

    def audit_checkpoint_file(self, seq: int) -> bytes:
        return audit.checkpoint_file(self.ctx, seq)[1]

    def storage(self, model: str | None = None) -> StorageReport:
        return storage_service.report(self.ctx, model)

    def retention(self, model: str) -> RetentionPolicy | None:
        return retention_service.get_policy(self.ctx, model)

    def set_retention(
        self, model: str, keep_last: int | None, keep_days: int | None
    ) -> RetentionPolicy:
        return retention_service.set_policy(self.ctx, model, keep_last, keep_days)

    def clear_retention(self, model: str) -> RetentionPolicy | None:
        return retention_service.clear_policy(self.ctx, model)

    # runs -------------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> str:
        return versions.put_blob(self.ctx, io.BytesIO(data)).digest

    def start_run(self, new: NewRun) -> Run:
        return tracking.start_run(self.ctx, new)

    def get_run(self, run_id: str) -> Run:
        return tracking.get_run(self.ctx, run_id)

    def list_runs(
        self, experiment: str | None = None, run_ids: Sequence[str] | None = None
    ) -> list[Run]:
        return tracking.list_runs(self.ctx, experiment, run_ids)

    def log_params(self, run_id: str, params: Mapping[str, Scalar]) -> Run:
        return tracking.log_params(self.ctx, run_id, params)

    def log_points(self, run_id: str, points: Sequence[MetricPoint]) -> None:
        tracking.log_points(self.ctx, run_id, points)

    def use_dataset(self, run_id: str, ref: str) -> Run:
        return tracking.use_dataset(self.ctx, run_id, ref)

    def log_artifact(self, run_id: str, entry: FileEntry) -> None:
        tracking.log_artifact(self.ctx, run_id, entry)

    def end_run(self, run_id: str, status: str, error: str | None) -> Run:
        return tracking.end_run(self.ctx, run_id, status, error)

    def finish_run(
        self, run_id: str, status: str, error: str | None, points: Sequence[MetricPoint]
    ) -> None:
        tracking.finish_run(self.ctx, run_id, status, error, points)

    def metric_series(self, name: str, run_ids: Sequence[str], max_points: int) -> list[Series]:
        return tracking.metric_series(self.ctx, name, run_ids, max_points)

    # datasets and lineage -----------------------------------------------------------------

    def push_dataset(
        self, name: str, files: Sequence[FileEntry], request: DatasetPush
    ) -> DatasetVersion:
        return datasets.push(self.ctx, name, files, request)

    def get_dataset_version(self, ref: str) -> DatasetVersion:
        return datasets.get_version(self.ctx, ref)

    def list_datasets(self) -> list[dict[str, Any]]:
        return datasets.list_datasets(self.ctx)

    def list_dataset_versions(self, name: str) -> list[DatasetVersion]:
        return datasets.list_versions(self.ctx, name)

    def lineage(self, ref: str, direction: str) -> Lineage:
        return lineage_service.lineage(self.ctx, ref, direction)
