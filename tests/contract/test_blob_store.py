"""The local blob store: content addressing, write-once, verify on read, streaming."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from modelkeep.errors import BlobNotFound, DigestMismatch, UnknownStoreFormat
from modelkeep.storage.blobs.layout import FORMAT_FILE, blob_key, digest_of_key
from modelkeep.storage.blobs.local import LocalBlobStore


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "store")


def test_put_names_blobs_by_sha256_in_the_fan_out_layout(blobs: LocalBlobStore) -> None:
    info = blobs.put_bytes(b"hello")
    assert info.digest == digest_of(b"hello") and info.size == 5
    hexpart = info.digest.removeprefix("sha256:")
    path = blobs.root / "blobs" / "sha256" / hexpart[:2] / hexpart[2:]
    assert path.read_bytes() == b"hello"
    assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert digest_of_key(blob_key(info.digest)) == info.digest


def test_put_is_idempotent_and_never_overwrites(blobs: LocalBlobStore) -> None:
    first = blobs.put_bytes(b"same")
    inode = blobs.path(first.digest).stat().st_ino
    assert blobs.put_bytes(b"same") == first
    assert blobs.path(first.digest).stat().st_ino == inode
    assert list(blobs.tmp.iterdir()) == []


def test_a_refused_expected_digest_stores_nothing(blobs: LocalBlobStore) -> None:
    with pytest.raises(DigestMismatch):
        blobs.put(io.BytesIO(b"abc"), expected=digest_of(b"abd"))
    assert list(blobs.iter_blobs()) == [] and list(blobs.tmp.iterdir()) == []


def test_reads_are_verified(blobs: LocalBlobStore) -> None:
    digest = blobs.put_bytes(b"precious bytes").digest
    assert blobs.read_bytes(digest) == b"precious bytes"
    path = blobs.path(digest)
    path.chmod(0o644)
    path.write_bytes(b"precious bytez")
    with pytest.raises(DigestMismatch, match="damaged"):
        blobs.read_bytes(digest)
    assert blobs.check(digest) is not None


def test_missing_blobs_are_reported(blobs: LocalBlobStore) -> None:
    digest = digest_of(b"never stored")
    with pytest.raises(BlobNotFound):
        blobs.open(digest)
    assert blobs.check(digest) == "missing" and blobs.stat(digest) is None


def test_a_truncated_blob_is_replaced_by_a_good_put(blobs: LocalBlobStore) -> None:
    digest = blobs.put_bytes(b"0123456789").digest
    path = blobs.path(digest)
    path.chmod(0o644)
    path.write_bytes(b"01234")
    blobs.put_bytes(b"0123456789")
    assert blobs.check(digest) is None


def test_a_re_put_makes_an_old_blob_young_again(blobs: LocalBlobStore) -> None:
    digest = blobs.put_bytes(b"old").digest
    old = time.time() - 7200
    os.utime(blobs.path(digest), (old, old))
    blobs.put_bytes(b"old")
    assert blobs.path(digest).stat().st_mtime > old + 3600


def test_streaming_put_uses_constant_memory(blobs: LocalBlobStore) -> None:
    class Zeros(io.RawIOBase):
        def __init__(self, size: int) -> None:
            self.left = size

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
            n = min(len(buffer), self.left)
            buffer[:n] = bytes(n)
            self.left -= n
            return n

    size = 96 * 1024 * 1024
    tracemalloc.start()
    info = blobs.put(Zeros(size))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert info.size == size
    assert peak < 16 * 1024 * 1024, f"peak {peak} bytes for a {size}-byte blob"


def test_sweep_removes_only_old_temporary_files(blobs: LocalBlobStore) -> None:
    old_file, new_file = blobs.tmp / "upload-old", blobs.tmp / "upload-new"
    old_file.write_bytes(b"x" * 10)
    new_file.write_bytes(b"y")
    past = time.time() - 7200
    os.utime(old_file, (past, past))
    cutoff = datetime.now(UTC) - timedelta(hours=1)
    assert blobs.sweep_temporary(cutoff, dry_run=True) == (1, 10) and old_file.exists()
    assert blobs.sweep_temporary(cutoff, dry_run=False) == (1, 10)
    assert not old_file.exists() and new_file.exists()


def test_the_format_file_is_kept_and_checked(tmp_path: Path) -> None:
    first = LocalBlobStore(tmp_path / "s")
    assert LocalBlobStore(tmp_path / "s").store_id == first.store_id
    (tmp_path / "s" / FORMAT_FILE).write_text('{"format": 99, "store_id": "x"}')
    with pytest.raises(UnknownStoreFormat, match="99"):
        LocalBlobStore(tmp_path / "s")
    (tmp_path / "s" / FORMAT_FILE).write_text("not json")
    with pytest.raises(UnknownStoreFormat):
        LocalBlobStore(tmp_path / "s")
