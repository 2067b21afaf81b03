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
import stat
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol, TypeVar

from modelkeep.client import destination
from modelkeep.client.destination import Kind
from modelkeep.content import chunking, copying, scanning
from modelkeep.content.scanning import Scan, Sink
from modelkeep.domain.digest import digest_of, hex_part, sha256_digest
from modelkeep.domain.manifest import FileEntry, check_new_paths, layout_collision
from modelkeep.domain.recipes import Recipe
from modelkeep.errors import (
    BlobNotFound,
    DestinationConflict,
    DigestMismatch,
    EmptyPush,
    FileChanged,
    InvalidInput,
    IOFailure,
    MissingChunk,
    UnsafePath,
)
from modelkeep.ports.blobs import BlobInfo, Progress

if TYPE_CHECKING:
    from modelkeep.ports.blobs import BlobInfo, Progress

    Uploader = Callable[[BinaryIO, Progress | None], BlobInfo]
Opener = Callable[[str], BinaryIO]
T = TypeVar("T")
log = logging.getLogger("modelkeep")


@dataclass(frozen=True)
class LocalFile:
    path: str  # where it goes in the version
    source: Path

    @property
    def size(self) -> int:
        return self.source.stat().st_size


def collect(paths: Iterable[str | os.PathLike[str]]) -> list[LocalFile]:
    """The files a push sends, by the one symlink rule (docs/concepts.md, "Symlinks"): a
    path named here is resolved first, so a symlink you name is pushed as what it points
    to; inside a directory, a symlink is followed only to a regular file inside that
    directory, never to a directory. A named file goes in under the name you gave, a
    directory's files under their paths relative to it, in Unicode NFC. The paths must
    pass the rule for new versions (``check_new_paths``), checked here before any byte
    is read."""
    listed: list[tuple[str, Path]] = []  # each file's path as the OS lists it, its source
    for given in paths:
        path = Path(given)
        if not path.exists():
            problem = "is a symlink to nothing" if path.is_symlink() else "does not exist"
            raise InvalidInput(f"{str(given)!r} {problem}", "check the path")
        source = path.resolve()
        if source.is_dir():
            listed.extend(_walk(source))
        elif source.is_file():
            listed.append((path.name, source))
        else:
            raise UnsafePath(f"{str(given)!r} is not a regular file or directory")
    if not listed:
        raise EmptyPush("nothing to push: the given paths hold no files")
    clash = layout_collision({name for name, _ in listed})  # before NFC makes them equal
    if clash:
        raise UnsafePath(clash, "rename one of them (see 'File entry' in docs/concepts.md)")
    found = [LocalFile(_stored_path(name), source) for name, source in listed]
    check_new_paths(f.path for f in found)
    return found


def _stored_path(name: str) -> str:
    """A file's path as the version stores it: in NFC, whatever form the OS listed it in
    (macOS may list decomposed names), so one folder has one digest on every OS."""
    return unicodedata.normalize("NFC", name)


