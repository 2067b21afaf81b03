"""File entries and the manifest, whose sha256 is a version's immutable identity.

The canonical form (DESIGN.md section 1, docs/design.md) is
``{"format": 1, "files": [{"digest", "path", "size"}, ...]}`` with files sorted by path,
encoded by ``json.dumps(m, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
in UTF-8. It depends on file content only, never on how the store keeps the bytes.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from modelkeep.domain.digest import check_digest, sha256_digest
from modelkeep.errors import InvalidInput, UnsafePath

MANIFEST_FORMAT = 1
MAX_PATH_BYTES = 4096


def check_path(path: str) -> str:
    """A manifest path: relative, POSIX '/', no '.', '..' or empty parts, no NUL or '\\'."""
    problem = _path_problem(path)
    if problem:
        raise UnsafePath(f"file path {path!r} is not allowed: {problem}")
    return path


def _path_problem(path: str) -> str:
    if not path:
        return "it is empty"
    if "\x00" in path or "\\" in path:
        return "it holds a NUL or a backslash"
    if path.startswith("/"):
        return "it is absolute"
    if any(part in ("", ".", "..") for part in path.split("/")):
        return "it has an empty, '.' or '..' part"
    if len(path.encode("utf-8", "surrogatepass")) > MAX_PATH_BYTES:
        return f"it is longer than {MAX_PATH_BYTES} bytes"
    return ""


@dataclass(frozen=True, order=True)
class FileEntry:
    path: str
    size: int
    digest: str

    def __post_init__(self) -> None:
        check_path(self.path)
        check_digest(self.digest)
        if self.size < 0:
            raise InvalidInput(f"file {self.path!r} has a negative size")

    def to_dict(self) -> dict[str, Any]:
        return {"digest": self.digest, "path": self.path, "size": self.size}


@dataclass(frozen=True)
class Manifest:
    files: tuple[FileEntry, ...]

    @classmethod
    def of(cls, entries: Iterable[FileEntry]) -> Manifest:
        files = tuple(sorted(entries, key=lambda e: e.path))
        for earlier, later in itertools.pairwise(files):
            if earlier.path == later.path:
                raise InvalidInput(
                    f"two files would be stored as {later.path!r}",
                    "rename one of them or push their directories instead",
                )
        return cls(files)

    def canonical_bytes(self) -> bytes:
        document = {"format": MANIFEST_FORMAT, "files": [f.to_dict() for f in self.files]}
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return text.encode("utf-8")

    @property
    def digest(self) -> str:
        return sha256_digest(self.canonical_bytes())

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    @classmethod
    def parse(cls, data: bytes) -> Manifest:
        document = json.loads(data.decode("utf-8"))
        if document.get("format") != MANIFEST_FORMAT:
            raise InvalidInput(f"manifest format {document.get('format')!r} is unknown")
        return cls.of(FileEntry(f["path"], f["size"], f["digest"]) for f in document["files"])
