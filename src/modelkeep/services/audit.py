"""Signed checkpoints of the audit head, verification against them, and the export.

``checkpoint`` signs ``(store_id, seq, hash, at)`` of the newest event with the store's
Ed25519 key (kept outside the database, see ``ports.AuditSigner``) and writes the signed
document to the blob store twice: as a content-addressed blob and under the write-once
name ``checkpoints/<seq, 20 digits>-<first 12 hex of hash>.json``, which ``verify``
lists without asking the database. Then it records an ``audit.checkpoint`` event.

``verify`` recomputes the chain and compares it with every checkpoint whose signature
the store's public key accepts: a log truncated below a checkpoint, or rewritten up to
one, is reported even when its ``audit_head`` was rewritten to match.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelkeep.domain import access
from modelkeep.domain.audit import (
    CHECKPOINT_ACTION,
    CHECKPOINT_PREFIX,
    GENESIS,
    AuditEvent,
    ChainReport,
    Checkpoint,
    CheckpointFile,
    SignedCheckpoint,
    verify_with_checkpoints,
)
from modelkeep.domain.digest import sha256_digest
from modelkeep.errors import Conflict, StoreUnavailable
from modelkeep.ports import AuditSigner, BlobStore

if TYPE_CHECKING:
    from modelkeep.services.registry import Registry


@dataclass(frozen=True)
class CheckpointResult:
    """A checkpoint written: its name in the blob store, what it vouches for, its blob."""

    name: str
    seq: int
    hash: str
    at: str
    digest: str
    public_key: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at,
            "digest": self.digest,
            "public_key": self.public_key,
        }


@dataclass(frozen=True)
class PublicKey:
    """The store's audit public key: raw 32 bytes (hex) and SubjectPublicKeyInfo PEM."""

    hex: str
    pem: str
    fingerprint: str
    """sha256 of the raw key, hex."""

    @classmethod
    def of(cls, raw: bytes) -> PublicKey:
        pem = (
            Ed25519PublicKey.from_public_bytes(raw)
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode("ascii")
        )
        return cls(raw.hex(), pem, hashlib.sha256(raw).hexdigest())

    def to_dict(self) -> dict[str, Any]:
        return {
            "algorithm": "ed25519",
            "public_key_hex": self.hex,
            "public_key_pem": self.pem,
            "fingerprint": self.fingerprint,
        }


def checkpoint(registry: Registry) -> CheckpointResult:
    """Sign the audit head and store it outside the database (needs a global admin)."""
    registry.authorize(access.CHECKPOINT, None)
    signer = _signer(registry)
    with registry.store.transaction(write=True) as tx:
        at = registry.clock()
        seq, hash_ = tx.audit_head() or (0, GENESIS)
        draft = Checkpoint(registry.blobs.store_id, seq, hash_, at.isoformat())
        public = signer.public_key(create=True) or b""
        signed = SignedCheckpoint(draft, signer.sign(draft.signed_bytes()).hex(), public.hex())
        data = _store(registry.blobs, signed)
        digest = registry.blobs.put_bytes(data).digest
        details = {"seq": seq, "hash": hash_, "name": draft.name, "digest": digest}
        registry._audit(tx, CHECKPOINT_ACTION, "audit", details, at)
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


def verify(registry: Registry) -> ChainReport:
    """The chain, recomputed, and compared with every checkpoint in the blob store."""
    registry.authorize(access.READ, None)
    with registry.store.transaction() as tx:
        events, head = tx.audit_events(), tx.audit_head()
    names = registry.blobs.list_named(CHECKPOINT_PREFIX)
    public = registry.signer.public_key() if registry.signer is not None and names else None
    found = [_load(registry.blobs, name, public, registry.signer) for name in names]
    return verify_with_checkpoints(events, head, registry.blobs.store_id, found)


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


def public_key(registry: Registry) -> PublicKey:
    """The store's audit public key, made on first use if the store may make it."""
    registry.authorize(access.READ, None)
    raw = _signer(registry).public_key(create=True)
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


def json_lines(events: Iterable[AuditEvent]) -> Iterator[str]:
    """The export of ``audit log --json``: one JSON object per event, per line, with every
    field the hash covers (``seq, at, actor, action, subject, details``) and
    ``prev_hash``, ``hash``; keys sorted, non-ASCII kept as UTF-8."""
    for event in events:
        yield json.dumps(event.to_dict(), sort_keys=True, ensure_ascii=False)


def _signer(registry: Registry) -> AuditSigner:
    if registry.signer is None:
        raise StoreUnavailable(
            "this registry was opened without an audit key",
            "open it with modelkeep.connect() or set MODELKEEP_SIGNING_KEY",
        )
    return registry.signer
