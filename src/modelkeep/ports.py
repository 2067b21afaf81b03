"""The ports services depend on. Storage adapters implement them; services never import
storage. Each port has a real adapter (``storage/``) and is tested by one contract suite."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO, Protocol

from modelkeep.domain.access import Grant
from modelkeep.domain.aliases import AliasAction, AliasEvent
from modelkeep.domain.audit import AuditEvent
from modelkeep.domain.governance import (
    Approval,
    Attestation,
    CheckResult,
    NewCheckResult,
    PolicyRecord,
)
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.recipes import Recipe
from modelkeep.domain.retention import RetentionPolicy
from modelkeep.domain.runs import NewRun, Run
from modelkeep.domain.users import Token, User
from modelkeep.domain.versions import Model, Version, VersionMetadata

Progress = Callable[[int], None]
"""Called with the number of bytes just transferred (or read and found already stored).
A progress object may also have a ``skipped(n)`` method: it is told, besides, how many
of those bytes were not sent because the store already had them (``report_skipped``)."""


def report_skipped(progress: Progress | None, size: int) -> None:
    """Tell ``progress`` that ``size`` bytes were already stored, if it wants to know."""
    skipped = getattr(progress, "skipped", None)
    if callable(skipped) and size:
        skipped(size)


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int


@dataclass(frozen=True)
class StoredBlob:
    digest: str
    size: int
    modified: datetime


class BlobStore(Protocol):
    """Write-once, content-addressed bytes, verified on every read."""

    store_id: str

    def has(self, digest: str) -> bool: ...

    def touch(self, digest: str) -> bool:
        """Make a stored blob young again (gc spares young blobs); False if absent."""
        ...

    def stat(self, digest: str) -> StoredBlob | None:
        """Size and age of a stored blob (its age is refreshed by every put); None if absent."""
        ...

    def put(
        self, stream: BinaryIO, *, expected: str | None = None, progress: Progress | None = None
    ) -> BlobInfo: ...

    def put_bytes(self, data: bytes) -> BlobInfo: ...

    def put_hashed(self, data: bytes | bytearray, digest: str) -> BlobInfo:
        """Store ``data`` whose sha256 the caller just computed from this very buffer."""
        ...

    def open(self, digest: str) -> BinaryIO:
        """A reader that raises DigestMismatch at end of stream if the bytes are damaged."""
        ...

    def read_bytes(self, digest: str) -> bytes: ...

    def read_unchecked(self, digest: str) -> bytes:
        """A blob's bytes without re-hashing them: only for a caller that checks them
        another way (a chunk read to hash a whole file against its digest)."""
        ...

    def check(self, digest: str) -> str | None:
        """Re-hash one blob: None when intact, else what is wrong."""
        ...

    def iter_blobs(self) -> Iterator[StoredBlob]: ...

    def delete(self, digest: str) -> None: ...

    def sweep_temporary(self, older_than: datetime, dry_run: bool) -> tuple[int, int]:
        """Remove abandoned upload files older than ``older_than``: (count, bytes)."""
        ...

    # named objects: small write-once documents under a known key (audit checkpoints),
    # found by listing, without trusting the database

    def put_named(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (e.g. ``checkpoints/NAME.json``), write-once.

        Raises Conflict if ``key`` holds other bytes; storing the same bytes again is a
        no-op. Keys are ``PREFIX/NAME`` with a known prefix (``layout.NAMED_PREFIXES``)."""
        ...

    def get_named(self, key: str) -> bytes | None:
        """The bytes under ``key``; None if there is no such object."""
        ...

    def list_named(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (e.g. ``checkpoints/``), sorted."""
        ...


class AuditSigner(Protocol):
    """The store's Ed25519 audit key, kept outside the database (a file, or a KMS).

    Whoever can only write the database cannot sign with it, so its signed checkpoints
    of the audit head make a truncated or rewritten log evident."""

    location: str
    """Where the key lives, for messages (a path)."""

    def public_key(self, *, create: bool = False) -> bytes | None:
        """The raw 32-byte Ed25519 public key; None if there is no key yet (and not
        ``create``; with ``create`` a missing key is made, where the store may make one)."""
        ...

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``data``; makes the key on first use."""
        ...


@dataclass(frozen=True)
class VersionKey:
    """The identity of a version, enough to answer ``resolve``."""

    number: int
    digest: str
    created_at: datetime


@dataclass(frozen=True)
class NewVersion:
    model: str
    semver: str | None
    digest: str
    files: Sequence[FileEntry]
    metadata: VersionMetadata
    message: str | None
    actor: str
    at: datetime


class Transaction(Protocol):
    """One unit of work on the metadata store. Nothing is kept unless ``commit`` is called."""

    def commit(self) -> None: ...

    # models
    def get_model(self, name: str) -> Model | None: ...
    def add_model(
        self, name: str, description: str, required: Sequence[str], actor: str, at: datetime
    ) -> Model: ...
    def required_fields(self, name: str) -> tuple[str, ...] | None:
        """The model's required metadata fields; None if there is no such model."""
        ...

    def list_models(self) -> list[Model]: ...

    # versions
    def add_version(self, new: NewVersion) -> Version:
        """Allocate the next number of the model, atomically, and insert the version."""
        ...

    def get_version(self, model: str, number: int) -> Version | None: ...
    def key_by_number(self, model: str, number: int) -> VersionKey | None: ...
    def key_by_semver(self, model: str, semver: str) -> VersionKey | None: ...
    def keys_by_digest_prefix(self, model: str, prefix: str) -> list[VersionKey]: ...
    def latest_key(self, model: str, at: datetime | None = None) -> VersionKey | None:
        """The highest version active at ``at`` (now, if None)."""
        ...

    def list_versions(
        self, model: str, after: int | None = None, limit: int | None = None
    ) -> list[Version]:
        """Versions by number; ``after``/``limit``: one keyset page, read as such."""
        ...

    def semvers(self, model: str) -> list[str]: ...
    def archive_version(self, model: str, number: int, at: datetime) -> None: ...

    # aliases
    def alias_key(self, model: str, alias: str) -> VersionKey | None: ...
    def move_alias(
        self,
        model: str,
        alias: str,
        action: AliasAction,
        new: int | None,
        actor: str,
        at: datetime,
        reason: str | None,
    ) -> AliasEvent: ...
    def alias_events(self, model: str, alias: str | None = None) -> list[AliasEvent]: ...

    # audit
    def append_audit(
        self, actor: str, action: str, subject: str, details: dict[str, Any], at: datetime
    ) -> AuditEvent: ...
    def audit_events(
        self,
        model: str | None = None,
        since: datetime | None = None,
        after: int | None = None,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Events in seq order; ``model`` keeps those about that model and its versions;
        ``after`` (a seq) and ``limit`` read one keyset page."""
        ...

    def audit_head(self) -> tuple[int, str] | None: ...

    # users, grants and tokens
    def get_user(self, name: str, now: datetime) -> User | None:
        """The user with its grants and its number of tokens active at ``now``."""
        ...

    def list_users(self, now: datetime) -> list[User]: ...
    def add_user(self, name: str, actor: str, at: datetime) -> None: ...
    def set_user_disabled(self, name: str, at: datetime | None) -> None:
        """Disable the user as of ``at``; None enables it again."""
        ...

    def add_grant(self, user: str, grant: Grant) -> bool:
        """Give the grant; False if the user had it already."""
        ...

    def remove_grant(self, user: str, grant: Grant) -> bool:
        """Take the grant away; False if the user did not have it."""
        ...

    def add_token(
        self,
        user: str,
        token_hash: str,
        label: str | None,
        actor: str,
        at: datetime,
        expires_at: datetime | None,
    ) -> Token: ...
    def get_token(self, token_id: int) -> Token | None: ...
    def token_by_hash(self, token_hash: str) -> Token | None: ...
    def list_tokens(self, user: str | None = None) -> list[Token]: ...
    def revoke_token(self, token_id: int, at: datetime) -> None: ...

    # recipes of chunked files, and the blobs versions need
    def get_recipe(self, file_digest: str) -> Recipe | None: ...
    def recipe_digests(self, file_digests: Iterable[str]) -> dict[str, str]:
        """File digest -> recipe blob digest, for those files that have a recipe."""
        ...

    def add_recipe(self, recipe: Recipe, at: datetime) -> bool:
        """Record a verified recipe; False if the file had one already."""
        ...

    def recipe_blobs_since(self, since: datetime) -> set[str]:
        """The recipe and chunk blobs of recipes recorded since ``since``."""
        ...

    def delete_unused_recipes(self, before: datetime, dry_run: bool = False) -> int:
        """Forget recipes older than ``before`` that no live version uses; how many."""
        ...

    def blob_users(self, digests: Iterable[str] | None = None) -> dict[str, list[str]]:
        """Digest -> the versions (``NAME@N``) whose manifest, files or chunks use it."""
        ...

    def blob_files(self, digests: Iterable[str]) -> dict[str, list[str]]:
        """Digest -> the files (``NAME@N:PATH``) of live versions whose bytes it holds."""
        ...

    # experiment tracking
    def add_run(self, run_id: str, new: NewRun, actor: str, at: datetime) -> None: ...
    def run_state(self, run_id: str, *, lock: bool = False) -> tuple[int, str] | None: ...
    def end_run(self, run_pk: int, status: str, error: str | None, at: datetime) -> None: ...
    def end_running_run(
        self, run_id: str, status: str, error: str | None, at: datetime
    ) -> int | None: ...
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

    # datasets and lineage edges
    def dataset_id(self, name: str) -> int | None: ...
    def add_dataset(self, name: str, description: str, actor: str, at: datetime) -> int: ...
    def list_dataset_names(self) -> list[tuple[str, int]]: ...
    def add_dataset_version(
        self,
        dataset_id: int,
        digest: str,
        files: Sequence[FileEntry],
        fields: dict[str, Any],
        actor: str,
        at: datetime,
    ) -> int: ...
    def dataset_versions(self, name: str, *where: Any) -> list[Any]: ...
    def link_run_dataset(self, run_pk: int, dataset_version_id: int) -> None: ...
    def link_version_inputs(
        self, model: str, number: int, run_pk: int | None, dataset_version_ids: Sequence[int]
    ) -> None: ...
    def lineage_edges(self) -> list[tuple[str, str]]: ...

    def stored_files(self) -> list[Any]:
        """Every live version's file blobs (whole or chunks), oldest version first: rows
        with ``name``, ``number``, ``path``, ``digest``, ``size`` (the file), ``blob``,
        ``blob_size`` (one blob it is stored in), ``id`` and ``version_digest``."""
        ...

    # retention
    def get_retention(self, model: str) -> RetentionPolicy | None: ...
    def retention_policies(self) -> list[RetentionPolicy]:
        """Every model's policy, by model name."""
        ...

    def set_retention(self, policy: RetentionPolicy) -> None:
        """Replace the model's policy."""
        ...

    def clear_retention(self, model: str) -> bool:
        """Remove the model's policy; False if it had none."""
        ...

    def purge_version(self, model: str, number: int, at: datetime) -> None:
        """Mark the version purged at ``at``: its files are no longer gc roots."""
        ...

    # governance: written once, never changed
    def add_policy(self, digest: str, document: str, actor: str, at: datetime) -> PolicyRecord:
        """Record the next version of the registry's policy document."""
        ...

    def current_policy(self) -> PolicyRecord | None: ...
    def current_policy_key(self) -> tuple[int, str] | None:
        """(number, digest) of the policy in force, without its document."""
        ...

    def policy(self, number: int) -> PolicyRecord | None: ...
    def policies(self) -> list[PolicyRecord]: ...
    def add_check_result(
        self,
        model: str,
        number: int,
        new: NewCheckResult,
        dataset: tuple[int, str, str] | None,
        report_digest: str,
        actor: str,
        at: datetime,
    ) -> CheckResult:
        """``dataset``: (dataset version id, ``NAME@N``, digest) the check ran on."""
        ...

    def check_results(self, model: str, number: int | None = None) -> list[CheckResult]: ...
    def add_approval(
        self,
        model: str,
        number: int,
        *,
        stage: str,
        decision: str,
        user: str,
        roles: Sequence[str],
        comment: str | None,
        check_ids: Sequence[int],
        policy_digest: str | None,
        at: datetime,
    ) -> Approval: ...
    def approvals(self, model: str, number: int | None = None) -> list[Approval]: ...
    def add_attestation(
        self,
        model: str,
        number: int,
        *,
        stage: str,
        envelope_digest: str,
        policy_digest: str | None,
        override_reason: str | None,
        actor: str,
        at: datetime,
    ) -> Attestation: ...
    def attestations(self, model: str, number: int | None = None) -> list[Attestation]: ...


class MetadataStore(Protocol):
    store_id: str

    def transaction(
        self, *, write: bool = False, ordered: bool = True
    ) -> AbstractContextManager[Transaction]:
        """A unit of work. A ``write`` that is ``ordered`` (the default) first takes the
        audit head's lock, which orders every audited change; metric points, which are
        not audited one by one, write without it (``ordered=False``)."""
        ...

    def close(self) -> None: ...
