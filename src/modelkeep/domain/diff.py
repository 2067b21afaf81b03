"""What differs between two versions: files, metadata and metrics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelkeep.domain.versions import Version


@dataclass(frozen=True)
class Change:
    key: str
    old: Any
    new: Any

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class VersionDiff:
    old: str
    new: str
    files: tuple[Change, ...]
    metadata: tuple[Change, ...]
    metrics: tuple[Change, ...]

    @property
    def identical(self) -> bool:
        return not (self.files or self.metadata or self.metrics)

    def to_dict(self) -> dict[str, Any]:
        metrics = []
        for change in self.metrics:
            entry = change.to_dict()
            both = change.old is not None and change.new is not None
            entry["delta"] = change.new - change.old if both else None
            metrics.append(entry)
        return {
            "old": self.old,
            "new": self.new,
            "identical": self.identical,
            "files": [c.to_dict() for c in self.files],
            "metadata": [c.to_dict() for c in self.metadata],
            "metrics": metrics,
        }


def compare(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[Change]:
    keys = sorted(set(old) | set(new))
    return [Change(prefix + k, old.get(k), new.get(k)) for k in keys if old.get(k) != new.get(k)]


def diff_versions(old: Version, new: Version) -> VersionDiff:
    old_files = {f.path: {"size": f.size, "digest": f.digest} for f in old.files}
    new_files = {f.path: {"size": f.size, "digest": f.digest} for f in new.files}
    old_meta, new_meta = old.metadata.to_dict(), new.metadata.to_dict()
    scalars = ("commit", "seed", "run", "datasets")
    metadata = compare({k: old_meta[k] for k in scalars}, {k: new_meta[k] for k in scalars})
    metadata += compare(old_meta["params"], new_meta["params"], "params.")
    metadata += compare(old_meta["meta"], new_meta["meta"], "meta.")
    metadata += compare(
        {"semver": old.semver, "message": old.message},
        {"semver": new.semver, "message": new.message},
    )
    return VersionDiff(
        old=old.ref,
        new=new.ref,
        files=tuple(compare(old_files, new_files)),
        metadata=tuple(metadata),
        metrics=tuple(compare(old_meta["metrics"], new_meta["metrics"])),
    )
