"""The audit chain: every change is an event hash-chained to the one before it.

``hash = sha256(prev_hash + canonical_json(event))`` in hex, where the event is
``{seq, at, actor, action, subject, details}`` in canonical JSON (RFC 8785,
``domain/canonical.py``) and ``prev_hash`` of the first event is 64 zeros. Events hashed
before canonical form 2 used the legacy form; they still verify (``hash_matches``).

A *checkpoint* is a signed statement "the log of store S had event ``seq`` with ``hash``
at time T". It is kept outside the database (in the blob store), so a log truncated
below a checkpoint's ``seq``, or rewritten up to it, no longer matches it. This module
holds its canonical form and the comparison of a chain against checkpoints; signing and
checking signatures (Ed25519) is the services' job.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelkeep.domain.canonical import canonical_forms
from modelkeep.domain.canonical import canonical_json as canonical_json
from modelkeep.domain.events import EventKind

GENESIS = "0" * 64
CHECKPOINT_FORMAT = "modelkeep-audit-checkpoint-1"
CHECKPOINT_PREFIX = "checkpoints/"


@dataclass(frozen=True)
class AuditEvent:
    seq: int
    at: datetime
    actor: str
    action: str
    subject: str
    details: Mapping[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS
    hash: str = ""

    def body(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "subject": self.subject,
            "details": dict(self.details),
        }

    def compute_hash(self) -> str:
        """The hash of this event written now: over its canonical JSON."""
        return self._hash_of(canonical_json(self.body()))

    def hash_matches(self) -> bool:
        """Whether ``hash`` is this event's hash, in the canonical form or, for an event
        written before canonical form 2, in the legacy form (``domain/canonical.py``)."""
        return any(self._hash_of(form) == self.hash for form in canonical_forms(self.body()))

    def _hash_of(self, canonical: bytes) -> str:
        return hashlib.sha256(self.prev_hash.encode("utf-8") + canonical).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {**self.body(), "prev_hash": self.prev_hash, "hash": self.hash}


def chain(
    prev_seq: int,
    prev_hash: str,
    at: datetime,
    actor: str,
    action: str,
    subject: str,
    details: Mapping[str, Any],
) -> AuditEvent:
    """The next event after ``(prev_seq, prev_hash)``, with its hash filled in."""
    draft = AuditEvent(prev_seq + 1, at, actor, action, subject, details, prev_hash)
    return AuditEvent(
        draft.seq, at, actor, action, subject, details, prev_hash, draft.compute_hash()
    )


@dataclass(frozen=True)
class ChainReport:
    """``first_bad_seq`` is None when the problem is not in the chain itself (a forged or
    missing checkpoint); ``checkpoints`` names the checkpoints compared with the chain and
    ``checkpoint`` the one that found the problem, if one did."""

    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str | None = None
    checkpoints: tuple[str, ...] = ()
    checkpoint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "first_bad_seq": self.first_bad_seq,
            "problem": self.problem,
            "checkpoints": list(self.checkpoints),
            "checkpoint": self.checkpoint,
        }


def verify_chain(events: Iterable[AuditEvent], head: tuple[int, str] | None) -> ChainReport:
    """Recompute the chain; name the first event that was edited, deleted or reordered.

    ``head`` is the ``(seq, hash)`` the store recorded for its last event; it catches
    deletion of the newest events.
    """
    expected_seq, prev_hash, checked = 1, GENESIS, 0
    for event in events:
        problem = _event_problem(event, expected_seq, prev_hash)
        if problem:
            return ChainReport(False, checked, min(event.seq, expected_seq), problem)
        expected_seq, prev_hash, checked = event.seq + 1, event.hash, checked + 1
    if head is not None and head != (expected_seq - 1, prev_hash):
        return ChainReport(
            False,
            checked,
            expected_seq,
            f"the log ends at seq {expected_seq - 1} but its head says "
            f"seq {head[0]}: events were deleted",
        )
    return ChainReport(True, checked)


def _event_problem(event: AuditEvent, expected_seq: int, prev_hash: str) -> str:
    if event.seq != expected_seq:
        return f"seq {expected_seq} is missing (next is {event.seq}): events were deleted"
    if event.prev_hash != prev_hash:
        return f"seq {event.seq} does not follow seq {event.seq - 1}: the chain was changed"
    if not event.hash_matches():
        return f"seq {event.seq} does not match its hash: the event was edited"
    return ""


# checkpoints ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """What is signed: ``canonical_json(body())``."""

    store_id: str
    seq: int
    hash: str
    at: str
    """ISO-8601 UTC time of the checkpoint (``datetime.isoformat()``)."""

    def body(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "store_id": self.store_id,
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at,
        }

    def signed_bytes(self) -> bytes:
        return canonical_json(self.body())

    @property
    def name(self) -> str:
        """Its write-once key in the blob store: sorted by seq when listed."""
        return checkpoint_name(self.seq, self.hash)


def checkpoint_name(seq: int, hash_: str) -> str:
    return f"{CHECKPOINT_PREFIX}{seq:020d}-{hash_[:12]}.json"


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint file: ``{"checkpoint": body, "signature": hex, "public_key": hex}``.

    ``public_key`` (raw 32-byte Ed25519 key, hex) says who claims to have signed; a
    verifier checks the signature with the key it trusts, never with this one."""

    checkpoint: Checkpoint
    signature: str
    public_key: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": self.checkpoint.body(),
            "signature": self.signature,
            "public_key": self.public_key,
        }

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_dict()) + b"\n"

    @classmethod
    def parse(cls, data: bytes) -> SignedCheckpoint:
        """Raises ValueError unless ``data`` is a checkpoint file of this format."""
        try:
            document = json.loads(data)
            body = document["checkpoint"]
            checkpoint = Checkpoint(body["store_id"], body["seq"], body["hash"], body["at"])
            fields_ok = (
                body["format"] == CHECKPOINT_FORMAT
                and set(body) == set(checkpoint.body())
                and isinstance(checkpoint.seq, int)
                and all(isinstance(v, str) for v in (checkpoint.store_id, checkpoint.hash))
                and isinstance(checkpoint.at, str)
                and isinstance(document["signature"], str)
                and isinstance(document["public_key"], str)
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a checkpoint document ({exc})") from None
        if not fields_ok:
            raise ValueError(f"not a {CHECKPOINT_FORMAT} document")
        return cls(checkpoint, document["signature"], document["public_key"])


@dataclass(frozen=True)
class CheckpointFile:
    """A checkpoint as found in the blob store, after its signature was checked.

    ``checkpoint`` is None when the file could not be read; ``problem`` says why it
    cannot be trusted (unreadable, signed by another key, misnamed), None when sound."""

    name: str
    checkpoint: Checkpoint | None
    problem: str | None = None


def verify_with_checkpoints(
    events: Sequence[AuditEvent],
    head: tuple[int, str] | None,
    store_id: str,
    checkpoints: Sequence[CheckpointFile],
) -> ChainReport:
    """``verify_chain``, then compare the chain with every signed checkpoint.

    A checkpoint vouches that the chain had ``(seq, hash)``: a chain that now ends below
    ``seq`` was truncated (the first missing seq is bad); one whose event ``seq`` has
    another hash was rewritten at or before ``seq``. Checkpoints that cannot be trusted
    are reported too. Problems in the chain itself come first, by seq.
    """
    names = tuple(c.name for c in checkpoints)
    report = verify_chain(events, head)
    if not report.ok:
        return ChainReport(False, report.checked, report.first_bad_seq, report.problem, names)
    hashes = {e.seq: e.hash for e in events}
    last = max(hashes, default=0)
    sound = sorted(
        (c for c in checkpoints if c.problem is None and c.checkpoint is not None),
        key=lambda c: c.checkpoint.seq if c.checkpoint else 0,
    )
    vouched = 0
    for found in sound:
        assert found.checkpoint is not None
        problem = _checkpoint_problem(found.checkpoint, store_id, hashes, last, vouched)
        if problem is not None:
            bad_seq, text = problem
            return ChainReport(False, report.checked, bad_seq, text, names, found.name)
        vouched = found.checkpoint.seq
    for found in checkpoints:
        if found.problem is not None:
            text = f"checkpoint {found.name} cannot be trusted: {found.problem}"
            return ChainReport(False, report.checked, None, text, names, found.name)
    missing = _unrecorded_checkpoints(events, set(names))
    if missing:
        return ChainReport(False, report.checked, None, missing, names)
    return ChainReport(True, report.checked, checkpoints=names)


def _checkpoint_problem(
    checkpoint: Checkpoint, store_id: str, hashes: Mapping[int, str], last: int, vouched: int
) -> tuple[int | None, str] | None:
    if checkpoint.store_id != store_id:
        return None, f"it belongs to store {checkpoint.store_id}, not to this store {store_id}"
    if checkpoint.seq > last:
        return (
            last + 1,
            f"the log ends at seq {last} but a signed checkpoint vouches for seq "
            f"{checkpoint.seq}: events from seq {last + 1} on were deleted",
        )
    if hashes.get(checkpoint.seq, GENESIS) != checkpoint.hash:
        return (
            checkpoint.seq,
            f"seq {checkpoint.seq} is not the event a signed checkpoint vouches for "
            f"(hash {checkpoint.hash[:12]}…): the log was rewritten between seq "
            f"{vouched + 1} and seq {checkpoint.seq}",
        )
    return None


def _unrecorded_checkpoints(events: Iterable[AuditEvent], found: set[str]) -> str | None:
    """A checkpoint the log says was written, but which is gone from the blob store."""
    for event in events:
        if event.action != EventKind.AUDIT_CHECKPOINT:
            continue
        name = event.details.get("name")
        if isinstance(name, str) and name not in found:
            return (
                f"seq {event.seq} recorded checkpoint {name}, which is missing from the "
                "blob store: checkpoints were deleted"
            )
    return None


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
        # imported here: ``import modelkeep`` stays light, and only a store has a key
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

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


CHECKPOINT_NAME = re.compile(re.escape(CHECKPOINT_PREFIX) + r"(\d{20})-([0-9a-f]{12})\.json")
"""``checkpoint_name``'s form: what the blob store's ``checkpoints/`` holds by rights."""


@dataclass(frozen=True)
class CheckpointEntry:
    """A checkpoint file in the blob store, by name (its content unread, so unchecked)."""

    seq: int
    name: str

    @classmethod
    def parse(cls, name: str) -> CheckpointEntry | None:
        """None for a key that is not a checkpoint's name."""
        found = CHECKPOINT_NAME.fullmatch(name)
        return cls(int(found.group(1)), name) if found else None

    def to_dict(self) -> dict[str, Any]:
        return {"seq": self.seq, "name": self.name}


@dataclass(frozen=True)
class AuditHead:
    """Where the chain ends now, read without the events: what an outside verifier
    compares with the head it recorded earlier, and the newest signed checkpoint (as the
    blob store holds it: its signature is for the verifier to check, with a key it
    trusts)."""

    store_id: str
    seq: int
    """0 for an empty log."""
    hash: str
    """The newest event's hash; 64 zeros for an empty log."""
    checkpoint: SignedCheckpoint | None

    def to_dict(self) -> dict[str, Any]:
        latest = self.checkpoint
        return {
            "store_id": self.store_id,
            "seq": self.seq,
            "hash": self.hash,
            "checkpoint": None
            if latest is None
            else {
                "name": latest.checkpoint.name,
                **latest.checkpoint.body(),
                "signature": latest.signature,
                "public_key": latest.public_key,
            },
        }
