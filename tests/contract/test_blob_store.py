"""The local blob store: what only a directory has (paths, file modes, inodes).

The backend-independent contract (content addressing, write-once, verify on read,
streaming, sweeping, the format file) runs on every backend in ``test_blob_contract.py``.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from modelkeep.storage.blobs.layout import FORMAT_FILE, blob_key, digest_of_key
from modelkeep.storage.blobs.local import LocalBlobStore


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "store")


def test_blobs_are_read_only_files_in_the_fan_out_directories(blobs: LocalBlobStore) -> None:
    info = blobs.put_bytes(b"hello")
    hexpart = info.digest.removeprefix("sha256:")
    path = blobs.root / "blobs" / "sha256" / hexpart[:2] / hexpart[2:]
    assert blobs.path(info.digest) == path and path.read_bytes() == b"hello"
    assert not path.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)
    assert digest_of_key(blob_key(info.digest)) == info.digest


def test_an_idempotent_put_never_overwrites_the_file(blobs: LocalBlobStore) -> None:
    first = blobs.put_bytes(b"same")
    inode = blobs.path(first.digest).stat().st_ino
    assert blobs.put_bytes(b"same") == first
    assert blobs.path(first.digest).stat().st_ino == inode
    assert list(blobs.tmp.iterdir()) == []


def test_files_that_spell_no_digest_are_not_blobs(blobs: LocalBlobStore) -> None:
    info = blobs.put_bytes(b"real")
    fan = blobs.path(info.digest).parent
    (fan / "notes.txt").write_text("not a blob")
    assert [b.digest for b in blobs.iter_blobs()] == [info.digest]


def test_the_format_file_is_readable_by_every_user_of_the_store(tmp_path: Path) -> None:
    LocalBlobStore(tmp_path / "s")
    assert stat.S_IMODE((tmp_path / "s" / FORMAT_FILE).stat().st_mode) & 0o044 == 0o044
