"""Versions: push files and register them, read, resolve, compare and archive.

Write ordering (restic's rule): the files' blobs are stored first; ``register_version``
then writes the manifest blob and commits the version row with its audit event. Both the
blob checks and the manifest write happen under the write lock, which gc also takes to
delete, so no blob can vanish before the version commits."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, BinaryIO

from modelkeep.domain import access
from modelkeep.domain import aliases as alias_rules
from modelkeep.domain.datasets import match_version
from modelkeep.domain.diff import VersionDiff, diff_versions
from modelkeep.domain.events import EventKind
from modelkeep.domain.integrity import record_digest
from modelkeep.domain.manifest import FileEntry, Manifest, check_new_paths
from modelkeep.domain.names import STAGES, check_model_name, parse_ref
from modelkeep.domain.runs import RUN_ID, through_run
from modelkeep.domain.semver import SemVer, next_semver
from modelkeep.domain.text import check_text
from modelkeep.domain.versions import (
    FromRun,
    PushRequest,
    Version,
    VersionMetadata,
    check_if_exists,
    duplicate,
    require_fields,
)
from modelkeep.errors import (
    BlobNotFound,
    EmptyPush,
    InvalidInput,
    RunNotFound,
    VersionInStage,
)
from modelkeep.ports.blobs import BlobInfo, Progress
from modelkeep.ports.registry import NewVersion
from modelkeep.ports.unit_of_work import Transaction
from modelkeep.services import integrity, lookup, policies, scopes
from modelkeep.services.context import ServiceContext

# pushing ------------------------------------------------------------------------------


def check_push(ctx: ServiceContext, model: str, request: PushRequest) -> None:
    """Refuse a push before any byte is uploaded, if its registration would fail."""
    check_model_name(model)
    ctx.authorize(access.PUSH, model)
    with ctx.store.transaction() as tx:
        _prepare(tx, model, request)


def put_blob(
    ctx: ServiceContext,
    stream: BinaryIO,
    *,
    expected: str | None = None,
    progress: Progress | None = None,
) -> BlobInfo:
    """Store bytes for a push to come (registering them checks the model's grant)."""
    ctx.authorize(access.PUSH, access.ANY_MODEL)
    info = ctx.blobs.put(stream, expected=expected, progress=progress)
    scopes.record_uploads(ctx, [info.digest])  # hashed here: the actor holds these bytes
    return info


def missing_blobs(ctx: ServiceContext, digests: Iterable[str]) -> set[str]:
    """Which of these the store lacks: blobs, or files (stored whole or chunked); and,
    for an actor who is no global reader, those it neither may read nor has uploaded:
    it proves it holds their bytes by sending them (a push may name only such digests)."""
    ctx.authorize(access.PUSH, access.ANY_MODEL)
    wanted = set(digests)
    absent = _absent(ctx, wanted)
    if absent == wanted or ctx.can(access.READ, None):  # a global reader may name any
        return absent
    with ctx.store.transaction() as tx:
        return absent | (wanted - absent - scopes.usable(ctx, tx, wanted - absent))


def _absent(ctx: ServiceContext, wanted: set[str]) -> set[str]:
    absent = {d for d in wanted if not ctx.blobs.has(d)}
    if absent:
        with ctx.store.transaction() as tx:
            chunked = {d: tx.recipes.get(d) for d in tx.recipes.digests(absent)}
        # a chunked file counts as stored only with every chunk there: a chunk lost
        # behind modelkeep's back is then pushed again, and the store is whole again
        absent -= {
            d
            for d, recipe in chunked.items()
            if recipe is not None and all(ctx.blobs.has(c.digest) for c in recipe.chunks)
        }
    return absent


def open_blob(ctx: ServiceContext, digest: str) -> BinaryIO:
    """Read a blob by digest: only through a version, run or dataset the actor may read
    (knowing a digest is not enough)."""
    ctx.authorize(access.READ, access.ANY_MODEL)
    with ctx.store.transaction() as tx:
        scopes.check_readable(ctx, tx, digest)
    return ctx.blobs.open(digest)


def register_version(
    ctx: ServiceContext, model: str, files: Sequence[FileEntry], request: PushRequest
) -> Version:
    """Register uploaded files as the model's next version."""
    check_model_name(model)
    ctx.authorize(access.PUSH, model)
    if not files:
        raise EmptyPush("a version needs at least one file")
    check_if_exists(request.if_exists)
    manifest = Manifest.of(files)
    check_new_paths(f.path for f in manifest.files)
    with ctx.store.transaction(write=True) as tx:
        check_files_stored(ctx, tx, manifest)
        scopes.check_usable(ctx, tx, (e.digest for e in manifest.files))
        metadata, semver = _prepare(tx, model, request)
        _check_inputs_readable(ctx, tx, metadata)
        same = _same_files(tx, model, manifest.digest)
        if same is not None and not _other_semver(request, same):
            return _existing(tx, same, request)
        ctx.blobs.put_bytes(manifest.canonical_bytes())
        at = ctx.clock()
        new = NewVersion(
            model, semver, manifest.digest, manifest.files, metadata, request.message, ctx.actor, at
        )
        version = tx.versions.add(new)
        _link_inputs(tx, version)
        ctx.record_event(tx, EventKind.VERSION_PUSH, version.ref, _push_details(version), at)
        tx.commit()
    return version


def _same_files(tx: Transaction, model: str, digest: str) -> Version | None:
    """The version of ``model`` whose files are exactly these, if there is one."""
    for key in tx.versions.keys_by_digest_prefix(model, digest):
        if key.digest == digest:
            return tx.versions.get(model, key.number)
    return None


def _other_semver(request: PushRequest, same: Version) -> bool:
    """The push names a semver the version with its files does not have: it is not
    that version (the registry's own check refuses it with the clash it finds)."""
    return request.semver is not None and request.semver != same.semver


def _existing(tx: Transaction, same: Version, request: PushRequest) -> Version:
    """A push of files registered as ``same`` already: that version, when the push
    asked to reuse it and it can be used; else the refusal, which names it."""
    archived = same.status == "archived"
    if request.if_exists != "reuse" or archived:
        raise duplicate(same.ref, same.digest, archived=archived)
    return replace(with_run(tx, same), reused=True)


def with_run(
    tx: Transaction, version: Version, seen: dict[str, FromRun | None] | None = None
) -> Version:
    """The version with what its run logged (when it names a run of this store);
    ``seen`` keeps the runs read already, for a list of versions from few runs."""
    run_id = version.metadata.run
    if run_id is None or not RUN_ID.fullmatch(run_id):
        return version
    runs = {} if seen is None else seen
    if run_id not in runs:
        runs[run_id] = _logged(tx, run_id)
    found = runs[run_id]
    return version if found is None else replace(version, from_run=found)


def _logged(tx: Transaction, run_id: str) -> FromRun | None:
    run = tx.tracking.get_run(run_id)
    if run is None:
        return None
    metrics = {k: v for k, v in run.metrics.items() if v is not None and math.isfinite(v)}
    return FromRun(run.id, dict(run.params), metrics)


def _prepare(
    tx: Transaction, model: str, request: PushRequest
) -> tuple[VersionMetadata, str | None]:
    required = tx.models.required_fields(model)
    if required is None:
        raise lookup.no_model(tx, model)
    policy = policies.model_policy(tx, model)
    required = tuple(dict.fromkeys((*required, *policy.register_require)))
    metadata = request.metadata.validated()
    check_text("the message", request.message)
    require_fields(model, required, metadata_through_run(tx, metadata), request.message)
    if request.semver is not None and request.bump is not None:
        raise InvalidInput("both a version and --bump were given", "give one of them")
    semver = request.semver
    if request.bump is not None:
        semver = next_semver(tx.versions.semvers(model), request.bump)
    if semver is not None:
        SemVer.parse(semver)
    return metadata, semver


def metadata_through_run(tx: Transaction, metadata: VersionMetadata) -> VersionMetadata:
    """The metadata with what its run recorded (a required field may be met there)."""
    if metadata.run is None or not RUN_ID.fullmatch(metadata.run):
        return metadata  # another tracker's run id: recorded as text, not linked
    run = tx.tracking.get_run(metadata.run)
    if run is None:
        raise RunNotFound(f"there is no run {metadata.run}")
    return through_run(metadata, run)


def _check_inputs_readable(ctx: ServiceContext, tx: Transaction, metadata: VersionMetadata) -> None:
    """A version may name as its inputs only a run and datasets its pusher may read: a
    run's params and metrics are copied into it, and both become lineage edges."""
    if metadata.run is not None and RUN_ID.fullmatch(metadata.run):
        scopes.check_run_readable(ctx, tx, metadata.run)
    for ref in metadata.datasets:
        parsed = parse_ref(ref, default_latest=True)
        if tx.datasets.id_of(parsed.model) is not None:  # else: named, not registered here
            ctx.authorize(access.READ, access.dataset_scope(parsed.model))


def _link_inputs(tx: Transaction, version: Version) -> None:
    """Lineage edges: the run that made the version, the registered datasets it names."""
    run_pk = None
    if version.metadata.run is not None and RUN_ID.fullmatch(version.metadata.run):
        state = tx.tracking.run_state(version.metadata.run)
        run_pk = state[0] if state else None
    dataset_ids = []
    for ref in version.metadata.datasets:
        parsed = parse_ref(ref, default_latest=True)
        rows = tx.datasets.versions(parsed.model)
        found = match_version(rows, parsed.kind, parsed.value)
        if found is not None:
            dataset_ids.append(found.id)
    tx.datasets.link_version_inputs(version.model, version.number, run_pk, dataset_ids)


def check_files_stored(ctx: ServiceContext, tx: Transaction, manifest: Manifest) -> None:
    """Every file is stored: chunked (a recorded recipe) or as one blob."""
    chunked = tx.recipes.digests(e.digest for e in manifest.files)
    for entry in manifest.files:
        if entry.digest in chunked:
            recipe = tx.recipes.get(entry.digest)
            size = recipe.size if recipe else None
        else:
            stored = ctx.blobs.stat(entry.digest)
            size = stored.size if stored else None
        if size is None:
            raise BlobNotFound(
                f"file {entry.path!r} ({entry.digest}) was not uploaded",
                "upload every file before registering the version",
            )
        if size != entry.size:
            raise InvalidInput(
                f"file {entry.path!r} is {size} bytes in the store, not {entry.size}",
                "give the file's real size",
            )


def _push_details(version: Version) -> dict[str, Any]:
    """What the audit log keeps of a push; ``metadata_digest`` makes metadata edits
    evident, ``record_digest`` edits of the creator, the time or the status."""
    return {
        "number": version.number,
        "digest": version.digest,
        "semver": version.semver,
        "files": len(version.files),
        "size": version.size,
        "metadata_digest": version.metadata_digest,
        # format 2: who, when and the status it was registered with (domain/integrity.py)
        "record_digest": record_digest(version),
    }


# reading ------------------------------------------------------------------------------


def list_versions(
    ctx: ServiceContext, model: str, after: int | None = None, limit: int | None = None
) -> list[Version]:
    """The model's versions by number (``after``/``limit``: one page of them)."""
    check_model_name(model)
    ctx.authorize(access.READ, model)
    with ctx.store.transaction() as tx:
        lookup.model(tx, model)
        seen: dict[str, FromRun | None] = {}
        return [with_run(tx, v, seen) for v in tx.versions.page(model, after, limit)]


def get_version(ctx: ServiceContext, ref: str) -> Version:
    parsed = parse_ref(ref, default_latest=True)
    ctx.authorize(access.READ, parsed.model)
    with ctx.store.transaction() as tx:
        return with_run(tx, lookup.version_of(tx, parsed))


def resolve(ctx: ServiceContext, ref: str, at: datetime | None = None) -> alias_rules.Resolution:
    parsed = parse_ref(ref, default_latest=True)
    ctx.authorize(access.READ, parsed.model)
    with ctx.store.transaction() as tx:
        key = lookup.key(tx, parsed, at)
        integrity.check_version(tx, lookup.version(tx, parsed.model, key.number))
    return alias_rules.Resolution(parsed.model, parsed.value, key.number, key.digest)


def diff(ctx: ServiceContext, old: str, new: str) -> VersionDiff:
    return diff_versions(get_version(ctx, old), get_version(ctx, new))


def archive(ctx: ServiceContext, ref: str, reason: str | None = None) -> Version:
    parsed = parse_ref(ref)
    check_text("the reason", reason)
    ctx.authorize(access.ARCHIVE, parsed.model)
    with ctx.store.transaction(write=True) as tx:
        version = lookup.version_of(tx, parsed)
        stages = [a for a in version.aliases if a in STAGES]
        if stages:
            raise VersionInStage(
                f"{version.ref} is the {' and '.join(stages)} version",
                "promote another version or roll back first",
            )
        if version.status == "archived":
            return version
        at = ctx.clock()
        tx.versions.archive(parsed.model, version.number, at)
        details = {"digest": version.digest, "reason": reason}
        ctx.record_event(tx, EventKind.VERSION_ARCHIVE, version.ref, details, at)
        tx.commit()
    return lookup.reread(ctx.store, version)


def unarchive(ctx: ServiceContext, ref: str, reason: str | None = None) -> Version:
    """Make an archived version usable again (aliases, stages, checks); the same roles
    as ``archive`` may. An active version is returned as it is, and nothing recorded."""
    parsed = parse_ref(ref)
    check_text("the reason", reason)
    ctx.authorize(access.ARCHIVE, parsed.model)
    with ctx.store.transaction(write=True) as tx:
        version = lookup.version_of(tx, parsed)
        if version.status != "archived":
            return version
        version.check_files_kept()  # retention released its files: it stays archived
        at = ctx.clock()
        tx.versions.unarchive(parsed.model, version.number)
        details = {"digest": version.digest, "reason": reason}
        ctx.record_event(tx, EventKind.VERSION_UNARCHIVE, version.ref, details, at)
        tx.commit()
    return lookup.reread(ctx.store, version)
