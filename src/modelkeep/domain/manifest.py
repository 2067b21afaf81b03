"""File entries and the manifest, whose sha256 is a version's immutable identity.

The canonical form (DESIGN.md section 1, docs/design.md) is
``{"format": 1, "files": [{"digest", "path", "size"}, ...]}`` with files sorted by path,
encoded by ``json.dumps(m, sort_keys=True, separators=(",", ":"), ensure_ascii=False)``
in UTF-8. It depends on file content only, never on how the store keeps the bytes.

A new version's paths also follow ``check_new_paths`` (portable on every OS, no two that
collide on a case-insensitive or normalising filesystem); a stored manifest is read with
``check_path`` alone, so versions pushed before that rule keep their digests.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from modelkeep.domain.digest import check_digest, sha256_digest
from modelkeep.errors import InvalidInput, UnsafePath

MANIFEST_FORMAT = 1
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
"""Per path part (a file or directory name): the limit of ext4, APFS and NTFS."""
LINE_BREAKS = ("Cc", "Zl", "Zp")
"""Unicode categories refused in a new path: control characters (newline, tab, DEL, the
C1 controls) and the line and paragraph separators."""


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


def check_new_paths(paths: Iterable[str]) -> None:
    """The rule for the paths of a new version (a push, a dataset push, a run artifact),
    on top of ``check_path``: each path is valid UTF-8, in Unicode NFC, free of control
    characters, with parts of at most 255 bytes; and no two paths collide where names are
    compared after NFC and case folding (macOS, Windows): no path is both a file and a
    directory, and no two names in one directory differ only in case or Unicode form.
    So every version can be pulled on every OS, and its digest is the same on all."""
    listed = sorted(paths)
    _refuse_duplicates(listed)
    for path in listed:
        check_path(path)
        problem, hint = _portability_problem(path)
        if problem:
            raise UnsafePath(f"file path {shown(path)} is not allowed: {problem}", hint)
    collision = layout_collision(listed)
    if collision:
        raise UnsafePath(collision, "rename one of them (see 'File entry' in docs/concepts.md)")


RENAME = "rename the file (see 'File entry' in docs/concepts.md)"


def _refuse_duplicates(ordered: list[str]) -> None:
    for earlier, later in itertools.pairwise(ordered):
        if earlier == later:
            raise InvalidInput(
                f"two files would be stored as {shown(later)}",
                "rename one of them or push their directories instead",
            )


def _portability_problem(path: str) -> tuple[str, str]:
    """What keeps ``path`` from being a file name on every OS, and the fix ('' if none)."""
    categories = {unicodedata.category(c) for c in path}
    if "Cs" in categories:
        return "it is not valid UTF-8", RENAME
    if categories.intersection(LINE_BREAKS):
        return "it holds a control character (a newline, a tab ...)", RENAME
    if not unicodedata.is_normalized("NFC", path):
        return (
            "it is not in Unicode NFC form",
            "send paths in NFC ('modelkeep push' converts file names itself)",
        )
    for part in path.split("/"):
        size = len(part.encode("utf-8"))
        if size > MAX_NAME_BYTES:
            return f"its part {shown(part, 40)} is {size} bytes, over {MAX_NAME_BYTES}", RENAME
    return "", ""


def layout_collision(paths: Iterable[str], *, fold: bool = True) -> str:
    """Why these paths cannot all be files of one folder tree ('' if they can): the
    first clash, in path order. With ``fold``, on a case-insensitive, normalising
    filesystem; without, on any (a path that is both a file and a directory)."""
    key = _folded if fold else str
    seen: dict[str, tuple[str, bool]] = {}  # folded node: the node as given, is it a file
    for path in sorted(paths):
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            node, is_file = "/".join(parts[:depth]), depth == len(parts)
            known = seen.get(key(node))
            if known is None:
                seen[key(node)] = (node, is_file)
            elif known[0] != node:
                return (
                    f"{shown(known[0])} and {shown(node)} differ only in case or Unicode "
                    "form: they would be one name on macOS and Windows"
                )
            elif is_file and known[1]:
                return f"two files would be stored as {shown(node)}"
            elif is_file or known[1]:
                return f"{shown(node)} would be both a file and a directory"
    return ""


def _folded(name: str) -> str:
    """The name as a case-insensitive, normalising filesystem compares it."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", name).casefold())


def shown(path: str, limit: int = 80) -> str:
    """A path for a message: quoted; a name that is not UTF-8 as its bytes; cut if long."""
    text = repr(path)
    if any(unicodedata.category(c) == "Cs" for c in path):
        # the bytes of a file name read with os.fsdecode; a lone surrogate sent as JSON
        # cannot be encoded and stays escaped by repr
        with contextlib.suppress(UnicodeEncodeError):
            text = repr(path.encode("utf-8", "surrogateescape"))
    return text if len(text) <= limit else text[: limit - 4] + "...'"


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
        _refuse_duplicates([f.path for f in files])
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
