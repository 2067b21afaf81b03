"""Keeping the store honest: ``verify`` re-hashes what versions need, ``gc`` sweeps the rest.

gc is mark and sweep: every blob named by a version (its manifest and its files) is
kept; any other blob is deleted only when older than the grace period, so the blobs of a
push that has not registered its version yet survive. A put of a blob that already
exists refreshes its age for the same reason.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from modelkeep.domain.manifest import Manifest
from modelkeep.services.registry import Registry


@dataclass(frozen=True)
class DamagedBlob:
    digest: str
    problem: str
    versions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "problem": self.problem, "versions": list(self.versions)}


@dataclass(frozen=True)
class VerifyReport:
    checked_blobs: int
    checked_versions: int
    damaged: tuple[DamagedBlob, ...] = ()
    inconsistent_versions: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not (self.damaged or self.inconsistent_versions)

    @property
    def broken_versions(self) -> list[str]:
        found = {v for blob in self.damaged for v in blob.versions}
        return sorted(found | set(self.inconsistent_versions))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked_blobs": self.checked_blobs,
            "checked_versions": self.checked_versions,
            "damaged": [d.to_dict() for d in self.damaged],
            "inconsistent_versions": list(self.inconsistent_versions),
            "broken_versions": self.broken_versions,
        }


@dataclass(frozen=True)
class GcReport:
    dry_run: bool
    blobs: int
    bytes: int
    temporary_files: int
    temporary_bytes: int
    kept_in_grace: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "blobs": self.blobs,
            "bytes": self.bytes,
            "temporary_files": self.temporary_files,
            "temporary_bytes": self.temporary_bytes,
            "kept_in_grace": self.kept_in_grace,
        }


def verify(registry: Registry, ref: str | None = None) -> VerifyReport:
    """Re-hash every blob that ``ref`` (or, with None, any version) needs."""
    if ref is None:
        with registry.store.transaction() as tx:
            users = tx.blob_users()
            versions = [v for m in tx.list_models() for v in tx.list_versions(m.name)]
    else:
        version = registry.get_version(ref)
        versions = [version]
        digests = [version.digest, *(f.digest for f in version.files)]
        users = {d: [version.ref] for d in digests}
    inconsistent = tuple(v.ref for v in versions if Manifest.of(v.files).digest != v.digest)
    problems = _check_all(registry, sorted(users))
    damaged = tuple(
        DamagedBlob(d, problem, tuple(users[d])) for d, problem in problems if problem is not None
    )
    return VerifyReport(len(users), len(versions), damaged, inconsistent)


def _check_all(registry: Registry, digests: list[str]) -> list[tuple[str, str | None]]:
    # hashlib releases the GIL, so threads use every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return list(zip(digests, pool.map(registry.blobs.check, digests), strict=True))


def gc(registry: Registry, *, grace_seconds: int, dry_run: bool = False) -> GcReport:
    with registry.store.transaction() as tx:
        reachable = set(tx.blob_users())
    cutoff = registry.clock() - timedelta(seconds=grace_seconds)
    doomed, young = [], 0
    for blob in registry.blobs.iter_blobs():
        if blob.digest in reachable:
            continue
        if blob.modified >= cutoff:
            young += 1
        else:
            doomed.append(blob)
    if not dry_run:
        for blob in doomed:
            registry.blobs.delete(blob.digest)
    temp_count, temp_bytes = registry.blobs.sweep_temporary(cutoff, dry_run)
    report = GcReport(
        dry_run, len(doomed), sum(b.size for b in doomed), temp_count, temp_bytes, young
    )
    if not dry_run:
        registry.record("store.gc", "store", report.to_dict())
    return report
