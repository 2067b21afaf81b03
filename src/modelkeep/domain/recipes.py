"""Recipes: how a large file is rebuilt from chunk blobs.

A recipe names the whole file (its sha256, the digest its manifest entry carries) and the
ordered chunks that concatenate to it. It is stored as a blob of its own, in the
canonical JSON form below, so anyone can rebuild a file from a store's blobs alone:
``{"chunker": "fastcdc-1", "chunks": [["sha256:…", 123], …], "digest": "sha256:…",
"format": 1, "size": 123}`` encoded like the manifest (sorted keys, no spaces, UTF-8).
Chunking never changes a file's identity: only this mapping depends on it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from modelkeep.domain.digest import is_digest, sha256_digest
from modelkeep.errors import InvalidInput

RECIPE_FORMAT = 1
WHOLE = "whole"
"""The chunker of a file stored as one blob: its only chunk is the file itself."""
MAX_CHUNK_BYTES = 64 * 1024 * 1024
"""No chunk may be larger: a reader holds at most one chunk in memory per stream."""
MAX_RECIPE_BYTES = 16 * 1024 * 1024
_CHUNKER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


@dataclass(frozen=True)
class ChunkRef:
    digest: str
    size: int


@dataclass(frozen=True)
class Recipe:
    digest: str
    """sha256 of the whole file."""
    size: int
    chunker: str
    chunks: tuple[ChunkRef, ...]

    @classmethod
    def of(cls, digest: str, chunker: str, chunks: Iterable[ChunkRef]) -> Recipe:
        parts = tuple(chunks)
        return cls(digest, sum(c.size for c in parts), chunker, parts)

    @classmethod
    def whole(cls, digest: str, size: int) -> Recipe:
        """A file kept as a single blob, described as a recipe of itself."""
        return cls(digest, size, WHOLE, (ChunkRef(digest, size),))

    @property
    def is_whole(self) -> bool:
        return self.chunker == WHOLE

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunker": self.chunker,
            "chunks": [[c.digest, c.size] for c in self.chunks],
            "digest": self.digest,
            "format": RECIPE_FORMAT,
            "size": self.size,
        }

    def canonical_bytes(self) -> bytes:
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return text.encode("utf-8")

    @property
    def recipe_digest(self) -> str:
        """The digest of the recipe blob itself."""
        return sha256_digest(self.canonical_bytes())

    def offsets(self) -> list[int]:
        """Where each chunk starts in the file."""
        starts, at = [], 0
        for chunk in self.chunks:
            starts.append(at)
            at += chunk.size
        return starts

    @classmethod
    def parse(cls, data: bytes) -> Recipe:
        """A recipe from its JSON; InvalidInput naming what is wrong."""
        if len(data) > MAX_RECIPE_BYTES:
            raise InvalidInput(f"a recipe is at most {MAX_RECIPE_BYTES} bytes")
        try:
            doc = json.loads(data)
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput("the recipe is not JSON", "send the client's recipe") from None
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: Any) -> Recipe:
        if not isinstance(doc, dict) or doc.get("format") != RECIPE_FORMAT:
            raise InvalidInput(f"a recipe is a JSON object with format {RECIPE_FORMAT}")
        unknown = set(doc) - {"chunker", "chunks", "digest", "format", "size"}
        if unknown:
            raise InvalidInput(f"the recipe has unknown fields {sorted(unknown)}")
        chunker = _chunker(doc.get("chunker"))
        recipe = cls(
            _digest(doc.get("digest")),
            _size(doc.get("size"), "size"),
            chunker,
            _chunks(doc.get("chunks"), smallest=0 if chunker == WHOLE else 1),
        )
        if sum(c.size for c in recipe.chunks) != recipe.size:
            raise InvalidInput(
                f"the recipe's chunks add up to {sum(c.size for c in recipe.chunks)} bytes, "
                f"not its size {recipe.size}"
            )
        return recipe


def parse_chunk_list(doc: Any) -> tuple[str, tuple[ChunkRef, ...]]:
    """``{"chunker": …, "chunks": [[digest, size], …]}``: a file to assemble from chunks."""
    if not isinstance(doc, dict):
        raise InvalidInput("the body is a JSON object with chunker and chunks")
    unknown = set(doc) - {"chunker", "chunks"}
    if unknown:
        raise InvalidInput(f"the body has unknown fields {sorted(unknown)}")
    chunker = _chunker(doc.get("chunker"))
    if chunker == WHOLE:
        raise InvalidInput(f"{WHOLE!r} is not a chunker a file is assembled with")
    return chunker, _chunks(doc.get("chunks"), smallest=1)


def _digest(value: Any) -> str:
    if not isinstance(value, str) or not is_digest(value):
        raise InvalidInput(f"{value!r} in the recipe is not a digest", "write sha256:<64 hex>")
    return value


def _size(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidInput(f"the recipe's {what} {value!r} is not a size in bytes")
    return value


def _chunker(value: Any) -> str:
    if not isinstance(value, str) or not value or not set(value) <= _CHUNKER_CHARS:
        raise InvalidInput(f"the recipe's chunker {value!r} is not a chunker name")
    if len(value) > 32:
        raise InvalidInput("the recipe's chunker name is longer than 32 characters")
    return value


def _chunks(value: Any, smallest: int) -> tuple[ChunkRef, ...]:
    """The chunk list; a whole file (which may be empty) is its only chunk."""
    if not isinstance(value, list) or not value:
        raise InvalidInput("the recipe's chunks are not a non-empty list")
    chunks = []
    for item in value:
        if not isinstance(item, list) or len(item) != 2:
            raise InvalidInput("each recipe chunk is [digest, size]")
        size = _size(item[1], "chunk size")
        if not smallest <= size <= MAX_CHUNK_BYTES and not (smallest == 0 and len(value) == 1):
            raise InvalidInput(
                f"a recipe chunk is {smallest} to {MAX_CHUNK_BYTES} bytes, not {size}"
            )
        chunks.append(ChunkRef(_digest(item[0]), size))
    return tuple(chunks)


def users_by_blob(
    needed: Iterable[tuple[str, str]], wanted: Iterable[str] | None = None
) -> dict[str, list[str]]:
    """(blob digest, user) pairs grouped by blob, each user once, in order of appearance;
    only the blobs in ``wanted`` if given."""
    keep = set(wanted) if wanted is not None else None
    users: dict[str, list[str]] = {}
    for digest, user in needed:
        if keep is None or digest in keep:
            refs = users.setdefault(digest, [])
            if user not in refs:
                refs.append(user)
    return users
