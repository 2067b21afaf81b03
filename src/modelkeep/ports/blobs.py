"""The blob store and the audit key: content-addressed bytes, and who may sign."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO, Protocol

Progress = Callable[[int], None]
"""Called with the number of bytes just transferred (or read and found already stored).
A progress object may also have a ``skipped(n)`` method: it is told, besides, how many
of those bytes were not sent because the store already had them (``report_skipped``)."""


def report_skipped(progress: Progress | None, size: int) -> None:
    """Tell ``progress`` that ``size`` bytes were already stored, if it wants to know."""
    skipped = getattr(progress, "skipped", None)
    if callable(skipped) and size:
        skipped(size)


@dataclass(frozen=True)
class BlobInfo:
    digest: str
    size: int


@dataclass(frozen=True)
class StoredBlob:
    digest: str
    size: int
    modified: datetime


class BlobStore(Protocol):
    """Write-once, content-addressed bytes, verified on every read."""

    store_id: str

    def has(self, digest: str) -> bool: ...

    def touch(self, digest: str) -> bool:
        """Make a stored blob young again (gc spares young blobs); False if absent."""
        ...

    def stat(self, digest: str) -> StoredBlob | None:
        """Size and age of a stored blob (its age is refreshed by every put); None if absent."""
        ...

    def put(
        self, stream: BinaryIO, *, expected: str | None = None, progress: Progress | None = None
    ) -> BlobInfo: ...

    def put_bytes(self, data: bytes) -> BlobInfo: ...

    def put_hashed(self, data: bytes | bytearray, digest: str) -> BlobInfo:
        """Store ``data`` whose sha256 the caller just computed from this very buffer."""
        ...

    def open(self, digest: str) -> BinaryIO:
        """A reader that raises DigestMismatch at end of stream if the bytes are damaged."""
        ...

    def read_bytes(self, digest: str) -> bytes: ...

    def read_unchecked(self, digest: str) -> bytes:
        """A blob's bytes without re-hashing them: only for a caller that checks them
        another way (a chunk read to hash a whole file against its digest)."""
        ...

    def check(self, digest: str) -> str | None:
        """Re-hash one blob: None when intact, else what is wrong."""
        ...

    def iter_blobs(self) -> Iterator[StoredBlob]: ...

    def delete(self, digest: str) -> None: ...

    def sweep_temporary(self, older_than: datetime, dry_run: bool) -> tuple[int, int]:
        """Remove abandoned upload files older than ``older_than``: (count, bytes)."""
        ...

    # named objects: small write-once documents under a known key (audit checkpoints),
    # found by listing, without trusting the database

    def put_named(self, key: str, data: bytes) -> None:
        """Store ``data`` under ``key`` (e.g. ``checkpoints/NAME.json``), write-once.

        Raises Conflict if ``key`` holds other bytes; storing the same bytes again is a
        no-op. Keys are ``PREFIX/NAME`` with a known prefix (``layout.NAMED_PREFIXES``)."""
        ...

    def get_named(self, key: str) -> bytes | None:
        """The bytes under ``key``; None if there is no such object."""
        ...

    def list_named(self, prefix: str) -> list[str]:
        """Every key under ``prefix`` (e.g. ``checkpoints/``), sorted."""
        ...


class AuditSigner(Protocol):
    """The store's Ed25519 audit key, kept outside the database (a file, or a KMS).

    Whoever can only write the database cannot sign with it, so its signed checkpoints
    of the audit head make a truncated or rewritten log evident."""

    location: str
    """Where the key lives, for messages (a path)."""

    def public_key(self, *, create: bool = False) -> bytes | None:
        """The raw 32-byte Ed25519 public key; None if there is no key yet (and not
        ``create``; with ``create`` a missing key is made, where the store may make one)."""
        ...

    def sign(self, data: bytes) -> bytes:
        """The 64-byte Ed25519 signature of ``data``; makes the key on first use."""
        ...


class ModelSigner(Protocol):
    """The store's ECDSA P-256 key for OpenSSF model-signing signatures (``sign``)."""

    location: str

    def public_key_pem(self) -> bytes:
        """Its SubjectPublicKeyInfo PEM; makes the key on first use."""
        ...

    def sign(self, data: bytes) -> bytes:
        """The ECDSA P-256 SHA-256 signature of ``data`` (DER)."""
        ...
