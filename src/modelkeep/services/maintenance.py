"""Keeping the store honest: ``verify`` re-hashes what versions need, ``gc`` sweeps the rest.

gc first applies every model's retention policy (services/retention.py): the versions
it releases are purged, so their files stop being roots. Then mark and sweep: every blob
named by a version (its manifest, and a live version's files) and every signed audit
checkpoint is kept; any other blob is deleted only when older than the grace period, so
the blobs of a push that has not registered its version yet survive. A put of a blob
that already exists refreshes its age for the same reason.
"""

from __future__ import annotations

import math
import os
import random
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from modelkeep.domain import access
from modelkeep.domain.audit import AuditEvent, ChainReport
from modelkeep.domain.events import EventKind
from modelkeep.domain.integrity import Mismatch
from modelkeep.domain.maintenance import DamagedBlob, GcReport, VerifyReport
from modelkeep.domain.manifest import Manifest
from modelkeep.domain.names import parse_ref
from modelkeep.domain.versions import Version
from modelkeep.errors import InvalidInput
from modelkeep.ports.blobs import BlobStore, StoredBlob
from modelkeep.services import audit, integrity, lookup, retention
from modelkeep.services.context import ServiceContext


def verify(
    ctx: ServiceContext, ref: str | None = None, sample: float | None = None
) -> VerifyReport:
    """Re-hash every blob that ``ref`` (or, with None, any version) needs; with
    ``sample`` (a percentage), a random share of them, for routine runs.

    Needs admin of the version's model, or a global admin for every version."""
    ctx.authorize(access.VERIFY, parse_ref(ref, default_latest=True).model if ref else None)
    if sample is not None and not 0 < sample <= 100:
        raise InvalidInput(f"--sample {sample} is not a percentage", "give more than 0, up to 100")
    with ctx.store.transaction() as tx:
        if ref is None:
            users = tx.recipes.blob_users()
            models = tx.models.all()
            checked = [v for m in models for v in tx.versions.page(m.name)]
        else:
            parsed = parse_ref(ref, default_latest=True)
            version = lookup.unchecked_version_of(tx, parsed)
            models = [lookup.model(tx, parsed.model)]
            checked = [version]
            # its manifest and, unless purged, its files' blobs (or recipes and chunks)
            users = {
                d: [version.ref]
                for d, refs in tx.recipes.blob_users().items()
                if version.ref in refs
            }
        registered = _registered_metadata(tx.audit.events(ref.partition("@")[0] if ref else None))
        mismatches = tuple(integrity.scan(tx, ctx.blobs, models, checked))
    if ref is None:  # a global admin: the rows were checked against the chain, which
        # must itself be what was signed (one model's admin may not read the whole chain)
        mismatches = _chain_mismatch(audit.verify(ctx)) + mismatches
    inconsistent = tuple(v.ref for v in checked if _inconsistent(v, registered))
    chosen = _sampled(sorted(users), sample)
    problems = [(d, p) for d, p in _check_all(ctx, chosen) if p is not None]
    with ctx.store.transaction() as tx:
        where = tx.recipes.blob_files(d for d, _ in problems)
    damaged = tuple(
        DamagedBlob(d, problem, tuple(users[d]), tuple(where.get(d, ()))) for d, problem in problems
    )
    return VerifyReport(len(chosen), len(checked), damaged, inconsistent, sample, mismatches)


def _chain_mismatch(report: ChainReport) -> tuple[Mismatch, ...]:
    if report.ok:
        return ()
    where = f"seq {report.first_bad_seq}" if report.first_bad_seq is not None else "a checkpoint"
    return (
        Mismatch(
            "chain",
            "the audit chain",
            where,
            "intact",
            report.problem or "broken",
            "the chain's hashes and signed checkpoints",
        ),
    )


def _sampled(digests: list[str], percent: float | None) -> list[str]:
    if percent is None or percent >= 100 or not digests:
        return digests
    count = max(1, math.ceil(len(digests) * percent / 100))
    return sorted(random.SystemRandom().sample(digests, count))


def _registered_metadata(events: list[AuditEvent]) -> dict[str, str]:
    """Version ref -> the metadata digest its push recorded in the audit log."""
    return {
        e.subject: str(e.details["metadata_digest"])
        for e in events
        if e.action == EventKind.VERSION_PUSH and "metadata_digest" in e.details
    }


