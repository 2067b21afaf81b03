"""The storage report: logical bytes (the live versions' files) against physical bytes
(the blobs and chunks they need, each once), per model and version. services/storage.py
computes it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class VersionStorage:
    number: int
    digest: str
    logical_bytes: int
    new_bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "digest": self.digest,
            "logical_bytes": self.logical_bytes,
            "new_bytes": self.new_bytes,
        }


class _Savings:
    """What sharing saves, for anything with logical and physical bytes."""

    logical_bytes: int
    physical_bytes: int

    @property
    def saved_bytes(self) -> int:
        return self.logical_bytes - self.physical_bytes

    @property
    def saving_ratio(self) -> float:
        """The share of the logical bytes that sharing saves (0 when there are none)."""
        return _ratio(self.saved_bytes, self.logical_bytes)


@dataclass(frozen=True)
class ModelStorage(_Savings):
    model: str
    logical_bytes: int
    physical_bytes: int
    versions: tuple[VersionStorage, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "logical_bytes": self.logical_bytes,
            "physical_bytes": self.physical_bytes,
            "versions": [v.to_dict() for v in self.versions],
        }


@dataclass(frozen=True)
class StorageReport(_Savings):
    logical_bytes: int
    physical_bytes: int
    models: tuple[ModelStorage, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "logical_bytes": self.logical_bytes,
            "physical_bytes": self.physical_bytes,
            "saved_bytes": self.saved_bytes,
            "models": [m.to_dict() for m in self.models],
        }


def _ratio(part: int, whole: int) -> float:
    return part / whole if whole else 0.0
