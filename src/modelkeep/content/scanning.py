"""One read of a large file: its chunks, each chunk's digest and the whole-file digest.

The reading thread reads each chunk into a private buffer and feeds it to the whole-file
hash, while a small pool hashes the chunk and hands it to a sink (the store, or an upload)
(hashlib releases the GIL, so both cores work). Chunk and whole-file digests come from
the same bytes, so the recipe is consistent even if the file changes meanwhile (the
caller then notices the change and refuses the push). At most ``IN_FLIGHT`` chunks are
held at once: memory stays bounded whatever the file's size.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from modelkeep.content import chunking
from modelkeep.domain.digest import digest_of, sha256_digest
from modelkeep.domain.recipes import ChunkRef, Recipe

IN_FLIGHT = 8
WORKERS = 2


@dataclass(frozen=True)
class Piece:
    """A chunk just read: where it is in the file, its bytes and their digest."""

    index: int
    offset: int
    digest: str
    data: bytes


@dataclass(frozen=True)
class Scan:
    """What a scan found: the chunks, and the whole file's digest if it was asked for."""

    chunker: str
    chunks: tuple[ChunkRef, ...]
    digest: str | None

    @property
    def size(self) -> int:
        return sum(c.size for c in self.chunks)

    def recipe(self) -> Recipe:
        assert self.digest is not None, "scanned without the whole-file digest"
        return Recipe(self.digest, self.size, self.chunker, self.chunks)


Sink = Callable[[Piece], None]
"""Stores or sends a piece; called from pool threads, possibly out of order."""


def scan_file(
    path: Path,
    sink: Sink | None = None,
    *,
    warn: Callable[[str], None] | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int = WORKERS,
    whole_digest: bool = True,
) -> Scan:
    """Chunk ``path``, hash every chunk (and, with ``whole_digest``, the whole file), and
    hand each chunk to ``sink``."""
    whole = hashlib.sha256() if whole_digest else None
    budget = threading.BoundedSemaphore(max(IN_FLIGHT, 2 * workers))
    futures: list[Future[ChunkRef]] = []
    with open(path, "rb") as stream, ThreadPoolExecutor(workers, "modelkeep-chunk") as pool:
        chunks = chunking.read_chunks(stream, path.name, warn)
        offset = 0
        try:
            for index, data in enumerate(chunks.chunks):
                budget.acquire()
                futures.append(pool.submit(_handle, index, offset, data, sink, budget))
                if whole is not None:
                    whole.update(data)
                offset += len(data)
                if progress is not None:
                    progress(len(data))
                _raise_first_failure(futures)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        refs = [future.result() for future in futures]
    digest = digest_of(whole) if whole is not None else None
    return Scan(chunks.chunker, tuple(refs), digest)


def _raise_first_failure(futures: list[Future[ChunkRef]]) -> None:
    """Stop reading as soon as a sink failed (a full disk, a refused upload)."""
    for future in futures[-IN_FLIGHT * 2 :]:
        if future.done() and future.exception() is not None:
            future.result()


def _handle(
    index: int, offset: int, data: bytes, sink: Sink | None, budget: threading.BoundedSemaphore
) -> ChunkRef:
    try:
        digest = sha256_digest(data)
        if sink is not None:
            sink(Piece(index, offset, digest, data))
        return ChunkRef(digest, len(data))
    finally:
        budget.release()
