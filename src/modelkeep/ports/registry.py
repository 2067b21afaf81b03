"""Models, their versions and their aliases: the registry's rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from modelkeep.domain.aliases import AliasAction, AliasEvent
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.versions import Model, Version, VersionMetadata


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


class Models(Protocol):
    def get(self, name: str) -> Model | None: ...
    def add(
        self, name: str, description: str, required: Sequence[str], actor: str, at: datetime
    ) -> Model: ...
    def required_fields(self, name: str) -> tuple[str, ...] | None:
        """The model's required metadata fields; None if there is no such model."""
        ...

    def all(self) -> list[Model]: ...


class Versions(Protocol):
    def add(self, new: NewVersion) -> Version:
        """Allocate the next number of the model, atomically, and insert the version."""
        ...

    def get(self, model: str, number: int) -> Version | None: ...
    def key_by_number(self, model: str, number: int) -> VersionKey | None: ...
    def key_by_semver(self, model: str, semver: str) -> VersionKey | None: ...
    def keys_by_digest_prefix(self, model: str, prefix: str) -> list[VersionKey]: ...
    def latest_key(self, model: str, at: datetime | None = None) -> VersionKey | None:
        """The highest version active at ``at`` (now, if None)."""
        ...

    def page(self, model: str, after: int | None = None, limit: int | None = None) -> list[Version]:
        """Versions by number; ``after``/``limit``: one keyset page, read as such."""
        ...

    def semvers(self, model: str) -> list[str]: ...
    def archive(self, model: str, number: int, at: datetime) -> None: ...
    def unarchive(self, model: str, number: int) -> None: ...
    def purge(self, model: str, number: int, at: datetime) -> None:
        """Mark the version purged at ``at``: its files are no longer gc roots."""
        ...


class Aliases(Protocol):
    def key(self, model: str, alias: str) -> VersionKey | None: ...
    def move(
        self,
        model: str,
        alias: str,
        action: AliasAction,
        new: int | None,
        actor: str,
        at: datetime,
        reason: str | None,
    ) -> AliasEvent: ...
    def events(self, model: str, alias: str | None = None) -> list[AliasEvent]: ...