def _walk(root: Path) -> list[tuple[str, Path]]:
    """The files under ``root`` (resolved): their relative paths and sources; symlinks
    only to regular files inside ``root``."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames):
            _refuse_linked_dir(Path(dirpath) / name)
        for name in sorted(filenames):
            path = Path(dirpath) / name
            found.append((path.relative_to(root).as_posix(), _inside(path, root)))
    return found


def _refuse_linked_dir(path: Path) -> None:
    if path.is_symlink():
        raise UnsafePath(
            f"{str(path)!r} is a symlink to a directory",
            "replace it with the directory it points to, or remove it",
        )


def _inside(path: Path, root: Path) -> Path:
    """The regular file ``path`` is, or leads to by a symlink inside ``root``."""
    source = path.resolve() if path.is_symlink() else path
    if not source.is_relative_to(root):
        raise UnsafePath(f"{str(path)!r} is a symlink to {str(source)!r}, outside {str(root)!r}")
    if not source.exists():
        raise UnsafePath(f"{str(path)!r} is a symlink to {str(source)!r}, which does not exist")
    if not stat.S_ISREG(source.stat().st_mode):
        raise UnsafePath(f"{str(path)!r} is not a regular file")
    return source


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
    force: bool = False


def plan_pull(files: Sequence[FileEntry], dest: Path, *, force: bool) -> PullPlan:
    """Which files must be written, checked before anything is: the version's paths can
    all be files of one tree, and nothing in DEST is in the way (a different file, a
    file or symlink where a folder must go, a folder where a file must go) unless
    ``force``. A symlink under DEST is refused (``unsafe_path``) and never followed."""
    collision = layout_collision((f.path for f in files), fold=False)
    if collision:
        raise UnsafePath(f"this version cannot be pulled: {collision}", _OLD_VERSION_HINT)
    destination.check_dest(dest)
    write, unchanged, conflicts = [], [], []
    for entry in files:
        where, kind = destination.inspect(dest, entry.path)
        if kind is Kind.SYMLINK and not force:
            raise destination.refuse_symlink(dest, where)
        if kind is Kind.FILE and where == entry.path and _same_content(dest, entry):
            unchanged.append(entry)
            continue
        if kind is not Kind.ABSENT:
            conflicts.append(where)
        write.append(entry)
    if conflicts and not force:
        shown = ", ".join(conflicts[:3]) + (" …" if len(conflicts) > 3 else "")
        raise DestinationConflict(f"{str(dest)!r} already holds different files: {shown}")
    return PullPlan(tuple(write), tuple(unchanged), force)


_OLD_VERSION_HINT = (
    "it was registered before such paths were refused, and no folder can hold both; "
    "'modelkeep show' lists its files: push a version whose paths do not clash"
)


def _same_content(dest: Path, entry: FileEntry) -> bool:
    fd = destination.open_regular(dest, entry.path)
    if fd is None:
        return False
    with os.fdopen(fd, "rb") as stream:
        if os.fstat(stream.fileno()).st_size != entry.size:
            return False
        return copying.sha256_of(stream)[0] == entry.digest


class FileSource(Protocol):
    """Where a pull reads files from: a backend."""

    def file_recipe(self, digest: str) -> Recipe: ...
    def open_blob(self, digest: str) -> BinaryIO: ...
    def fetch_chunk(self, digest: str, size: int) -> bytes:
        """A chunk's bytes; the caller checks them by the whole file's digest."""
        ...


PARTIAL = destination.PARTIAL


def write_files(
    plan: PullPlan, dest: Path, source: FileSource, progress: Progress | None, context: str
) -> None:
    """Write ``plan.write`` into ``dest``: all verified in staging first, then moved.
    Nothing under DEST is followed if it is a symlink (client/destination.py)."""
    with destination.tree(dest) as tree:
        _refuse_folded_collisions(tree, plan)
        staged = [
            (_stage(entry, tree, str(i), source, progress, context), entry)
            for i, entry in enumerate(plan.write)
        ]
        for name, entry in staged:
            tree.place(name, entry.path, force=plan.force)
        tree.remove_empty_partial()


def _refuse_folded_collisions(tree: destination.Tree, plan: PullPlan) -> None:
    """A version pushed before the path rule may hold names that one file system keeps
    apart and another takes as one (``Model.bin``, ``model.bin``): refused before any
    file is moved, on a file system that folds them."""
    collision = layout_collision(f.path for f in (*plan.write, *plan.unchanged))
    if collision and tree.folds_names():
        raise UnsafePath(
            f"this version cannot be pulled here: {collision}",
            "pull it on a case-sensitive file system (Linux), then push a renamed copy",
        )


def _stage(
    entry: FileEntry,
    tree: destination.Tree,
    name: str,
    source: FileSource,
    progress: Progress | None,
    context: str,
) -> str:
    try:
        recipe = source.file_recipe(entry.digest)
        if recipe.is_whole:
            fd = tree.create_staged(name)
            with source.open_blob(entry.digest) as stream, os.fdopen(fd, "wb", buffering=0) as out:
                copying.copy(stream, out, progress=progress)  # the reader verifies as it reads
                os.fchmod(out.fileno(), 0o644)
                os.fsync(out.fileno())
        else:
            partial = hex_part(recipe.digest)
            rebuild(tree.open_partial(partial), recipe, source.fetch_chunk, progress)
            tree.stage_partial(partial, name)
    except (DigestMismatch, BlobNotFound, MissingChunk) as exc:
        raise type(exc)(f"file {entry.path!r} of {context}: {exc.message}", exc.hint) from None
    return name


Fetch = Callable[[str, int], bytes]


def rebuild(fd: int, recipe: Recipe, fetch_chunk: Fetch, progress: Progress | None) -> None:
    """Write a chunked file into ``fd`` (closed at the end): chunks fetched in parallel,
    each written at its offset as it arrives, the whole file hashed in order here against
    its digest (which checks every chunk at once). Chunks a previous, interrupted try
    already wrote there are kept, not fetched again."""
    offsets = recipe.offsets()
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
        os.fchmod(fd, 0o644)
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


def write_atomically(target: Path, write: Callable[[BinaryIO], T], *, force: bool) -> T:
    """Run ``write`` on a temporary file beside ``target``, then rename it into place:
    ``target`` holds the whole output or is left as it was (on any error)."""
    if target.exists() and (not force or target.is_dir()):
        raise DestinationConflict(f"{target} exists", "give another path, or remove it first")
    folder = target.parent if str(target.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.")
    except OSError as exc:
        raise IOFailure(
            f"cannot write in {folder}: {exc.strerror}", "give a writable path"
        ) from None
    try:
        with os.fdopen(fd, "wb") as out:
            result = write(out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return result


def open_input(path: Path) -> BinaryIO:
    """``path`` opened for reading; ``InvalidInput`` naming it if it cannot be."""
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise InvalidInput(f"{path} does not exist", "give the path of a file") from None
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}", "give a readable file") from None