def _inconsistent(version: Version, registered: dict[str, str]) -> bool:
    """Its files no longer hash to its digest, or its metadata changed since registration."""
    if Manifest.of(version.files).digest != version.digest:
        return True
    recorded = registered.get(version.ref)
    return recorded is not None and recorded not in version.metadata_digests


def _check_all(ctx: ServiceContext, digests: list[str]) -> list[tuple[str, str | None]]:
    # hashlib releases the GIL, so threads use every core.
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        return list(zip(digests, pool.map(ctx.blobs.check, digests), strict=True))


def gc(ctx: ServiceContext, *, grace_seconds: int, dry_run: bool = False) -> GcReport:
    """Apply the retention policies, then mark and sweep (needs a global admin).

    With ``dry_run`` nothing changes: the report names the versions retention would
    purge and counts the blobs that would be freed as if they were purged already."""
    ctx.authorize(access.GC, None)
    purged = () if dry_run else retention.apply(ctx)
    now = ctx.clock()
    cutoff = now - timedelta(seconds=grace_seconds)
    with ctx.store.transaction() as tx:
        if dry_run:
            purging = retention.plan(tx, now)
            purged = tuple(v.ref for _, v in purging)
            reachable = _marked(
                tx.recipes.blob_users(), {v.digest for _, v in purging}, set(purged)
            )
        else:
            reachable = set(tx.recipes.blob_users())
        reachable |= tx.recipes.blobs_since(cutoff)
    reachable |= audit.checkpoint_blobs(ctx.blobs)  # signed audit checkpoints
    candidates, young = unused(ctx.blobs, reachable, cutoff)
    if dry_run:
        temp = ctx.blobs.sweep_temporary(cutoff, dry_run=True)
        freed = sum(b.size for b in candidates)
        return GcReport(True, len(candidates), freed, *temp, young, purged)
    return sweep(ctx, candidates, young, cutoff, purged)


def _marked(users: dict[str, list[str]], manifests: set[str], purging: set[str]) -> set[str]:
    """The blobs still used once the ``purging`` versions are purged: whatever another
    version uses, and every manifest (a purged version keeps its manifest)."""
    return {d for d, refs in users.items() if not set(refs) <= purging} | manifests


def sweep(
    ctx: ServiceContext,
    candidates: list[StoredBlob],
    young: int,
    cutoff: datetime,
    purged: tuple[str, ...] = (),
) -> GcReport:
    """Delete the candidates no version uses now and that are still old (needs admin).

    Runs under the write lock: no version can commit meanwhile, and registration checks
    its blobs under the same lock, so a blob is never deleted from under a new version.
    """
    ctx.authorize(access.GC, None)
    with ctx.store.transaction(write=True) as tx:
        tx.recipes.delete_unused(cutoff)  # their chunks are candidates unless used elsewhere
        used_now = set(tx.recipes.blob_users(b.digest for b in candidates))
        used_now |= tx.recipes.blobs_since(cutoff)
        freed = [
            b
            for b in candidates
            if b.digest not in used_now and _still_old(ctx.blobs, b.digest, cutoff)
        ]
        for blob in freed:
            ctx.blobs.delete(blob.digest)
        temp = ctx.blobs.sweep_temporary(cutoff, dry_run=False)
        report = GcReport(
            False,
            len(freed),
            sum(b.size for b in freed),
            *temp,
            young + len(candidates) - len(freed),
            purged,
        )
        ctx.record_event(tx, EventKind.STORE_GC, "store", report.to_dict(), ctx.clock())
        tx.commit()
    return report


def unused(blobs: BlobStore, reachable: set[str], cutoff: datetime) -> tuple[list[StoredBlob], int]:
    """Blobs no version uses and older than ``cutoff``; and how many unused ones are younger."""
    old, young = [], 0
    for blob in blobs.iter_blobs():
        if blob.digest in reachable:
            continue
        if blob.modified < cutoff:
            old.append(blob)
        else:
            young += 1
    return old, young


def _still_old(blobs: BlobStore, digest: str, cutoff: datetime) -> bool:
    """A put since the listing refreshes the blob's age: then it belongs to a push."""
    current = blobs.stat(digest)
    return current is not None and current.modified < cutoff
