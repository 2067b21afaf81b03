"""Blobs in a local directory.

Writes go to ``tmp/``, are hashed while they stream, fsynced, made read-only and linked
into place with ``os.link`` (which never overwrites: put-if-absent). Reads re-hash.
Named objects (``checkpoints/…``) are written the same way, under ``<root>/checkpoints/``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from modelkeep.content import copying
from modelkeep.content.verifying import VerifyingReader
from modelkeep.domain.digest import digest_of
from modelkeep.errors import BlobNotFound, Conflict, DigestMismatch, StoreUnavailable
from modelkeep.ports.blobs import BlobInfo, Progress, StoredBlob
from modelkeep.storage.blobs.layout import (
    FORMAT_FILE,
    StoreFormat,
    blob_key,
    check_named_key,
    check_named_prefix,
    digest_of_key,
)

BUFFER = 4 * 1024 * 1024


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.tmp = root / "tmp"
        self.store_id = self._open_format().store_id

    def _open_format(self) -> StoreFormat:
        path = self.root / FORMAT_FILE
        try:
            (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
            self.tmp.mkdir(exist_ok=True)
            if not path.exists():
                _create_exclusive(path, StoreFormat.new().to_bytes())
            return StoreFormat.parse(path.read_bytes(), str(path))
        except PermissionError as exc:
            raise StoreUnavailable(
                f"cannot use the store at {self.root}: {exc.strerror}",
                "check the directory's permissions",
            ) from None

    def path(self, digest: str) -> Path:
        return self.root / blob_key(digest)

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def touch(self, digest: str) -> bool:
        try:
            os.utime(self.path(digest))
        except FileNotFoundError:
            return False
        return True

    def stat(self, digest: str) -> StoredBlob | None:
        try:
            st = self.path(digest).stat()
        except FileNotFoundError:
            return None
        return StoredBlob(digest, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def put(
        self, stream: BinaryIO, *, expected: str | None = None, progress: Progress | None = None
    ) -> BlobInfo:
        def write(out: BinaryIO) -> BlobInfo:
            info = _copy_hashing(stream, out, progress)
            if expected is not None and info.digest != expected:
                raise DigestMismatch(
                    f"the uploaded bytes hash to {info.digest}, not {expected}",
                    "upload the file again",
                )
            return info

        return self._store("upload-", write)

    def put_bytes(self, data: bytes) -> BlobInfo:
        return self.put(io.BytesIO(data))

    def put_hashed(self, data: bytes | bytearray, digest: str) -> BlobInfo:
        """Store bytes this process hashed itself (a chunk it just read), without
        hashing them again; reads still verify them."""

        def write(out: BinaryIO) -> BlobInfo:
            out.write(data)
            return BlobInfo(digest, len(data))

        return self._store("chunk-", write)

    def _store(self, prefix: str, write: Callable[[BinaryIO], BlobInfo]) -> BlobInfo:
        """A temporary file in tmp/ that ``write`` fills, fsynced, then linked into place."""
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp, prefix=prefix)
        try:
            with open(fd, "wb", buffering=0) as out:
                info = write(out)
                os.fsync(out.fileno())
            self._install(Path(tmp_name), info)
            return info
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)

    def _install(self, tmp: Path, info: BlobInfo) -> None:
        final = self.path(info.digest)
        try:
            os.chmod(tmp, 0o444)
            _link(tmp, final)
        except FileNotFoundError:  # tmp/ swept under us: a gc with too short a grace
            if not tmp.exists():
                raise BlobNotFound(
                    f"the upload of {info.digest} was deleted from tmp/ by a gc before it "
                    "was stored",
                    "push again; keep MODELKEEP_GC_GRACE_SECONDS longer than a push takes",
                ) from None
            raise
        except FileExistsError:
            if final.stat().st_size == info.size:
                os.utime(final)  # already stored; now young again, so gc spares it
                return
            os.replace(tmp, final)  # the stored copy is truncated; ours is verified
        _fsync_dir(final.parent)

    def open(self, digest: str) -> BinaryIO:
        try:
            raw = open(self.path(digest), "rb", buffering=0)  # noqa: SIM115 - returned
        except FileNotFoundError:
            raise BlobNotFound(f"blob {digest} is missing from the store") from None
        return io.BufferedReader(VerifyingReader(raw, digest), BUFFER)

    def read_bytes(self, digest: str) -> bytes:
        with self.open(digest) as reader:
            return reader.read()

    def read_unchecked(self, digest: str) -> bytes:
        try:
            return self.path(digest).read_bytes()
        except FileNotFoundError:
            raise BlobNotFound(f"blob {digest} is missing from the store") from None

    def check(self, digest: str) -> str | None:
        try:
            with open(self.path(digest), "rb", buffering=0) as raw:
                actual = _copy_hashing(raw, None, None).digest
        except FileNotFoundError:
            return "missing"
        return None if actual == digest else f"content hashes to {actual}"

    def iter_blobs(self) -> Iterator[StoredBlob]:
        base = self.root / "blobs" / "sha256"
        for fan in sorted(base.iterdir()):
            for entry in sorted(fan.iterdir()):
                digest = digest_of_key(f"blobs/sha256/{fan.name}/{entry.name}")
                if digest is None:
                    continue
                st = entry.stat()
                yield StoredBlob(digest, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def delete(self, digest: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(digest).unlink()

    def sweep_temporary(self, older_than: datetime, dry_run: bool) -> tuple[int, int]:
        count = size = 0
        for entry in self.tmp.iterdir():
            try:
                st = entry.stat()
            except FileNotFoundError:  # an upload finished (or gave up) meanwhile
                continue
            if datetime.fromtimestamp(st.st_mtime, UTC) >= older_than:
                continue
            count, size = count + 1, size + st.st_size
            if not dry_run:
                with contextlib.suppress(FileNotFoundError):
                    entry.unlink()
        return count, size

    # named objects --------------------------------------------------------------------

    def put_named(self, key: str, data: bytes) -> None:
        target = self.root / check_named_key(key)
        fd, tmp_name = tempfile.mkstemp(dir=self.tmp, prefix="named-")
        try:
            with open(fd, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp_name, 0o444)
            try:
                _link(Path(tmp_name), target)
            except FileExistsError:
                if target.read_bytes() != data:
                    raise Conflict(
                        f"{key} already exists in the store with other content",
                        "named objects are write-once",
                    ) from None
                return
            _fsync_dir(target.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)

    def get_named(self, key: str) -> bytes | None:
        try:
            return (self.root / check_named_key(key)).read_bytes()
        except FileNotFoundError:
            return None

    def list_named(self, prefix: str) -> list[str]:
        folder = self.root / check_named_prefix(prefix)
        try:
            return sorted(prefix + entry.name for entry in folder.iterdir() if entry.is_file())
        except FileNotFoundError:
            return []


def _link(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except FileNotFoundError:  # first blob of its fan-out directory
        target.parent.mkdir(exist_ok=True)
        _fsync_dir(target.parent.parent)
        os.link(source, target)


def _copy_hashing(stream: BinaryIO, out: BinaryIO | None, progress: Progress | None) -> BlobInfo:
    hasher = hashlib.sha256()
    size = copying.copy(stream, out, hasher=hasher, progress=progress)
    return BlobInfo(digest_of(hasher), size)


def _create_exclusive(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` unless it exists, atomically (two openers race safely)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".format-")
    try:
        with open(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; every user of the store reads it
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
            _fsync_dir(path.parent)
    finally:
        os.unlink(tmp)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
