"""Dataset versions: which one a reference names."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

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
