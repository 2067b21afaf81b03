"""The storage report: what the live versions hold against what the store keeps for them.

**Logical** bytes are the sum of the file sizes of every live (not purged) version: what
pulling each of them would write. **Physical** bytes are the blobs those versions need,
each counted once: whole files and chunks (manifests and recipes, a few KB, are left
out). A version's **new** bytes are those of its blobs that no version registered before
it (in the whole store, whichever model) needed: what pushing it added.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelkeep.domain import access
from modelkeep.domain.names import check_model_name
from modelkeep.domain.storage_report import ModelStorage, StorageReport, VersionStorage
from modelkeep.errors import ModelNotFound
from modelkeep.services.context import ServiceContext


@dataclass
class _Version:
    model: str
    number: int
    digest: str
    files: dict[str, int]  # path -> size
    blobs: dict[str, int]  # blob -> size


def report(ctx: ServiceContext, model: str | None = None) -> StorageReport:
    """One model (needs read on it), or every model the actor may read."""
    if model is not None:
        check_model_name(model)
        ctx.authorize(access.READ, model)
    else:
        ctx.authorize(access.READ, access.ANY_MODEL)
    with ctx.store.transaction() as tx:
        if model is not None:
            if tx.models.get(model) is None:
                raise ModelNotFound(f"model {model!r} does not exist")
            names = [model]
        else:
            names = [m.name for m in tx.models.all() if ctx.can(access.READ, m.name)]
        rows = tx.recipes.stored_files()
    versions: dict[int, _Version] = {}
    for row in rows:
        found = versions.get(row.id)
        if found is None:
            found = versions[row.id] = _Version(row.name, row.number, row.version_digest, {}, {})
        found.files[row.path] = int(row.size)
        found.blobs[row.blob] = int(row.blob_size)
    new_bytes = _new_bytes(versions)
    wanted = set(names)
    per_model: dict[str, list[tuple[_Version, int]]] = {name: [] for name in names}
    for version_id, version in versions.items():
        if version.model in wanted:
            per_model[version.model].append((version, new_bytes[version_id]))
    models = tuple(_model(name, per_model[name]) for name in sorted(names))
    every: dict[str, int] = {}
    for version in versions.values():
        if version.model in wanted:
            every.update(version.blobs)
    logical = sum(m.logical_bytes for m in models)
    return StorageReport(logical, sum(every.values()), models)


def _new_bytes(versions: dict[int, _Version]) -> dict[int, int]:
    """Version id -> the bytes of its blobs that no version created before it needed."""
    seen: set[str] = set()
    found: dict[int, int] = {}
    for version_id in sorted(versions):  # ids grow with creation, across models
        blobs = versions[version_id].blobs
        found[version_id] = sum(size for blob, size in blobs.items() if blob not in seen)
        seen.update(blobs)
    return found


def _model(name: str, versions: list[tuple[_Version, int]]) -> ModelStorage:
    versions.sort(key=lambda pair: pair[0].number)
    blobs: dict[str, int] = {}
    for version, _ in versions:
        blobs.update(version.blobs)
    entries = tuple(
        VersionStorage(v.number, v.digest, sum(v.files.values()), new) for v, new in versions
    )
    return ModelStorage(name, sum(e.logical_bytes for e in entries), sum(blobs.values()), entries)
