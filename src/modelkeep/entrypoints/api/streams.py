"""Request bodies to blocking readers, so the blob store streams them in constant memory.

The blob store's ``put`` reads a file-like object in a worker thread. A pump task in the
event loop reads the request body ahead into a small bounded buffer while that thread
hashes and writes, so receiving overlaps storing instead of taking turns with it.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import anyio
from anyio import from_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from modelkeep.errors import InvalidInput

BATCH = 1024 * 1024
AHEAD = 8  # batches read ahead: at most 8 MiB of a body waits in memory

T = TypeVar("T")


class BodyReader(io.RawIOBase):
    """A blocking reader over batches that a pump task receives; counts bytes against a limit."""

    def __init__(self, batches: MemoryObjectReceiveStream[bytes], expected: int | None) -> None:
        self._batches = batches
        self._pending = b""
        self._offset = 0
        self._done = False
        self._expected = expected
        self.size = 0

    def readable(self) -> bool:
        return True

    def __length_hint__(self) -> int:
        """What the body still holds by its Content-Length: sizes the copy's buffers."""
        return max((self._expected or 0) - self.size, 0)

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while len(self._pending) == self._offset and not self._done:
            self._pending, self._offset = from_thread.run(self._next), 0
        n = min(len(buffer), len(self._pending) - self._offset)
        buffer[:n] = memoryview(self._pending)[self._offset : self._offset + n]
        self._offset += n
        self.size += n
        if self._expected is not None and self.size > self._expected:
            raise InvalidInput(f"the body is longer than its Content-Length {self._expected}")
        if n == 0 and self._expected is not None and self.size != self._expected:
            raise InvalidInput(
                f"the body has {self.size} bytes, not its Content-Length {self._expected}",
                "send the whole file",
            )
        return n

    async def _next(self) -> bytes:
        try:
            return await self._batches.receive()
        except anyio.EndOfStream:
            self._done = True
            return b""


async def read_body_in_thread(
    chunks: AsyncIterator[bytes],
    expected: int | None,
    consume: Callable[[BodyReader], T],
) -> T:
    """Run ``consume(reader)`` in a worker thread while this task pumps the body into it."""
    send, receive = anyio.create_memory_object_stream[bytes](AHEAD)
    reader = BodyReader(receive, expected)
    outcome: list[T] = []
    failure: list[BaseException] = []

    async def run_consumer() -> None:
        with receive:
            try:
                outcome.append(await anyio.to_thread.run_sync(consume, reader))
            except Exception as exc:  # raised below, outside the task group, unwrapped
                failure.append(exc)

    async with anyio.create_task_group() as group:
        group.start_soon(_pump, chunks, send)
        await run_consumer()
        group.cancel_scope.cancel()  # the consumer stopped early (an error): stop reading
    if failure:
        raise failure[0]
    return outcome[0]


async def _pump(chunks: AsyncIterator[bytes], send: MemoryObjectSendStream[bytes]) -> None:
    """Hand the body on in batches of at least BATCH bytes: one hop between threads per
    batch, not per network chunk (the server hands over 64 KiB at a time)."""
    with send:
        parts: list[bytes] = []
        size = 0
        try:
            async for chunk in chunks:
                parts.append(chunk)
                size += len(chunk)
                if size >= BATCH:
                    await _send(send, b"".join(parts))
                    parts, size = [], 0
        except Exception:  # the client went away: the reader sees a short body, and says so
            return
        if parts:
            await _send(send, b"".join(parts))


async def _send(send: MemoryObjectSendStream[bytes], batch: bytes) -> None:
    # the consumer may be gone (an error): read_body_in_thread reports why
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
        await send.send(batch)
