"""DEST of a pull, reached without ever following a symlink under it.

DEST itself is a path you name, so a symlink named as DEST is followed, once, when it
is opened. Every path under it is then reached one part at a time from an open
directory, with ``O_NOFOLLOW``: a symlink anywhere under DEST (a directory on the way,
the file itself, an entry of modelkeep's own ``.modelkeep-partial/``) is never followed,
even one planted after the pull checked DEST. Such a link is refused (``unsafe_path``),
or with ``--force`` replaced by what the pull writes (the link is removed, never what it
points to); in ``.modelkeep-partial/``, which holds only modelkeep's own scratch files,
anything that is not a plain file of its own is removed and written afresh.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path

from modelkeep.errors import DestinationConflict, UnsafePath

PARTIAL = ".modelkeep-partial"
"""Chunked files being pulled into DEST live here until complete: a pull that was
interrupted finds the chunks it already wrote and fetches only the rest."""
STAGING_PREFIX = ".modelkeep-pull-"

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NOT_FOLLOWED = (errno.ELOOP, errno.ENOTDIR, errno.EMLINK)  # EMLINK: FreeBSD's ELOOP
_FORCE_HINT = (
    "remove the symlink, pull into another directory, or pass --force to replace the "
    "link itself (what it points to is never touched)"
)


class Kind(Enum):
    ABSENT = "absent"
    FILE = "file"
    DIRECTORY = "directory"
    SYMLINK = "symlink"
    OTHER = "special file"


def kind_of(mode: int) -> Kind:
    if stat.S_ISLNK(mode):
        return Kind.SYMLINK
    if stat.S_ISDIR(mode):
        return Kind.DIRECTORY
    return Kind.FILE if stat.S_ISREG(mode) else Kind.OTHER


def check_dest(dest: Path) -> None:
    """DEST is a directory, or nothing yet (a pull makes it)."""
    if dest.exists() and not dest.is_dir():
        raise DestinationConflict(
            f"{str(dest)!r} is not a directory", "give a new or existing directory as DEST"
        )


def inspect(dest: Path, path: str) -> tuple[str, Kind]:
    """What stands at ``path`` under ``dest``, or at the first part of its way that is
    not a directory (a symlink to one included): that part, and what it is."""
    parts = path.split("/")
    for depth in range(1, len(parts) + 1):
        here = "/".join(parts[:depth])
        try:
            kind = kind_of(os.lstat(dest / here).st_mode)
        except FileNotFoundError:
            return here, Kind.ABSENT
        if depth == len(parts) or kind is not Kind.DIRECTORY:
            return here, kind
    raise AssertionError("unreachable: a path has at least one part")


def refuse_symlink(dest: Path, relative: str) -> UnsafePath:
    return UnsafePath(
        f"{str(dest / relative)!r} is a symlink; pull never follows symlinks under DEST",
        _FORCE_HINT,
    )


def open_regular(dest: Path, relative: str) -> int | None:
    """A read descriptor on the plain file ``relative`` (no symlink followed on the way,
    no FIFO waited on), or None if something else stands there now."""
    try:
        with opened_dir(dest) as root, _parent(root, dest, relative, create=False) as parent:
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            fd = os.open(relative.rsplit("/", 1)[-1], flags, dir_fd=parent)
    except (FileNotFoundError, UnsafePath, DestinationConflict):  # changed since inspected
        return None
    except OSError as exc:
        if exc.errno in _NOT_FOLLOWED:
            return None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd


@contextmanager
def opened_dir(dest: Path) -> Iterator[int]:
    """DEST opened (a symlink named as DEST is followed: you named it)."""
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield fd
    finally:
        os.close(fd)


@contextmanager
def _parent(
    root: int, dest: Path, relative: str, *, create: bool, force: bool = False
) -> Iterator[int]:
    """The directory that holds ``relative``, reached part by part without following a
    symlink; missing parts are made with ``create``, and with ``force`` a symlink or a
    file where a directory must be is removed first."""
    fd = os.dup(root)
    try:
        parts = relative.split("/")[:-1]
        for depth, part in enumerate(parts, 1):
            child = _open_child_dir(fd, part, create=create, force=force)
            if child is None:
                raise refuse_symlink(dest, "/".join(parts[:depth]))
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _open_child_dir(parent: int, name: str, *, create: bool, force: bool) -> int | None:
    """``name`` in ``parent`` opened as a real directory; None if a symlink stands there
    (and no ``force``). Raises FileNotFoundError if absent and not ``create``."""
    for _ in range(3):  # another process may race us; we never follow, we only retry
        try:
            return os.open(name, _DIR, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                raise
            _mkdir(parent, name)
        except OSError as exc:
            if exc.errno not in _NOT_FOLLOWED:
                raise
            kind = kind_of(os.lstat(name, dir_fd=parent).st_mode)
            if kind is Kind.SYMLINK and not force:
                return None
            if not force:
                raise DestinationConflict(
                    f"{name!r} is a {kind.value} where a folder must go"
                ) from None
            os.unlink(name, dir_fd=parent)  # the link or file itself, never its target
    raise DestinationConflict(f"{name!r} keeps changing while the pull writes it")


def _mkdir(parent: int, name: str) -> None:
    with contextlib.suppress(FileExistsError):  # made meanwhile: checked on the next try
        os.mkdir(name, 0o777, dir_fd=parent)


class Tree:
    """DEST opened for a pull's writes: a staging directory, the partial directory, and
    moves into place, all by descriptors."""

    def __init__(self, dest: Path, root: int) -> None:
        self.dest = dest
        self.root = root
        self.staging_name = STAGING_PREFIX + secrets.token_hex(6)
        os.mkdir(self.staging_name, 0o700, dir_fd=root)
        self.staging = os.open(self.staging_name, _DIR, dir_fd=root)
        self._partial: int | None = None

    def close(self) -> None:
        os.close(self.staging)
        if self._partial is not None:
            os.close(self._partial)
        shutil.rmtree(self.staging_name, dir_fd=self.root, ignore_errors=True)

    def folds_names(self) -> bool:
        """Whether DEST's filesystem takes names equal after case folding or Unicode
        normalisation as one (macOS, Windows): probed inside the staging directory."""
        probe = "\u00e9a"  # é (NFC) and a lowercase letter
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, dir_fd=self.staging))
        try:
            for other in ("\u00e9A", "e\u0301a"):  # the other case, the decomposed form
                try:
                    os.lstat(other, dir_fd=self.staging)
                    return True
                except FileNotFoundError:
                    continue
            return False
        finally:
            os.unlink(probe, dir_fd=self.staging)

    def create_staged(self, name: str) -> int:
        """A new file in the staging directory, open for writing."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(name, flags, 0o600, dir_fd=self.staging)

    def partial(self) -> int:
        """``.modelkeep-partial`` opened; a symlink or file in its place is removed."""
        if self._partial is None:
            fd = _open_child_dir(self.root, PARTIAL, create=True, force=True)
            assert fd is not None  # with force, a link is removed, not returned
            self._partial = fd
        return self._partial

    def open_partial(self, name: str) -> int:
        """The partial file ``name``, kept from an interrupted pull if it is a plain file
        of its own; anything else there (a symlink, a hard link, a FIFO) is removed and
        the file started afresh."""
        partial = self.partial()
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, 0o600, dir_fd=partial)
        except OSError as exc:
            if exc.errno not in (*_NOT_FOLLOWED, errno.EISDIR):
                raise
        else:
            st = os.fstat(fd)
            if stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                return fd
            os.close(fd)
        if kind_of(os.lstat(name, dir_fd=partial).st_mode) is Kind.DIRECTORY:
            shutil.rmtree(name, dir_fd=partial)
        else:
            os.unlink(name, dir_fd=partial)  # the link itself, never what it points to
        return os.open(name, flags | os.O_EXCL, 0o600, dir_fd=partial)

    def stage_partial(self, name: str, staged: str) -> None:
        os.replace(name, staged, src_dir_fd=self.partial(), dst_dir_fd=self.staging)

    def place(self, staged: str, relative: str, *, force: bool) -> None:
        """Move the staged file to ``relative`` under DEST (atomic per file): made
        folders are real folders, and a symlink in the way is refused (or removed with
        ``force``), never followed."""
        with _parent(self.root, self.dest, relative, create=True, force=force) as parent:
            name = relative.rsplit("/", 1)[-1]
            try:
                kind = kind_of(os.lstat(name, dir_fd=parent).st_mode)
            except FileNotFoundError:
                kind = Kind.ABSENT
            if kind is Kind.SYMLINK and not force:
                raise refuse_symlink(self.dest, relative)
            if kind is Kind.DIRECTORY:
                if not force:
                    raise DestinationConflict(f"{relative!r} is a directory in DEST")
                shutil.rmtree(name, dir_fd=parent)  # does not follow links inside it
            os.replace(staged, name, src_dir_fd=self.staging, dst_dir_fd=parent)

    def remove_empty_partial(self) -> None:
        with contextlib.suppress(OSError):  # only if empty: other pulls may be under way
            os.rmdir(PARTIAL, dir_fd=self.root)


@contextmanager
def tree(dest: Path) -> Iterator[Tree]:
    """DEST (made if missing) opened for a pull's writes; the staging directory is
    removed at the end, whatever happens, and DEST too if this pull made it and failed."""
    made = not dest.exists()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with opened_dir(dest) as root:
            opened = Tree(dest, root)
            try:
                yield opened
            finally:
                opened.close()
    except BaseException:
        if made:
            with contextlib.suppress(OSError):  # only if empty
                dest.rmdir()
        raise
