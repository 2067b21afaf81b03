"""What keeping the store honest reports: ``verify`` (the damage it found) and ``gc``
(what it swept). The services compute them; the SDK, the CLI and the API show them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from modelkeep.domain.integrity import Mismatch


@dataclass(frozen=True)
class DamagedBlob:
    digest: str
    problem: str
    versions: tuple[str, ...]
    files: tuple[str, ...] = ()
    """``NAME@N:PATH`` of every file whose bytes the blob holds (whole, or a chunk)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "digest": self.digest,
            "problem": self.problem,
            "versions": list(self.versions),
            "files": list(self.files),
        }


@dataclass(frozen=True)
class VerifyReport:
    checked_blobs: int
    checked_versions: int
    damaged: tuple[DamagedBlob, ...] = ()
    inconsistent_versions: tuple[str, ...] = field(default=())
    sample: float | None = None
    """The percentage of blobs checked at random; None: all of them."""
    mismatches: tuple[Mismatch, ...] = ()
    """Rows that disagree with the audit chain or with their blobs (domain/integrity.py)."""

    @property
    def ok(self) -> bool:
        return not (self.damaged or self.inconsistent_versions or self.mismatches)

    @property
    def broken_versions(self) -> list[str]:
        found = {v for blob in self.damaged for v in blob.versions}
        found |= {
            m.subject.partition(":")[0] for m in self.mismatches if m.kind in ("version", "file")
        }
        return sorted(found | set(self.inconsistent_versions))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked_blobs": self.checked_blobs,
            "sample": self.sample,
            "checked_versions": self.checked_versions,
            "damaged": [d.to_dict() for d in self.damaged],
            "inconsistent_versions": list(self.inconsistent_versions),
            "broken_versions": self.broken_versions,
            "mismatches": [m.to_dict() for m in self.mismatches],
        }


@dataclass(frozen=True)
class GcReport:
    dry_run: bool
    blobs: int
    bytes: int
    temporary_files: int
    temporary_bytes: int
    kept_in_grace: int
    purged: tuple[str, ...] = ()
    """The versions retention purged (or, with dry_run, would purge) first."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "blobs": self.blobs,
            "bytes": self.bytes,
            "temporary_files": self.temporary_files,
            "temporary_bytes": self.temporary_bytes,
            "kept_in_grace": self.kept_in_grace,
            "purged": list(self.purged),
        }
