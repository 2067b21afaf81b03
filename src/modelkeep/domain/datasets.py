"""Dataset versions: what a push registers, and which one a reference names."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypeVar

from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.names import RefKind


class Numbered(Protocol):
    @property
    def number(self) -> int: ...
    @property
    def semver(self) -> str | None: ...
    @property
    def digest(self) -> str: ...


V = TypeVar("V", bound=Numbered)


def match_version(rows: Sequence[V], kind: RefKind, value: str) -> V | None:
    """The version (among a dataset's, oldest first) a reference names; datasets have
    numbers, semvers and digests, no aliases."""
    if kind is RefKind.LATEST:
        return rows[-1] if rows else None
    if kind is RefKind.NUMBER:
        return next((r for r in rows if r.number == int(value)), None)
    if kind is RefKind.SEMVER:
        return next((r for r in rows if r.semver == value), None)
    if kind is RefKind.DIGEST:
        found = [r for r in rows if r.digest.startswith(value)]
        return found[0] if len(found) == 1 else None
    return None


@dataclass(frozen=True)
class DatasetPush:
    source: str | None = None
    steps: tuple[str, ...] = ()
    sampling: str | None = None
    semver: str | None = None
    message: str | None = None
    profiles: Mapping[str, Any] = field(default_factory=dict)
    """File path -> its schema and profile (or why none was made)."""
    if_exists: str = "fail"
    """Files registered as a version already: ``fail`` (duplicate_version) or ``reuse``
    (that version is returned, marked ``reused``)."""


@dataclass(frozen=True)
class DatasetVersion:
    dataset: str
    number: int
    semver: str | None
    digest: str
    source: str | None
    steps: tuple[str, ...]
    sampling: str | None
    profiles: Mapping[str, Any]
    message: str | None
    created_at: datetime
    created_by: str
    files: tuple[FileEntry, ...]
    reused: bool = False
    """A push with ``if_exists="reuse"`` found these files as this version already."""

    @property
    def ref(self) -> str:
        return f"{self.dataset}@{self.number}"

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "number": self.number,
            "semver": self.semver,
            "digest": self.digest,
            "source": self.source,
            "steps": list(self.steps),
            "sampling": self.sampling,
            "profiles": dict(self.profiles),
            "message": self.message,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
            "files": [f.to_dict() for f in self.files],
            "size": self.size,
            **({"reused": True} if self.reused else {}),
        }
