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
    old_from_run: str | None = None
    new_from_run: str | None = None
    """The run whose logged value this side shows (the version itself did not record
    it); in JSON only when a side came from a run."""

    def to_dict(self) -> dict[str, Any]:
        found = {"key": self.key, "old": self.old, "new": self.new}
        if self.old_from_run or self.new_from_run:
            found |= {"old_from_run": self.old_from_run, "new_from_run": self.new_from_run}
        return found


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


def _with_run(
    own: Mapping[str, Any], version: Version, which: str
) -> tuple[dict[str, Any], set[str]]:
    """``own`` params or metrics, completed by what the version's run logged; and the
    keys whose value came from the run."""
    logged: Mapping[str, Any] = {}
    if version.from_run is not None:
        logged = version.from_run.params if which == "params" else version.from_run.metrics
    taken = set(logged) - set(own)
    return {**logged, **own}, taken


def _compare_with_runs(old: Version, new: Version, which: str, prefix: str = "") -> list[Change]:
    old_values, old_taken = _with_run(old.metadata.to_dict()[which], old, which)
    new_values, new_taken = _with_run(new.metadata.to_dict()[which], new, which)
    old_run = old.from_run.run if old.from_run else None
    new_run = new.from_run.run if new.from_run else None
    return [
        Change(
            c.key,
            c.old,
            c.new,
            old_run if c.key.removeprefix(prefix) in old_taken else None,
            new_run if c.key.removeprefix(prefix) in new_taken else None,
        )
        for c in compare(old_values, new_values, prefix)
    ]


def diff_versions(old: Version, new: Version) -> VersionDiff:
    old_files = {f.path: {"size": f.size, "digest": f.digest} for f in old.files}
    new_files = {f.path: {"size": f.size, "digest": f.digest} for f in new.files}
    old_meta, new_meta = old.metadata.to_dict(), new.metadata.to_dict()
    scalars = ("commit", "seed", "run", "datasets")
    metadata = compare({k: old_meta[k] for k in scalars}, {k: new_meta[k] for k in scalars})
    metadata += _compare_with_runs(old, new, "params", "params.")
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
        metrics=tuple(_compare_with_runs(old, new, "metrics")),
    )
