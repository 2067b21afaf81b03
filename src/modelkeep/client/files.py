"""The user's files: what a push reads and what a pull writes.

A pushed file is read once: a small one streams into the store while it is hashed, a
large one is cut into chunks that are hashed and stored (or sent) as they are read, and
only the chunks the store lacks are written. A file that changes meanwhile is refused.
A pull writes every file into a staging directory inside DEST, verifies it, and only
then moves the files into place: a damaged blob never lands.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from modelkeep.content import chunking, copying, scanning
from modelkeep.content.scanning import Scan, Sink
from modelkeep.domain.digest import digest_of, hex_part, sha256_digest
from modelkeep.domain.manifest import FileEntry, check_path
from modelkeep.domain.recipes import Recipe
from modelkeep.errors import (
    BlobNotFound,
    DestinationConflict,
    DigestMismatch,
    EmptyPush,
    FileChanged,
    InvalidInput,
    MissingChunk,
    UnsafePath,
)
from modelkeep.ports.blobs import BlobInfo, Progress

if TYPE_CHECKING:
    from modelkeep.ports.blobs import BlobInfo, Progress

    Uploader = Callable[[BinaryIO, Progress | None], BlobInfo]
Opener = Callable[[str], BinaryIO]
log = logging.getLogger("modelkeep")


@dataclass(frozen=True)
class LocalFile:
    path: str  # where it goes in the version
    source: Path

    @property
    def size(self) -> int:
        return self.source.stat().st_size


def collect(paths: Iterable[str | os.PathLike[str]]) -> list[LocalFile]:
    """A file goes in under its base name, a directory's files under their relative paths."""
    found: list[LocalFile] = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            found.extend(_walk(path))
        elif path.is_file():
            found.append(LocalFile(check_path(path.name), path))
        elif not path.exists():
            raise InvalidInput(f"{str(given)!r} does not exist", "check the path")
        else:
            raise UnsafePath(f"{str(given)!r} is not a regular file or directory")
    if not found:
        raise EmptyPush("nothing to push: the given paths hold no files")
    return found


def _walk(top: Path) -> list[LocalFile]:
    root = top.resolve()
    found = []
    for dirpath, dirnames, filenames in os.walk(top):
        for name in sorted(dirnames):
            _refuse_linked_dir(Path(dirpath) / name)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            _check_inside(path, root)
            relative = path.relative_to(top).as_posix()
            found.append(LocalFile(check_path(relative), path))
    return found


def _refuse_linked_dir(path: Path) -> None:
    if path.is_symlink():
        raise UnsafePath(
            f"{str(path)!r} is a symlink to a directory",
            "replace it with the directory it points to, or remove it",
        )


def _check_inside(path: Path, root: Path) -> None:
    if path.is_symlink() and not path.resolve().is_relative_to(root):
        raise UnsafePath(f"{str(path)!r} is a symlink to {path.resolve()}, outside {str(root)!r}")
    mode = path.stat().st_mode
    if not stat.S_ISREG(mode):
        raise UnsafePath(f"{str(path)!r} is not a regular file")


def upload(file: LocalFile, put: Uploader, progress: Progress | None) -> FileEntry:
    before = file_state(file.source)
    with open(file.source, "rb") as stream:
        info = put(stream, progress)
        during = _state(os.fstat(stream.fileno()))
    if info.size != before[1] or during != before or changed_since(file.source, before):
        raise FileChanged(f"{str(file.source)!r} changed while it was being pushed")
    return FileEntry(file.path, info.size, info.digest)


def upload_chunked(
    file: LocalFile,
    sink: Sink,
    record: Callable[[Scan], str],
    progress: Progress | None,
    workers: int = scanning.WORKERS,
    whole_digest: bool = True,
) -> FileEntry:
    """A large file in chunks: each chunk to ``sink`` as it is hashed, then the list of
    chunks to ``record``, which stores it and returns the file's digest. Chunks sent
    before an interruption stay stored, so a retry sends only the rest."""
    before = file_state(file.source)
    scan = scanning.scan_file(
        file.source,
        sink,
        warn=_warn,
        progress=progress,
        workers=workers,
        whole_digest=whole_digest,
    )
    if scan.size != before[1] or changed_since(file.source, before):
        raise FileChanged(f"{str(file.source)!r} changed while it was being pushed")
    return FileEntry(file.path, scan.size, record(scan))


def _warn(message: str) -> None:
    log.warning("%s", message)


def is_chunked(file: LocalFile) -> bool:
    return file.size >= chunking.WHOLE_BELOW


def file_state(path: Path) -> tuple[int, int, int]:
    """What tells a file changed: inode, size, modification time."""
    return _state(os.stat(path))


def changed_since(path: Path, state: tuple[int, int, int]) -> bool:
    return file_state(path) != state


