"""The in-memory store's tables: plain dicts of immutable rows, copied on write.

A write transaction works on a shallow copy of every table (rows are frozen, so a copy
of the containers is a snapshot) and publishes it on commit; readers keep whichever
published ``Tables`` was current when they began, which nobody changes any more.

JSON columns of the SQL schema are kept as the JSON round trip of what was written and
handed out as fresh copies, so callers see the same types the SQL adapter returns (lists,
not tuples) and can never change a stored row through what they were given.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from modelkeep.domain.access import Grant
from modelkeep.domain.aliases import AliasAction
from modelkeep.domain.audit import AuditEvent
from modelkeep.domain.deployments import DeploymentChange, DesiredState
from modelkeep.domain.governance import Approval, Attestation, CheckResult, PolicyRecord
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.recipes import Recipe
from modelkeep.domain.retention import RetentionPolicy

T = TypeVar("T")

VersionRef = tuple[str, int]
"""A model version's key: (model name, number)."""


def json_copy(value: T) -> T:
    """What a JSON column gives back for ``value``: a deep copy through JSON."""
    copied: T = json.loads(json.dumps(value))
    return copied


def utc(at: datetime) -> datetime:
    """A timestamp as the SQL adapter reads it back: aware, in UTC."""
    return at.astimezone(UTC)


def maybe_utc(at: datetime | None) -> datetime | None:
    return None if at is None else utc(at)


@dataclass(frozen=True)
class ModelRow:
    name: str
    description: str
    required: tuple[str, ...]
    created_at: datetime
    created_by: str
    last_number: int


@dataclass(frozen=True)
class VersionRow:
    id: int
    model: str
    number: int
    semver: str | None
    digest: str
    status: str
    metadata: dict[str, Any]
    message: str | None
    created_at: datetime
    created_by: str
    files: tuple[FileEntry, ...]
    """Ordered by path, as the SQL adapter reads them."""
    archived_at: datetime | None = None
    purged_at: datetime | None = None

    @property
    def key(self) -> VersionRef:
        return (self.model, self.number)


@dataclass(frozen=True)
class AliasEventRow:
    model: str
    alias: str
    action: AliasAction
    old: int | None
    new: int | None
    actor: str
    at: datetime
    reason: str | None


@dataclass(frozen=True)
class UserRow:
    id: int
    name: str
    created_at: datetime
    created_by: str
    disabled_at: datetime | None = None
    deleted_at: datetime | None = None


@dataclass(frozen=True)
class TokenRow:
    id: int
    user: str
    token_hash: str
    label: str | None
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class RecipeRow:
    recipe: Recipe
    recipe_digest: str
    created_at: datetime


@dataclass(frozen=True)
class RunRow:
    id: int
    run_id: str
    experiment: str
    name: str | None
    status: str
    error: str | None
    seed: int | None
    params: dict[str, Any]
    code: dict[str, Any]
    environment: dict[str, Any]
    notes: list[str]
    started_at: datetime
    ended_at: datetime | None
    created_by: str


MetricPoint = tuple[str, int, float, float]
"""(name, step, value, seconds since 1970); a run's points are kept in logging order."""


@dataclass(frozen=True)
class DatasetRow:
    id: int
    name: str
    description: str
    created_at: datetime
    created_by: str
    last_number: int


@dataclass(frozen=True)
class DatasetVersionData:
    id: int
    dataset_id: int
    number: int
    semver: str | None
    digest: str
    source: str | None
    steps: list[str]
    sampling: str | None
    profiles: dict[str, Any]
    message: str | None
    created_at: datetime
    created_by: str
    files: tuple[FileEntry, ...]


@dataclass(frozen=True)
class VersionInput:
    """A lineage edge into a model version: from a run or from a dataset version."""

    version: VersionRef
    run_pk: int | None
    dataset_version_id: int | None


@dataclass
class Tables:
    """Every table of the store. Only a write transaction's private copy is changed."""

    last_ids: dict[str, int] = field(default_factory=dict)
    models: dict[str, ModelRow] = field(default_factory=dict)
    versions: dict[VersionRef, VersionRow] = field(default_factory=dict)
    aliases: dict[tuple[str, str], int] = field(default_factory=dict)
    """(model, alias) -> version number."""
    alias_events: list[AliasEventRow] = field(default_factory=list)
    audit: list[AuditEvent] = field(default_factory=list)
    users: dict[str, UserRow] = field(default_factory=dict)
    grants: dict[str, tuple[Grant, ...]] = field(default_factory=dict)
    tokens: dict[int, TokenRow] = field(default_factory=dict)
    recipes: dict[str, RecipeRow] = field(default_factory=dict)
    retention: dict[str, RetentionPolicy] = field(default_factory=dict)
    runs: dict[int, RunRow] = field(default_factory=dict)
    run_ids: dict[str, int] = field(default_factory=dict)
    metrics: dict[int, tuple[MetricPoint, ...]] = field(default_factory=dict)
    run_artifacts: dict[tuple[int, str], tuple[int, str]] = field(default_factory=dict)
    """(run pk, path) -> (size, digest)."""
    run_datasets: dict[tuple[int, int], None] = field(default_factory=dict)
    """(run pk, dataset version id), in the order they were linked."""
    datasets: dict[str, DatasetRow] = field(default_factory=dict)
    dataset_versions: dict[int, DatasetVersionData] = field(default_factory=dict)
    version_inputs: list[VersionInput] = field(default_factory=list)
    policies: dict[int, PolicyRecord] = field(default_factory=dict)
    check_results: dict[int, CheckResult] = field(default_factory=dict)
    approvals: dict[int, Approval] = field(default_factory=dict)
    attestations: dict[int, Attestation] = field(default_factory=dict)
    uploads: dict[tuple[str, str], datetime] = field(default_factory=dict)
    """(user, digest) -> when the user first sent those bytes."""
    deployments: dict[tuple[str, str], DesiredState] = field(default_factory=dict)
    """(model, env) -> the desired state."""
    deployment_events: list[tuple[int, DeploymentChange]] = field(default_factory=list)
    """(id, change), oldest first."""

    def copy(self) -> Tables:
        """A snapshot: every container copied, the (immutable) rows shared."""
        return Tables(
            **{f.name: copy.copy(getattr(self, f.name)) for f in dataclasses.fields(self)}
        )

    def next_id(self, table: str) -> int:
        """The next row id of ``table`` (ids grow by one, from 1)."""
        self.last_ids[table] = self.last_ids.get(table, 0) + 1
        return self.last_ids[table]


class View:
    """What one transaction sees: the tables as of its start, and (in a write) its own
    changes, made on a private copy taken at the first change."""

    def __init__(self, tables: Tables, *, write: bool) -> None:
        self._tables = tables
        self._write = write
        self._shared = True
        """True while ``_tables`` may be seen by others (published): copy before writing."""

    @property
    def read(self) -> Tables:
        return self._tables

    def change(self) -> Tables:
        """The tables to change; refused in a read transaction."""
        if not self._write:
            raise RuntimeError("the store is changed only in write transactions")
        if self._shared:
            self._tables = self._tables.copy()
            self._shared = False
        return self._tables

    def publish(self) -> Tables | None:
        """The tables to publish on commit, if anything changed; later changes copy again."""
        if self._shared:
            return None
        self._shared = True
        return self._tables
