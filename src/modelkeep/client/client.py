"""``modelkeep.connect()`` and the ``Client`` it returns."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from modelkeep.client import files, runs
from modelkeep.client.metrics_buffer import check_metric
from modelkeep.config import Settings
from modelkeep.content import hashcache
from modelkeep.domain import integrity
from modelkeep.domain.datasets import DatasetPush, DatasetVersion
from modelkeep.domain.digest import sha256_digest
from modelkeep.domain.manifest import FileEntry, Manifest
from modelkeep.domain.names import STAGES, RefKind, parse_ref
from modelkeep.domain.provenance import check_finite_metrics
from modelkeep.domain.versions import PushRequest, VersionMetadata
from modelkeep.errors import (
    BlobNotFound,
    InvalidInput,
    ModelExists,
    ModelkeepError,
    VersionArchived,
)

if TYPE_CHECKING:
    # types only: the transports (client/local.py, client/http.py) load in connect()
    from modelkeep.attest.bundle import BundleReport
    from modelkeep.attest.serving import BuiltBundle, BundleCheck
    from modelkeep.client.backend import Backend
    from modelkeep.domain.aliases import AliasEvent, Resolution
    from modelkeep.domain.audit import (
        AuditEvent,
        AuditHead,
        ChainReport,
        CheckpointEntry,
        CheckpointResult,
        PublicKey,
    )
    from modelkeep.domain.deployments import DeploymentChange, DesiredState
    from modelkeep.domain.diff import VersionDiff
    from modelkeep.domain.governance import (
        Approval,
        Attestation,
        CheckResult,
        GateResult,
        NewCheckResult,
        PolicyRecord,
        Promotion,
    )
    from modelkeep.domain.lineage import Lineage
    from modelkeep.domain.maintenance import GcReport, VerifyReport
    from modelkeep.domain.retention import RetentionPolicy
    from modelkeep.domain.runs import Run, Series
    from modelkeep.domain.semver import Bump
    from modelkeep.domain.storage_report import StorageReport
    from modelkeep.domain.users import IssuedToken, Token, User
    from modelkeep.domain.versions import Model, Scalar, Version
    from modelkeep.ports.blobs import Progress
    from modelkeep.serving.predictor import Predictor

EARLY_CHECK_BYTES = 32 * 1024 * 1024
"""Pushes this large are checked before upload; registration checks every push again."""


@dataclass(frozen=True)
class PullResult:
    version: Version
    dest: str
    written: tuple[str, ...]
    unchanged: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.version.model,
            "number": self.version.number,
            "digest": self.version.digest,
            "dest": self.dest,
            "written": list(self.written),
            "unchanged": list(self.unchanged),
        }


def connect(
    uri: str | None = None,
    *,
    token: str | None = None,
    settings: Settings | None = None,
    create: bool = True,
) -> Client:
    """Open a registry named by ``uri``, ``MODELKEEP_URI`` or ``./.modelkeep``: a directory
    (the embedded store) or the ``http(s)://`` URL of a ``modelkeep server``, which
    ``token`` (or ``MODELKEEP_TOKEN``) authenticates to. A directory with no store is made
    one, unless ``create=False`` (then ``StoreNotFound``); ``Client.created_store`` says
    whether it was."""
    if settings is None:
        settings = Settings.from_env(os.environ, uri=uri)
    elif uri is not None:
        settings = settings.replace(uri=uri)
    if settings.uri.startswith(("http://", "https://")):
        from modelkeep.client.http import HttpBackend  # httpx, only for a server

        token = token or settings.token or None
        return Client(HttpBackend(settings.uri, token), settings)
    from modelkeep.client.local import open_local  # the store: SQLAlchemy, maybe boto3

    backend = open_local(settings, create=create)
    client = Client(backend, settings)
    client.created_store = backend.created_store
    return client


class Client:
    """The registry's verbs. Errors are the classes of ``modelkeep.errors``."""

    def __init__(self, backend: Backend, settings: Settings) -> None:
        self._backend = backend
        self.settings = settings
        self._hashes = hashcache.HashCache(settings.hash_cache_dir)
        self._run_blobs: set[str] = set()
        self.created_store: Path | None = None
        """The embedded store's directory, when opening this client made it."""

    def close(self) -> None:
        self._backend.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # models

    def create_model(
        self,
        name: str,
        *,
        description: str = "",
        require: Iterable[str] = (),
        exist_ok: bool = False,
    ) -> Model:
        """Create the model. With ``exist_ok``, a model that exists already is returned as
        it is (a script can run again), unless it requires other fields: that is refused."""
        try:
            return self._backend.create_model(name, description, require)
        except ModelExists:
            if not exist_ok:
                raise
        found = self._backend.get_model(name)
        if set(found.required) != set(require):
            raise ModelExists(
                f"model {name!r} exists with required fields {sorted(found.required)}, "
                f"not {sorted(set(require))}",
                "create it under another name, or drop exist_ok to see the error",
            ) from None
        return found

    def list_models(self) -> list[Model]:
        return self._backend.list_models()

    def get_model(self, name: str) -> Model:
        return self._backend.get_model(name)

    # versions

    def push(
        self,
        model: str,
        paths: Sequence[str | os.PathLike[str]],
        *,
        version: str | None = None,
        bump: Bump | None = None,
        params: Mapping[str, Scalar] | None = None,
        metrics: Mapping[str, float] | None = None,
        datasets: Iterable[str] = (),
        commit: str | None = None,
        seed: int | None = None,
        run: str | None = None,
        meta: Mapping[str, Scalar] | None = None,
        message: str | None = None,
        progress: Progress | None = None,
        if_exists: Literal["fail", "reuse"] = "fail",
        signature: Mapping[str, Any] | None = None,
    ) -> Version:
        """Store the files and register them as the model's next version.

        Files registered as a version already: ``if_exists="fail"`` raises
        DuplicateVersion (its ``details`` name that version); ``"reuse"`` returns that
        version, with ``reused`` set, and registers nothing.

        The version's signature (what ``load(...).predict`` takes and gives) is
        ``signature`` if given, else the one its ``modelkeep.yaml`` declares, else the one
        read from its ONNX or skops model (docs/serving.md)."""
        local = files.collect(paths)
        if signature is None:
            signature = _signature_of(local)
        metadata = VersionMetadata(
            params or {}, metrics or {}, tuple(datasets), commit, seed, run, meta or {}, signature
        ).validated()  # here too: JSON cannot carry NaN or infinity to a server
        request = PushRequest(metadata, version, bump, message, if_exists)
        if sum(f.size for f in local) >= EARLY_CHECK_BYTES:
            self._backend.check_push(model, request)  # fail before uploading gigabytes
        try:
            entries = self._upload(local, progress)
            return self._backend.register_version(model, entries, request)
        except BlobNotFound:
            # A gc swept a blob or chunk the push relied on (one it found stored, or one
            # it uploaded longer ago than the grace period): everything the store lacks
            # now is uploaded again, once; a second failure is reported.
            entries = self._backend.upload(local, None)
            return self._backend.register_version(model, entries, request)

    def _upload(
        self, local: Sequence[files.LocalFile], progress: Progress | None
    ) -> list[FileEntry]:
        """Files this machine pushed before and that did not change are not read again,
        if the store still has them; the others are uploaded and remembered."""
        known = {f.path: digest for f in local if (digest := self._hashes.lookup(f.source))}
        if known:
            gone = self._backend.missing(set(known.values()))
            known = {path: d for path, d in known.items() if d not in gone}
        todo = [f for f in local if f.path not in known]
        keys = {f.path: hashcache.stat_key(f.source) for f in todo}
        uploaded = {e.path: e for e in self._backend.upload(todo, progress)}
        for f in todo:
            self._hashes.remember(f.source, keys[f.path], uploaded[f.path].digest)
        reused = {
            f.path: FileEntry(f.path, f.size, known[f.path]) for f in local if f.path in known
        }
        if progress is not None and reused:
            from modelkeep.ports.blobs import report_skipped

            progress(sum(e.size for e in reused.values()))
            report_skipped(progress, sum(e.size for e in reused.values()))
        return [uploaded.get(f.path) or reused[f.path] for f in local]

    def versions(self, model: str) -> list[Version]:
        return self._backend.list_versions(model)

    def load(self, ref: str, *, cache_dir: str | os.PathLike[str] | None = None) -> Predictor:
        """The version loaded for inference: ``load("fraud@production").predict(df)``.

        Its files are pulled into a cache keyed by its digest (``cache_dir``, else
        ``MODELKEEP_CACHE_DIR``; off: a temporary directory), each verified against its
        digest as it is pulled and each time the cache is used. ONNX and skops
        (scikit-learn, trusted types only) models load; a Python predictor declared in
        the version's ``modelkeep.yaml`` only where the policy allows code models;
        pickle never. ``predict`` checks its inputs against ``.signature``."""
        from modelkeep.client.serving import load_version

        version = self._backend.get_version(ref)
        version.check_files_kept()
        self._check_file_list(version)
        root = Path(cache_dir) if cache_dir is not None else self.settings.hash_cache_dir

        def code_allowed() -> bool:
            rules = self._backend.model_policy(version.model).get("rules", {})
            return bool(rules.get("serving", {}).get("allow_code", False))

        return load_version(self._backend, version, root, code_allowed=code_allowed)

    def show(self, ref: str) -> Version:
        return self._backend.get_version(ref)

    def resolve(self, ref: str, *, at: datetime | None = None) -> Resolution:
        return self._backend.resolve(ref, at)

    def pull(
        self,
        ref: str,
        dest: str | os.PathLike[str],
        *,
        force: bool = False,
        progress: Progress | None = None,
    ) -> PullResult:
        """Write the version's files into ``dest``, each verified against its digest."""
        version = self._backend.get_version(ref)
        version.check_files_kept()  # a purged version keeps its metadata, not its files
        self._check_file_list(version)
        target = Path(dest)
        plan = files.plan_pull(version.files, target, force=force)
        files.write_files(plan, target, self._backend, progress, version.ref)
        return PullResult(
            version,
            str(target),
            tuple(f.path for f in plan.write),
            tuple(f.path for f in plan.unchanged),
        )

    def _check_file_list(self, version: Version) -> None:
        """Refuse a file list that is not the version's manifest (whose sha256 is the
        version digest) before writing a byte: each file is verified against the digest
        its row gives, so a swapped row would otherwise deliver another file, verified."""
        listed = Manifest.of(version.files)
        if listed.digest == version.digest:
            return
        try:
            with self._backend.open_blob(version.digest) as stream:
                recorded = Manifest.parse(stream.read())
            found = integrity.file_mismatches(version, recorded)
        except (ModelkeepError, ValueError, KeyError, TypeError):
            found = []
        found = found or [
            integrity.Mismatch(
                "version",
                version.ref,
                "file list digest",
                version.digest,
                listed.digest,
                integrity.MANIFEST_BLOB,
            )
        ]
        integrity.refuse(found)

    def diff(self, old: str, new: str) -> VersionDiff:
        return self._backend.diff(old, new)

    def archive(self, ref: str, *, reason: str | None = None) -> Version:
        return self._backend.archive(ref, reason)

    def unarchive(self, ref: str, *, reason: str | None = None) -> Version:
        """Make an archived version usable again (audited; an active one is returned as
        it is)."""
        return self._backend.unarchive(ref, reason)

    # aliases and stages

    def set_alias(
        self, ref: str, alias: str, *, reason: str | None = None, expect: int | None = None
    ) -> AliasEvent:
        """Point ``alias`` at ``ref``; with ``expect`` (its current number, 0 for unset)
        only if nobody moved it meanwhile (else AliasMoved)."""
        return self._backend.set_alias(ref, alias, reason, expect)

    def remove_alias(self, model: str, alias: str, *, reason: str | None = None) -> AliasEvent:
        return self._backend.remove_alias(model, alias, reason)

    def alias_history(self, model: str, alias: str | None = None) -> list[AliasEvent]:
        return self._backend.alias_history(model, alias)

    def promote(
        self,
        ref: str,
        *,
        to: str,
        reason: str | None = None,
        expect: int | None = None,
        override: bool = False,
    ) -> AliasEvent:
        """Move stage ``to`` to ``ref`` if the policy is met (else PolicyNotMet listing
        every unmet rule); the move is attested (``promotion`` returns the attestation)."""
        return self.promotion(ref, to=to, reason=reason, expect=expect, override=override).event

    def rollback(self, model: str, *, stage: str, reason: str | None = None) -> AliasEvent:
        return self._backend.rollback(model, stage, reason)

    # deployments (docs/serving.md)

    def deploy(
        self,
        ref: str,
        *,
        env: str,
        canary: int | None = None,
        ab: int | None = None,
        sticky: str | None = None,
        shadow: int | None = None,
        expect_revision: int | None = None,
        reason: str | None = None,
    ) -> DeploymentChange:
        """Deploy ``ref`` to ``env``: as the stable version, or as a candidate beside it
        (``canary=PCT``, ``ab=PCT`` with ``sticky="header:NAME"``, ``shadow=PCT``). With
        ``expect_revision`` only if nobody changed the deployment meanwhile."""
        return self._backend.deploy(ref, env, canary, ab, sticky, shadow, expect_revision, reason)

    def promote_deployment(
        self,
        model: str,
        *,
        env: str,
        expect_revision: int | None = None,
        reason: str | None = None,
    ) -> DeploymentChange:
        """The candidate (canary, else shadow) becomes the stable version in ``env``."""
        return self._backend.promote_deployment(model, env, expect_revision, reason)

    def rollback_deployment(
        self,
        model: str,
        *,
        env: str,
        expect_revision: int | None = None,
        reason: str | None = None,
    ) -> DeploymentChange:
        """Back to the desired state before the last change (again: one more back)."""
        return self._backend.rollback_deployment(model, env, expect_revision, reason)

    def deployment(self, model: str, *, env: str) -> DesiredState:
        """The model's desired state in ``env``."""
        return self._backend.deployment(model, env)

    def deployment_history(self, model: str, *, env: str) -> list[DeploymentChange]:
        return self._backend.deployment_history(model, env)

    def deployments(self, *, env: str) -> list[DesiredState]:
        """Every desired state in ``env`` the caller may read: what a gateway serves."""
        return self._backend.deployments(env)

    # maintenance and audit

    def verify(self, ref: str | None = None, *, sample: float | None = None) -> VerifyReport:
        """Re-hash what ``ref`` (or every version) needs; ``sample``: only that
        percentage of the blobs, chosen at random (a routine check)."""
        return self._backend.verify(ref, sample)

    def gc(self, *, dry_run: bool = False) -> GcReport:
        return self._backend.gc(dry_run)

    def audit_log(
        self, *, model: str | None = None, since: datetime | None = None
    ) -> list[AuditEvent]:
        return self._backend.audit_log(model, since)

    def audit_verify(self) -> ChainReport:
        """Recompute the chain and compare it with every signed checkpoint."""
        return self._backend.audit_verify()

    def audit_checkpoint(self) -> CheckpointResult:
        """Sign the audit head with the store's key and store it in the blob store, so a
        later truncation or rewrite of the log is caught (a global admin)."""
        return self._backend.audit_checkpoint()

    def audit_key(self) -> PublicKey:
        """The store's Ed25519 public key, which checks its audit checkpoints."""
        return self._backend.audit_key()

    def audit_head(self) -> AuditHead:
        """The chain's head (``seq``, ``hash``) and the newest signed checkpoint, as the
        store holds it: compare the head with one recorded earlier, check the checkpoint's
        signature with a copy of the key kept elsewhere."""
        return self._backend.audit_head()

    def audit_checkpoints(self) -> list[CheckpointEntry]:
        """The signed checkpoint files in the blob store (``seq``, ``name``), oldest first."""
        return self._backend.audit_checkpoints()

    def audit_checkpoint_file(self, seq: int) -> bytes:
        """The checkpoint file of ``seq``, exactly as signed and stored."""
        return self._backend.audit_checkpoint_file(seq)

    # users and tokens: a global admin only (the operator of a store is one)

    def create_user(
        self,
        name: str,
        *,
        role: str,
        model: str | None = None,
        expires_in: timedelta | None = None,
    ) -> tuple[User, IssuedToken]:
        """A new user with one role (on ``model``, or global) and a first token, whose
        ``secret`` is returned only now."""
        return self._backend.create_user(name, role, model, expires_in)

    def list_users(self, *, include_deleted: bool = False) -> list[User]:
        """Every user by name; deleted ones too with ``include_deleted``."""
        return self._backend.list_users(include_deleted)

    def grant(
        self,
        name: str,
        *,
        role: str,
        model: str | None = None,
        experiment: str | None = None,
        dataset: str | None = None,
    ) -> User:
        """Give ``name`` the role globally, or on one model, experiment (its runs) or
        dataset."""
        scope = _scope(experiment, dataset)
        return self._backend.grant(name, role, model, **scope)

    def revoke_grant(
        self,
        name: str,
        *,
        role: str,
        model: str | None = None,
        experiment: str | None = None,
        dataset: str | None = None,
    ) -> User:
        scope = _scope(experiment, dataset)
        return self._backend.revoke_grant(name, role, model, **scope)

    def disable_user(self, name: str) -> User:
        """Its tokens stop working at once; ``enable_user`` undoes it."""
        return self._backend.set_user_disabled(name, True)

    def enable_user(self, name: str) -> User:
        return self._backend.set_user_disabled(name, False)

    def delete_user(self, name: str) -> User:
        """Delete softly: the user's tokens are revoked, its grants and approvals stop
        counting, and its name is never given to another user. Cannot be undone."""
        return self._backend.delete_user(name)

    def create_token(
        self, name: str, *, expires_in: timedelta | None = None, label: str | None = None
    ) -> IssuedToken:
        """Another token for ``name``; its ``secret`` is returned only now."""
        return self._backend.create_token(name, expires_in, label)

    def list_tokens(self, name: str | None = None) -> list[Token]:
        return self._backend.list_tokens(name)

    def revoke_token(self, token: int | str) -> Token:
        """Revoke a token by its id (as listed) or by its secret."""
        return self._backend.revoke_token(token)

    # storage report and retention

    def storage(self, model: str | None = None) -> StorageReport:
        """Logical bytes (the live versions' files) against physical bytes (the blobs and
        chunks they need, each once), per model and version: of ``model``, or of every
        model you may read."""
        return self._backend.storage(model)

    def set_retention(
        self, model: str, *, keep_last: int | None = None, keep_days: int | None = None
    ) -> RetentionPolicy:
        """Replace the model's retention policy (a global admin): keep its last
        ``keep_last`` versions and what was registered or named by an alias within
        ``keep_days`` days; ``gc`` purges the rest (never what an alias names now)."""
        return self._backend.set_retention(model, keep_last, keep_days)

    def retention(self, model: str) -> RetentionPolicy | None:
        """The model's retention policy; None if it has none (every version is kept)."""
        return self._backend.retention(model)

    def clear_retention(self, model: str) -> RetentionPolicy | None:
        """Remove the model's policy (a global admin): the one removed, or None."""
        return self._backend.clear_retention(model)

    # runs -------------------------------------------------------------------------------

    def start_run(
        self,
        experiment: str,
        *,
        params: Mapping[str, Scalar] | None = None,
        seed: int | None = None,
        name: str | None = None,
    ) -> runs.ActiveRun:
        """Start a run, capturing its code (git commit, branch, dirty diff) and
        environment (Python, installed packages, host, command line); use it in a
        ``with`` block so it ends as finished, or failed with the exception."""

        def start() -> Run:
            new = runs.captured_run(
                self._put_once, experiment, params=params, seed=seed, name=name, environ=os.environ
            )
            return self._backend.start_run(new)

        try:
            run = start()
        except InvalidInput:
            self._run_blobs.clear()  # a blob this client uploaded for an earlier run is gone
            run = start()
        return runs.ActiveRun(self, self._backend, run)

    def _put_once(self, data: bytes) -> str:
        """Upload a blob a run names (its package lock is the same run after run), once
        per client; a started run then keeps it from gc."""
        digest = sha256_digest(data)
        if digest not in self._run_blobs:
            self._backend.put_bytes(data)
            self._run_blobs.add(digest)
        return digest

    def run(self, run_id: str) -> Run:
        return self._backend.get_run(run_id)

    def runs(self, experiment: str | None = None, ids: Sequence[str] | None = None) -> list[Run]:
        return self._backend.list_runs(experiment, ids)

    def end_run(self, run_id: str, status: str = "finished", error: str | None = None) -> Run:
        return self._backend.end_run(run_id, status, error)

    def log_run_params(self, run_id: str, params: Mapping[str, Scalar]) -> Run:
        return self._backend.log_params(run_id, params)

    def log_run_metrics(self, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
        """Log points to a run from outside its process (the CLI's ``runs log``)."""
        points = [check_metric(n, v, step) for n, v in metrics.items()]
        self._backend.log_points(run_id, points)

    def use_run_dataset(self, run_id: str, ref: str) -> Run:
        """Record, from outside the run's process, that it read a dataset version."""
        return self._backend.use_dataset(run_id, ref)

    def open_blob(self, digest: str) -> BinaryIO:
        """A stored blob by digest (a run's dirty diff or package lock), verified as read."""
        return self._backend.open_blob(digest)

    def metric_series(
        self, name: str, run_ids: Sequence[str], *, max_points: int = 1000
    ) -> list[Series]:
        """One metric of several runs, each reduced to at most ``max_points`` points."""
        return self._backend.metric_series(name, run_ids, max_points)

    # datasets ---------------------------------------------------------------------------

    def push_dataset(
        self,
        name: str,
        paths: Sequence[str | os.PathLike[str]],
        *,
        version: str | None = None,
        source: str | None = None,
        steps: Sequence[str] = (),
        sampling: str | None = None,
        message: str | None = None,
        progress: Progress | None = None,
        if_exists: Literal["fail", "reuse"] = "fail",
    ) -> DatasetVersion:
        """Store data files (deduplicated like model files) as the dataset's next version,
        with a schema and profile of each CSV and Parquet file. ``if_exists`` as for
        ``push``."""
        from modelkeep.stats import profiling  # pyarrow: imported only when a dataset is pushed

        local = files.collect(paths)
        profiles = {f.path: profiling.profile_file(f.source).to_dict() for f in local}
        entries = self._upload(local, progress)
        request = DatasetPush(source, tuple(steps), sampling, version, message, profiles, if_exists)
        return self._backend.push_dataset(name, entries, request)

    def dataset(self, ref: str) -> DatasetVersion:
        return self._backend.get_dataset_version(ref)

    def datasets(self) -> list[dict[str, Any]]:
        return self._backend.list_datasets()

    def dataset_versions(self, name: str) -> list[DatasetVersion]:
        return self._backend.list_dataset_versions(name)

    def pull_dataset(
        self,
        ref: str,
        dest: str | os.PathLike[str],
        *,
        force: bool = False,
        progress: Progress | None = None,
    ) -> list[str]:
        """Write the dataset version's files into ``dest``, each verified; the paths written."""
        version = self._backend.get_dataset_version(ref)
        target = Path(dest)
        plan = files.plan_pull(version.files, target, force=force)
        files.write_files(plan, target, self._backend, progress, f"dataset {version.ref}")
        return [f.path for f in plan.write]

    def lineage(self, ref: str, *, direction: str = "upstream") -> Lineage:
        """What went into ``ref`` (upstream) or was made from it (downstream): ``NAME@REF``
        for a model version, ``dataset:NAME@REF`` or ``run:ID``."""
        return self._backend.lineage(ref, direction)

    # governance

    def set_policy(self, document: str | os.PathLike[str]) -> PolicyRecord:
        """Store a new version of the registry's policy: YAML text, or a path to it."""
        return self._backend.set_policy(_policy_text(document))

    def policy(self) -> PolicyRecord | None:
        """The policy in force (None: no policy, every promotion needs only its role)."""
        return self._backend.policy()

    def policy_history(self) -> list[PolicyRecord]:
        return self._backend.policy_history()

    def model_policy(self, model: str) -> dict[str, Any]:
        """The rules that apply to ``model``: the registry's, with its overrides."""
        return self._backend.model_policy(model)

    def check(
        self,
        ref: str,
        *,
        dataset: str,
        target: str,
        sensitive: str | None = None,
        suite: str | os.PathLike[str] | None = None,
    ) -> list[CheckResult]:
        """Run a validation suite on ``ref`` against a registered dataset version, here,
        and record each result as evidence (immutable; a re-run is a new result).

        Without ``suite`` (a YAML file): evaluation and robustness, and fairness on
        ``sensitive`` if given. The model is never unpickled: skops and ONNX only."""
        from modelkeep.checks.runner import CheckInput, run_checks
        from modelkeep.checks.suite import default_suite, parse_suite
        from modelkeep.domain.governance import NewCheckResult
        from modelkeep.domain.provenance import SOURCE_CHECK

        version = self.show(ref)
        if version.status == "archived":
            raise VersionArchived(f"{version.ref} is archived: it cannot be checked")
        data = self.dataset(dataset)
        suite_path = Path(suite) if suite is not None else None
        plan = parse_suite(_read_text(suite_path)) if suite_path else default_suite(sensitive)
        with tempfile.TemporaryDirectory(prefix="modelkeep-check-") as work:
            model_dir, data_dir = Path(work, "model"), Path(work, "data")
            self.pull(version.ref, model_dir)
            self.pull_dataset(data.ref, data_dir)
            workdir = suite_path.resolve().parent if suite_path else Path.cwd()
            outcomes = run_checks(
                CheckInput(model_dir, data_dir, target, sensitive, workdir=workdir), plan
            )
        return [
            self.record_check(
                version.ref,
                dataset=data.ref,
                result=NewCheckResult(
                    o.suite,
                    o.kind,
                    o.metrics,
                    o.passed,
                    tuple(o.failures),
                    o.report,
                    source=SOURCE_CHECK,
                ),
            )
            for o in outcomes
        ]

    def record_check(self, ref: str, *, dataset: str | None, result: NewCheckResult) -> CheckResult:
        """Record a result computed elsewhere (e.g. by your own evaluation harness). It is
        marked as posted by a client (``producer.source``), with you as its producer: a
        policy rule that names a ``runner`` does not count it."""
        check_finite_metrics(result.metrics)  # JSON cannot carry NaN or infinity anyway
        return self._backend.record_check(ref, dataset, result)

    def checks(self, ref: str) -> list[CheckResult]:
        return self._backend.checks(ref)

    def approve(
        self, ref: str, *, to: str, comment: str | None = None, digest: str | None = None
    ) -> Approval:
        """Approve ``ref`` for stage ``to``, bound to its digest (``digest``: refuse unless
        ``ref`` still names it) and to the check results current now."""
        return self._backend.decide(ref, to, "approve", comment, digest)

    def reject(
        self, ref: str, *, to: str, comment: str | None = None, digest: str | None = None
    ) -> Approval:
        return self._backend.decide(ref, to, "reject", comment, digest)

    def approvals(self, ref: str) -> list[Approval]:
        return self._backend.approvals(ref)

    def gate(self, ref: str, *, to: str, promoter: str | None = None) -> GateResult:
        """Would promoting ``ref`` to ``to`` pass the policy? Every rule; changes nothing."""
        return self._backend.gate(ref, to, promoter)

    def promotion(
        self,
        ref: str,
        *,
        to: str,
        reason: str | None = None,
        expect: int | None = None,
        override: bool = False,
    ) -> Promotion:
        """``promote``, returning the move with the policy's evaluation and the signed
        attestation. ``override`` (an admin, with a reason) promotes although the policy
        is not met, and says so in the audit log, the attestation and the card."""
        return self._backend.promotion(ref, to, reason, expect, override)

    def attestations(self, ref: str) -> list[Attestation]:
        return self._backend.attestations(ref)

    def export_attestation(
        self, ref: str, dest: str | os.PathLike[str], *, stage: str | None = None
    ) -> Path:
        """Write the newest attestation of ``ref`` and its evidence into ``dest`` (a new
        or empty directory), for ``attest verify --bundle`` anywhere, offline."""
        from modelkeep.attest.bundle import write_bundle

        return write_bundle(self._backend.evidence(ref, stage), Path(dest))

    def verify_attestation(
        self,
        ref: str,
        *,
        stage: str | None = None,
        public_key: bytes | None = None,
    ) -> BundleReport:
        """Check the newest attestation of ``ref``: its signature (with ``public_key``, PEM,
        if given, else the store's), its evidence, and that the files still match.

        ``NAME@STAGE`` (``fraud@production``) checks the attestation of that stage: the
        one whose signed predicate names it, not any attestation of the version."""

        from modelkeep.attest.bundle import verify_bundle  # cryptography: only when asked

        stage = stage_of(ref, stage)
        with tempfile.TemporaryDirectory(prefix="modelkeep-attest-") as work:
            bundle = self.export_attestation(ref, Path(work, "bundle"), stage=stage)
            pulled = Path(work, "files")
            self.pull(ref, pulled)
            if public_key is not None:
                return verify_bundle(bundle, pulled, public_key, "the key you passed", stage)
            store_key = self.audit_key().pem.encode("ascii")
            return verify_bundle(bundle, pulled, store_key, "the store's key ('audit key')", stage)

    def card(self, ref: str, *, format: str = "md") -> str:
        """The model card of ``ref`` (Markdown or HTML), from registry facts."""
        return self._backend.card(ref, format)

    def governance_report(self, model: str | None = None, *, format: str = "md") -> str:
        """Each model's evidence mapped to the NIST AI RMF functions, with what is missing."""
        return self._backend.governance_report(model, format)

    # serving bundles and signatures --------------------------------------------------

    def build_bundle(
        self, ref: str, dest: str | os.PathLike[str] | None = None, *, force: bool = False
    ) -> BuiltBundle:
        """Write the signed, deterministic serving bundle of ``ref`` to ``dest`` (default
        ``NAME-N.bundle.tar.gz`` here) and record its digest on the version. The store
        builds and signs it; the file appears whole or not at all."""
        if dest is None:
            version = self._backend.get_version(ref)
            dest = f"{version.model}-{version.number}.bundle.tar.gz"
        target = Path(dest)
        return files.write_atomically(
            target, lambda out: self._backend.build_bundle(ref, out), force=force
        )

    def verify_bundle(
        self, path: str | os.PathLike[str], *, public_key: bytes | None = None
    ) -> BundleCheck:
        """Check a serving bundle offline: its signature with ``public_key`` (PEM; None:
        the store's key, as 'audit key' prints it) and every entry's sha256 and size."""
        from modelkeep.attest.serving import verify_archive

        if public_key is None:
            key, source = self.audit_key().pem.encode("ascii"), "the store's key ('audit key')"
        else:
            key, source = public_key, "the key you passed"
        with files.open_input(Path(path)) as stream:
            return verify_archive(stream, key, source)

    def export_oci(self, ref: str, dest: str | os.PathLike[str]) -> str:
        """Write ``ref`` as an OCI image layout into ``dest`` (new or empty): each file a
        layer by its sha256, the serving config its config; return the manifest digest."""
        from modelkeep.attest import oci

        version = self._backend.get_version(ref)
        target = Path(dest)
        oci.check_destination(target)
        config = self._serving_config(version)
        with tempfile.TemporaryDirectory(prefix="modelkeep-oci-") as work:
            pulled = Path(work)
            self.pull(version.ref, pulled, force=True)
            by_digest = {f.digest: pulled / f.path for f in version.files}
            return oci.write_layout(
                target,
                version.model,
                version.number,
                version.files,
                config,
                lambda digest: by_digest[digest].open("rb"),
            )

    def _serving_config(self, version: Version) -> dict[str, Any]:
        from modelkeep.attest.serving import serving_config

        return serving_config(
            version.model,
            version.number,
            version.digest,
            [f.path for f in version.files],
            [
                {"stage": a.stage, "envelope_digest": a.envelope_digest}
                for a in self._backend.attestations(version.ref)
            ],
        )

    def kserve_inference_service(
        self,
        model: str,
        *,
        env: str,
        oci_repo: str,
        namespace: str | None = None,
        runtime: str | None = None,
    ) -> dict[str, Any]:
        """A KServe ``InferenceService`` (as a dict) serving the desired state of ``model``
        in ``env``, each version pinned by the OCI manifest digest that ``export_oci``
        writes for it, under ``oci_repo`` (``registry.example.com/models/fraud``)."""
        from modelkeep.attest import oci
        from modelkeep.domain import kserve

        kserve.check_oci_repo(oci_repo)
        if namespace is not None:
            kserve.check_namespace(namespace)
        if runtime is not None:
            kserve.check_runtime(runtime)
        kserve.service_name(model)
        desired = self._backend.deployment(model, env)
        kserve.check_expressible(desired)  # before reading any version: shadow, A/B
        artifacts: dict[str, kserve.Artifact] = {}
        for backend in desired.backends:
            version = self._backend.get_version(backend.ref)
            manifest = oci.manifest_document(
                version.model, version.number, version.files, self._serving_config(version)
            )
            artifacts[backend.digest] = kserve.Artifact(
                sha256_digest(manifest), self._model_format(version)
            )
        return kserve.inference_service(desired, artifacts, oci_repo, namespace, runtime)

    def _model_format(self, version: Version) -> str:
        """``onnx`` or ``sklearn``: the format 'mk.load' would load the version in."""
        from modelkeep.serving.declaration import FILE_NAME, Declaration, parse_declaration
        from modelkeep.serving.predictor import choose_model

        paths = [f.path for f in version.files]
        declaration = Declaration()
        for entry in version.files:
            if entry.path == FILE_NAME:
                with self._backend.open_blob(entry.digest) as stream:
                    declaration = parse_declaration(stream.read().decode("utf-8", "replace"))
        fmt, _file = choose_model(paths, declaration, version.ref)
        return fmt

    def sign(self, ref: str, dest: str | os.PathLike[str]) -> Path:
        """Write an OpenSSF model-signing signature of ``ref``'s files to ``dest``, for
        'model_signing verify key DIR --signature FILE --public_key PEM' (the PEM is
        ``openssf_key()``)."""
        data = self._backend.openssf_signature(ref)
        target = Path(dest)
        files.write_atomically(target, lambda out: out.write(data), force=True)
        return target

    def openssf_key(self) -> str:
        """The store's P-256 public key (PEM) that checks ``sign``'s signatures."""
        return self._backend.openssf_key()


def _signature_of(local: Sequence[files.LocalFile]) -> dict[str, Any] | None:
    """The signature a push records, read from its files (only when one may say it)."""
    from modelkeep.serving.inspect import may_have_signature, signature_of

    if not may_have_signature([f.path for f in local]):
        return None
    return signature_of({f.path: f.source for f in local})


def stage_of(ref: str, stage: str | None) -> str | None:
    """The stage whose attestation to check: ``--stage``, or the stage ``ref`` names
    (``fraud@production``); InvalidInput if they name two different stages."""
    parsed = parse_ref(ref, default_latest=True)
    named = parsed.value if parsed.kind is RefKind.ALIAS and parsed.value in STAGES else None
    if stage is not None and named is not None and stage != named:
        raise InvalidInput(
            f"{ref} names the {named} stage, but --stage asks for {stage}",
            f"give {parsed.model}@{stage}, or drop --stage",
        )
    return stage or named


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(
            f"there is no file {str(path)!r}", "give the path of a YAML file"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"cannot read {str(path)!r}: {exc}", "give a readable UTF-8 file"
        ) from None


def _policy_text(document: str | os.PathLike[str]) -> str:
    """A path (an existing file) or the YAML text itself."""
    if isinstance(document, os.PathLike) or ("\n" not in document and Path(document).is_file()):
        return _read_text(Path(document))
    return document


def _scope(experiment: str | None, dataset: str | None) -> dict[str, str | None]:
    """The keywords naming a grant's experiment or dataset, only those given (so a
    backend that knows only models is called as before)."""
    named = {"experiment": experiment, "dataset": dataset}
    return {k: v for k, v in named.items() if v is not None}