def _state(st: os.stat_result) -> tuple[int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class PullPlan:
    write: tuple[FileEntry, ...]
    unchanged: tuple[FileEntry, ...]


def plan_pull(files: Sequence[FileEntry], dest: Path, *, force: bool) -> PullPlan:
    """Which files must be written; refuse to overwrite different files unless forced."""
    write, unchanged, conflicts = [], [], []
    root = dest.resolve()
    for entry in files:
        target = dest / entry.path
        if not target.parent.resolve().is_relative_to(root) and target.parent.exists():
            raise UnsafePath(f"{str(target.parent)!r} leads outside {str(dest)!r}")
        if target.is_file() and not target.is_symlink() and _same_content(target, entry):
            unchanged.append(entry)
            continue
        blocking = _blocking_parents(dest, entry.path)
        if blocking or target.exists() or target.is_symlink():
            conflicts.append(blocking[0] if blocking else entry.path)
        write.append(entry)
    if conflicts and not force:
        shown = ", ".join(conflicts[:3]) + (" …" if len(conflicts) > 3 else "")
        raise DestinationConflict(f"{str(dest)!r} already holds different files: {shown}")
    return PullPlan(tuple(write), tuple(unchanged))


def _blocking_parents(dest: Path, path: str) -> list[str]:
    """Parts of ``path``'s directory that exist in ``dest`` as something else than a folder."""
    parts = path.split("/")[:-1]
    found = []
    for depth in range(1, len(parts) + 1):
        relative = "/".join(parts[:depth])
        here = dest / relative
        if here.is_symlink() or (here.exists() and not here.is_dir()):
            found.append(relative)
    return found


def _clear_way(dest: Path, path: str) -> None:
    """With --force: remove whatever stands where ``path``'s folders must go."""
    for relative in _blocking_parents(dest, path):
        with contextlib.suppress(FileNotFoundError):
            (dest / relative).unlink()


def _same_content(path: Path, entry: FileEntry) -> bool:
    if path.stat().st_size != entry.size:
        return False
    with open(path, "rb") as stream:
        return copying.sha256_of(stream)[0] == entry.digest


class FileSource(Protocol):
    """Where a pull reads files from: a backend."""

    def file_recipe(self, digest: str) -> Recipe: ...
    def open_blob(self, digest: str) -> BinaryIO: ...
    def fetch_chunk(self, digest: str, size: int) -> bytes:
        """A chunk's bytes; the caller checks them by the whole file's digest."""
        ...


PARTIAL = ".modelkeep-partial"
"""Chunked files being pulled into DEST live here until complete: a pull that was
interrupted finds the chunks it already wrote and fetches only the rest."""


def write_files(
    plan: PullPlan, dest: Path, source: FileSource, progress: Progress | None, context: str
) -> None:
    """Write ``plan.write`` into ``dest``: all verified in staging first, then moved."""
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".modelkeep-pull-", dir=dest))
    try:
        staged = [
            (_stage(entry, staging, i, source, progress, context), entry)
            for i, entry in enumerate(plan.write)
        ]
        for temp, entry in staged:
            target = dest / entry.path
            _clear_way(dest, entry.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            os.replace(temp, target)
        with contextlib.suppress(OSError):
            (dest / PARTIAL).rmdir()  # only if empty: other pulls may be under way
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _stage(
    entry: FileEntry,
    staging: Path,
    index: int,
    source: FileSource,
    progress: Progress | None,
    context: str,
) -> Path:
    temp = staging / str(index)
    try:
        recipe = source.file_recipe(entry.digest)
        if recipe.is_whole:
            with source.open_blob(entry.digest) as stream, open(temp, "wb", buffering=0) as out:
                copying.copy(stream, out, progress=progress)  # the reader verifies as it reads
                os.fsync(out.fileno())
        else:
            partial = staging.parent / PARTIAL / hex_part(recipe.digest)
            rebuild(partial, recipe, source.fetch_chunk, progress)
            os.replace(partial, temp)
    except (DigestMismatch, BlobNotFound, MissingChunk) as exc:
        raise type(exc)(f"file {entry.path!r} of {context}: {exc.message}", exc.hint) from None
    with contextlib.suppress(OSError):
        os.chmod(temp, 0o644)
    return temp


Fetch = Callable[[str, int], bytes]


def rebuild(path: Path, recipe: Recipe, fetch_chunk: Fetch, progress: Progress | None) -> None:
    """Write a chunked file at ``path``: chunks fetched in parallel, each written at its
    offset as it arrives, the whole file hashed in order here against its digest (which
    checks every chunk at once). Chunks a previous, interrupted try already wrote there
    are kept, not fetched again."""
    path.parent.mkdir(exist_ok=True)
    offsets = recipe.offsets()
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        have = os.fstat(fd).st_size
        os.ftruncate(fd, recipe.size)

        def fetch(i: int) -> bytes:
            chunk = recipe.chunks[i]
            if offsets[i] + chunk.size <= have:
                kept = os.pread(fd, chunk.size, offsets[i])
                if sha256_digest(kept) == chunk.digest:
                    return kept
            try:
                data = fetch_chunk(chunk.digest, chunk.size)
            except BlobNotFound:
                raise MissingChunk(f"chunk {chunk.digest} is missing from the store") from None
            if len(data) != chunk.size:
                raise DigestMismatch(f"chunk {chunk.digest} arrived with {len(data)} bytes")
            os.pwrite(fd, data, offsets[i])
            return data

        whole = hashlib.sha256()
        for data in copying.in_order(fetch, len(recipe.chunks)):
            whole.update(data)
            if progress is not None:
                progress(len(data))
        if digest_of(whole) != recipe.digest:
            raise DigestMismatch(f"{_bad_chunks(fd, recipe)} did not arrive intact")
        os.fsync(fd)
    finally:
        os.close(fd)


def _bad_chunks(fd: int, recipe: Recipe) -> str:
    """Which chunks the file at ``fd`` holds wrong (a retry fetches just those again)."""
    bad = [
        c.digest
        for c, at in zip(recipe.chunks, recipe.offsets(), strict=True)
        if sha256_digest(os.pread(fd, c.size, at)) != c.digest
    ]
    return "chunk " + ", ".join(bad) if bad else f"the chunks of {recipe.digest}"
