"""Streaming copies that hash and write at the same time, in constant memory, and
chunks fetched ahead in parallel but consumed in order (``in_order``).

Large copies run as a two-stage pipeline: this thread reads and hashes a block while a
writer thread writes the block before it (hashlib and file writes release the GIL), so a
copy costs about max(read + hash, write) instead of their sum. Three 4 MiB buffers
circulate between the two, whatever the stream's size.
"""

from __future__ import annotations

import hashlib
import io
import operator
import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from queue import SimpleQueue
from typing import Any, BinaryIO, TypeVar

from modelkeep.domain.digest import digest_of

BLOCK = 4 * 1024 * 1024
PIPELINE_FROM = 16 * 1024 * 1024  # below this a thread costs more than it saves
BUFFERS = 3
AHEAD = 4
"""Chunks fetched ahead of the one being read: parallel downloads, bounded memory."""

T = TypeVar("T")

Progress = Callable[[int], None]


def copy(
    stream: BinaryIO,
    out: BinaryIO | None,
    *,
    hasher: Any | None = None,
    progress: Progress | None = None,
) -> int:
    """Copy ``stream`` to ``out`` (None: just read), feeding ``hasher``; return the size."""
    size_hint = _size_hint(stream)
    if out is None or size_hint < PIPELINE_FROM:
        return _serial(stream, out, hasher, progress, size_hint)
    return _pipelined(stream, out, hasher, progress)


def sha256_of(stream: BinaryIO) -> tuple[str, int]:
    """``("sha256:…", size)`` of what ``stream`` holds."""
    hasher = hashlib.sha256()
    size = copy(stream, None, hasher=hasher)
    return digest_of(hasher), size


def _size_hint(stream: BinaryIO) -> int:
    if isinstance(stream, io.BytesIO):
        return stream.getbuffer().nbytes
    if hasattr(stream, "__length_hint__"):  # a stream that knows its length, not a file
        return operator.length_hint(stream, BLOCK)
    try:
        return os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        return BLOCK  # unknown: a stream of any size works, in whole blocks


def _read(stream: BinaryIO, buffer: bytearray) -> int:
    readinto = getattr(stream, "readinto", None)
    if readinto is not None:
        return int(readinto(buffer) or 0)
    chunk = stream.read(len(buffer))
    buffer[: len(chunk)] = chunk
    return len(chunk)


def _serial(
    stream: BinaryIO,
    out: BinaryIO | None,
    hasher: Any | None,
    progress: Progress | None,
    size_hint: int,
) -> int:
    buffer = bytearray(max(min(size_hint + 1, BLOCK), 64 * 1024))
    view, size = memoryview(buffer), 0
    while n := _read(stream, buffer):
        if hasher is not None:
            hasher.update(view[:n])
        if out is not None:
            out.write(view[:n])
        size += n
        if progress is not None:
            progress(n)
    return size


class _Writer(threading.Thread):
    """Writes the blocks it is handed, in order, and hands each buffer back."""

    def __init__(self, out: BinaryIO, free: SimpleQueue[bytearray]) -> None:
        super().__init__(name="modelkeep-copy", daemon=True)
        self.out = out
        self.free = free
        self.blocks: SimpleQueue[tuple[bytearray, int] | None] = SimpleQueue()
        self.error: BaseException | None = None

    def run(self) -> None:
        while (item := self.blocks.get()) is not None:
            buffer, n = item
            if self.error is None:
                try:
                    self.out.write(memoryview(buffer)[:n])
                except BaseException as exc:  # re-raised in the reading thread
                    self.error = exc
            self.free.put(buffer)


def _pipelined(
    stream: BinaryIO, out: BinaryIO, hasher: Any | None, progress: Progress | None
) -> int:
    free: SimpleQueue[bytearray] = SimpleQueue()
    for _ in range(BUFFERS):
        free.put(bytearray(BLOCK))
    writer = _Writer(out, free)
    writer.start()
    size = 0
    try:
        while writer.error is None:
            buffer = free.get()
            n = _read(stream, buffer)
            if not n:
                break
            writer.blocks.put((buffer, n))  # written while this thread hashes it
            if hasher is not None:
                hasher.update(memoryview(buffer)[:n])
            size += n
            if progress is not None:
                progress(n)
    finally:
        writer.blocks.put(None)
        writer.join()
    if writer.error is not None:
        raise writer.error
    return size


def in_order(fetch: Callable[[int], T], count: int, ahead: int = AHEAD) -> Iterator[T]:
    """``fetch(0) … fetch(count - 1)`` run by a pool, ``ahead`` at a time, yielded in order."""
    with ThreadPoolExecutor(ahead, "modelkeep-fetch") as pool:
        pending: deque[Future[T]] = deque()
        try:
            for index in range(count):
                pending.append(pool.submit(fetch, index))
                if len(pending) >= ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
