"""Signed checkpoints of the audit head, verification against them, and the export.

``checkpoint`` signs ``(store_id, seq, hash, at)`` of the newest event with the store's
Ed25519 key (kept outside the database, see ``ports.AuditSigner``) and writes the signed
document to the blob store twice: as a content-addressed blob and under the write-once
name ``checkpoints/<seq, 20 digits>-<first 12 hex of hash>.json``, which ``verify``
lists without asking the database. Then it records an ``audit.checkpoint`` event.

``verify`` recomputes the chain and compares it with every checkpoint whose signature
the store's public key accepts: a log truncated below a checkpoint, or rewritten up to
one, is reported even when its ``audit_head`` was rewritten to match.

``head``, ``checkpoints`` and ``checkpoint_file`` serve a verifier outside the store:
the head without the events, and the checkpoint files byte for byte, for it to check
with its own copy of the public key.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelkeep.domain import access
from modelkeep.domain.audit import (
    CHECKPOINT_PREFIX,
    GENESIS,
    AuditEvent,
    AuditHead,
    ChainReport,
    Checkpoint,
    CheckpointEntry,
    CheckpointFile,
    CheckpointResult,
    PublicKey,
    SignedCheckpoint,
    verify_with_checkpoints,
)
from modelkeep.domain.digest import sha256_digest
from modelkeep.domain.events import EventKind
from modelkeep.domain.names import check_model_name
from modelkeep.errors import AmbiguousRef, Conflict, NotFound, StoreUnavailable
from modelkeep.ports.blobs import AuditSigner, BlobStore
from modelkeep.services.context import ServiceContext


def audit_log(
    ctx: ServiceContext,
    model: str | None = None,
    since: datetime | None = None,
    after: int | None = None,
    limit: int | None = None,
) -> list[AuditEvent]:
    """Events about ``model`` (needs read on it), or every event (needs a global role);
    ``after`` (a seq) and ``limit``: one page of them."""
    if model is not None:
        check_model_name(model)
    ctx.authorize(access.READ, model)
    with ctx.store.transaction() as tx:
        return tx.audit.events(model, since, after, limit)


def checkpoint(ctx: ServiceContext) -> CheckpointResult:
    """Sign the audit head and store it outside the database (needs a global admin)."""
    ctx.authorize(access.CHECKPOINT, None)
    signer = _signer(ctx)
    with ctx.store.transaction(write=True) as tx:
        at = ctx.clock()
        seq, hash_ = tx.audit.head() or (0, GENESIS)
        draft = Checkpoint(ctx.blobs.store_id, seq, hash_, at.isoformat())
        public = signer.public_key(create=True) or b""
        signed = SignedCheckpoint(draft, signer.sign(draft.signed_bytes()).hex(), public.hex())
        data = _store(ctx.blobs, signed)
        digest = ctx.blobs.put_bytes(data).digest
        details = {"seq": seq, "hash": hash_, "name": draft.name, "digest": digest}
        ctx.record_event(tx, EventKind.AUDIT_CHECKPOINT, "audit", details, at)
        tx.commit()
    return CheckpointResult(draft.name, seq, hash_, draft.at, digest, public.hex())


def _store(blobs: BlobStore, signed: SignedCheckpoint) -> bytes:
    """Write the named copy; if a checkpoint of the same head is there already (its event
    was never committed), keep that one."""
    data = signed.to_bytes()
    try:
        blobs.put_named(signed.checkpoint.name, data)
    except Conflict:
        existing = blobs.get_named(signed.checkpoint.name)
        if existing is None:
            raise
        return existing
    return data


def verify(ctx: ServiceContext) -> ChainReport:
    """The chain, recomputed, and compared with every checkpoint in the blob store."""
    ctx.authorize(access.READ, None)
    with ctx.store.transaction() as tx:
        events, head = tx.audit.events(), tx.audit.head()
    names = ctx.blobs.list_named(CHECKPOINT_PREFIX)
    public = ctx.signer.public_key() if ctx.signer is not None and names else None
    found = [_load(ctx.blobs, name, public, ctx.signer) for name in names]
    return verify_with_checkpoints(events, head, ctx.blobs.store_id, found)


def _load(
    blobs: BlobStore, name: str, public: bytes | None, signer: AuditSigner | None
) -> CheckpointFile:
    data = blobs.get_named(name)
    if data is None:
        return CheckpointFile(name, None, "it vanished while it was being read")
    try:
        signed = SignedCheckpoint.parse(data)
    except ValueError as exc:
        return CheckpointFile(name, None, str(exc))
    if signed.checkpoint.name != name:
        return CheckpointFile(name, signed.checkpoint, "its name does not match its content")
    if public is None:
        where = signer.location if signer is not None else "this registry"
        return CheckpointFile(
            name, signed.checkpoint, f"there is no audit key at {where} to check it with"
        )
    if not signature_ok(public, signed):
        return CheckpointFile(
            name,
            signed.checkpoint,
            "its signature does not verify with the store's public key: it was forged, "
            "or signed by another key",
        )
    return CheckpointFile(name, signed.checkpoint)


def signature_ok(public: bytes, signed: SignedCheckpoint) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(
            bytes.fromhex(signed.signature), signed.checkpoint.signed_bytes()
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def public_key(ctx: ServiceContext) -> PublicKey:
    """The store's audit public key, made on first use if the store may make it."""
    ctx.authorize(access.READ, None)
    raw = _signer(ctx).public_key(create=True)
    if raw is None:
        raise StoreUnavailable("the store has no audit key", "set MODELKEEP_SIGNING_KEY")
    return PublicKey.of(raw)


