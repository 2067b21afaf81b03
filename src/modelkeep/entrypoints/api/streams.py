"""Request bodies to blocking readers, so the blob store streams them in constant memory.

The blob store's ``put`` reads a file-like object in a worker thread; this reader pulls
each chunk of the request body from the event loop as it is needed.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

from anyio import from_thread

from modelkeep.errors import InvalidInput

BATCH = 1024 * 1024


class BodyReader(io.RawIOBase):
    """A blocking reader over an async byte stream; counts bytes against a limit."""

    def __init__(self, chunks: AsyncIterator[bytes], expected_size: int | None) -> None:
        self._chunks = chunks
        self._pending = b""
        self._offset = 0
        self._done = False
        self._expected = expected_size
        self.size = 0

    def readable(self) -> bool:
        return True

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
        """At least BATCH bytes (or the rest): one hop between threads per batch, not per
        network chunk (h11 hands over 64 KiB at a time)."""
        parts: list[bytes] = []
        size = 0
        while size < BATCH:
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._done = True
                break
            parts.append(chunk)
            size += len(chunk)
        return b"".join(parts)
