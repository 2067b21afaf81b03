"""Deterministic tar.gz archives: the same entries give the same bytes, anywhere, any day.

Every member is a regular file (no directories, links or devices), written in the order
given (callers sort by name), PAX format, mtime 0, uid/gid 0, empty uname/gname, mode
0644 (0755 when asked). The gzip wrapper has mtime 0, no file name, and compression
level 9; zlib's output for one input and level has not changed across its releases, so
two builds on two machines agree.

``read_members`` is the other side: it walks an archive once, refusing anything but
regular files with safe relative names, and gives each member's sha256 and size (and
the bytes of the small members a caller asks to keep).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import BinaryIO

from modelkeep.domain.digest import PREFIX
from modelkeep.errors import DigestMismatch, InvalidInput

FILE_MODE = 0o644
EXEC_MODE = 0o755
GZIP_LEVEL = 9
_COPY_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Member:
    """One archive member: ``name``, its ``size``, and how to open its bytes.

    ``digest`` (``sha256:<hex>``), when given, is checked as the bytes are copied."""

    name: str
    size: int
    open: Callable[[], BinaryIO]
    digest: str | None = None
    executable: bool = False

    @classmethod
    def of_bytes(cls, name: str, data: bytes) -> Member:
        return cls(name, len(data), lambda: io.BytesIO(data))


class _Hashing:
    """Reads through ``inner`` and hashes what was read (tarfile only calls ``read``)."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.hasher = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.hasher.update(data)
        return data


def write_archive(members: Iterable[Member], out: BinaryIO) -> None:
    """Write ``members`` as a deterministic tar.gz to ``out``. A member whose bytes are
    not its ``digest`` raises ``DigestMismatch`` (the output is then not an archive to
    keep: callers write to a temporary file)."""
    with (
        gzip.GzipFile(filename="", mode="wb", fileobj=out, compresslevel=GZIP_LEVEL, mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar,
    ):
        for member in members:
            _add(tar, member)


def _add(tar: tarfile.TarFile, member: Member) -> None:
    info = tarfile.TarInfo(member.name)
    info.size = member.size
    info.mtime = 0
    info.mode = EXEC_MODE if member.executable else FILE_MODE
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    with member.open() as source:
        hashing = _Hashing(source)
        tar.addfile(info, hashing)
    found = PREFIX + hashing.hasher.hexdigest()
    if member.digest is not None and found != member.digest:
        raise DigestMismatch(
            f"{member.name}: its bytes hash to {found}, not {member.digest}",
            "run 'modelkeep verify' on the version: the stored file is damaged",
        )


@dataclass(frozen=True)
class Found:
    """A member as read back: its sha256 (``sha256:<hex>``), size and, if kept, bytes."""

    name: str
    digest: str
    size: int
    data: bytes | None


def read_members(
    archive: BinaryIO, keep: Callable[[str], bool], max_kept: int = 64 * 1024 * 1024
) -> Iterator[Found]:
    """Each member of the tar.gz ``archive``, in order; ``keep(name)``: keep its bytes.

    ``InvalidInput`` for an archive that is not one, or holds anything but regular
    files with relative names that stay inside it."""
    try:
        with (
            gzip.GzipFile(fileobj=archive, mode="rb") as gz,
            tarfile.open(fileobj=gz, mode="r|") as tar,
        ):
            for info in tar:
                _check_member(info)
                kept = keep(info.name)
                if kept and info.size > max_kept:
                    raise InvalidInput(
                        f"{info.name} is {info.size} B, more than {max_kept} B",
                        "a modelkeep bundle's JSON members are small",
                    )
                yield _read(tar, info, kept)
            # read the gzip stream to its end, so that its CRC-32 and length are checked
            while gz.read(_COPY_CHUNK):
                pass
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise InvalidInput(
            f"not a readable tar archive ({exc})", "give the file 'bundle build' wrote"
        ) from None


def _check_member(info: tarfile.TarInfo) -> None:
    if not info.isreg():
        raise InvalidInput(
            f"the archive holds {info.name!r}, which is not a regular file",
            "a modelkeep bundle holds only regular files",
        )
    path = PurePosixPath(info.name)
    if path.is_absolute() or ".." in path.parts or not info.name or "\\" in info.name:
        raise InvalidInput(
            f"the archive holds {info.name!r}, a name outside the archive",
            "a modelkeep bundle holds only relative names",
        )


def _read(tar: tarfile.TarFile, info: tarfile.TarInfo, keep: bool) -> Found:
    stream = tar.extractfile(info)
    assert stream is not None  # a regular file always has a stream
    hasher = hashlib.sha256()
    kept = bytearray() if keep else None
    size = 0
    while chunk := stream.read(_COPY_CHUNK):
        hasher.update(chunk)
        size += len(chunk)
        if kept is not None:
            kept += chunk
    data = bytes(kept) if kept is not None else None
    return Found(info.name, PREFIX + hasher.hexdigest(), size, data)