def checkpoint_blobs(blobs: BlobStore) -> set[str]:
    """The digests of the checkpoints' content-addressed copies (gc keeps them)."""
    found = set()
    for name in blobs.list_named(CHECKPOINT_PREFIX):
        data = blobs.get_named(name)
        if data is not None:
            found.add(sha256_digest(data))
    return found


def head(ctx: ServiceContext) -> AuditHead:
    """The chain's head (``seq`` 0 and 64 zeros for an empty log) and the newest signed
    checkpoint that parses, if any (needs whatever reading the whole log needs)."""
    ctx.authorize(access.READ, None)
    with ctx.store.transaction() as tx:
        seq, hash_ = tx.audit.head() or (0, GENESIS)
    return AuditHead(ctx.blobs.store_id, seq, hash_, _newest_checkpoint(ctx.blobs))


def _newest_checkpoint(blobs: BlobStore) -> SignedCheckpoint | None:
    for entry in reversed(_entries(blobs)):
        data = blobs.get_named(entry.name)
        try:
            signed = SignedCheckpoint.parse(data) if data is not None else None
        except ValueError:
            continue  # not a checkpoint file: 'audit verify' names it
        if signed is not None and signed.checkpoint.name == entry.name:
            return signed
    return None


def checkpoints(
    ctx: ServiceContext, after: int | None = None, limit: int | None = None
) -> list[CheckpointEntry]:
    """The checkpoint files in the blob store, by ``seq``; ``after`` (a seq) and
    ``limit``: one page of them."""
    ctx.authorize(access.READ, None)
    found = [e for e in _entries(ctx.blobs) if after is None or e.seq > after]
    return found[:limit] if limit is not None else found


def checkpoint_file(ctx: ServiceContext, seq: int) -> tuple[str, bytes]:
    """The name and exact bytes (as signed and stored) of the checkpoint of ``seq``."""
    ctx.authorize(access.READ, None)
    names = [e.name for e in _entries(ctx.blobs) if e.seq == seq]
    if len(names) > 1:  # two heads signed at one seq: the log was rewritten in between
        raise AmbiguousRef(
            f"{len(names)} checkpoints sign seq {seq}: {', '.join(names)}",
            "the log was rewritten between them: run 'modelkeep audit verify'",
        )
    data = ctx.blobs.get_named(names[0]) if names else None
    if data is None:
        raise NotFound(
            f"there is no checkpoint of seq {seq}",
            "list them with 'modelkeep audit checkpoints' (GET /api/v1/audit/checkpoints)",
        )
    return names[0], data


def _entries(blobs: BlobStore) -> list[CheckpointEntry]:
    """The checkpoint files by seq (their names sort so); other keys are left out."""
    parsed = (CheckpointEntry.parse(name) for name in blobs.list_named(CHECKPOINT_PREFIX))
    return [entry for entry in parsed if entry is not None]


def json_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    """The export of ``audit log --json``: one JSON object per event, per line, with every
    field the hash covers (``seq, at, actor, action, subject, details``) and
    ``prev_hash``, ``hash``; keys sorted, non-ASCII kept as UTF-8."""
    for event in events:
        yield json.dumps(event.to_dict(), sort_keys=True, ensure_ascii=False)


def _signer(ctx: ServiceContext) -> AuditSigner:
    if ctx.signer is None:
        raise StoreUnavailable(
            "this registry was opened without an audit key",
            "open it with modelkeep.connect() or set MODELKEEP_SIGNING_KEY",
        )
    return ctx.signer
