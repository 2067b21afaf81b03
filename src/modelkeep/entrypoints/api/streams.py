"""Request bodies to blocking readers, so the blob store streams them in constant memory.

The blob store's ``put`` reads a file-like object in a worker thread. A pump task in the
event loop reads the request body ahead into a small bounded buffer while that thread
hashes and writes, so receiving overlaps storing instead of taking turns with it.

A client that stalls must not hold the threads that serve other requests: the thread
starts only once a first batch (or the whole short body) has arrived, uploads take their
threads from a limiter of their own (``UPLOAD_THREADS``, fewer than the default pool of
every other route), and a body that stalls past the server's read timeout ends with the
``BodyTimeout`` its ``receive`` raised (see ``app._timed_body``), freeing the thread.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import anyio
from anyio import from_thread
from anyio.lowlevel import RunVar
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from modelkeep.errors import InvalidInput, ModelkeepError

BATCH = 1024 * 1024
AHEAD = 8  # batches read ahead: at most 8 MiB of a body waits in memory
UPLOAD_THREADS = 16
"""Uploads stored at once per process; the others wait, holding no thread (the default
pool of 40 threads, which every other route uses, stays free for them)."""
_upload_limiter: RunVar[anyio.CapacityLimiter] = RunVar("modelkeep_upload_limiter")

T = TypeVar("T")


class BodyReader(io.RawIOBase):
    """A blocking reader over batches that a pump task receives; counts bytes against a limit."""

    def __init__(
        self, batches: MemoryObjectReceiveStream[bytes], expected: int | None, pump: Pump
    ) -> None:
        self._batches = batches
        self._pump = pump
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
            if self._pump.failure is not None:  # the body stalled: say so, not "too short"
                raise self._pump.failure from None
            return b""


async def read_body_in_thread(
    chunks: AsyncIterator[bytes],
    expected: int | None,
    consume: Callable[[BodyReader], T],
) -> T:
    """Run ``consume(reader)`` in an upload thread while this task pumps the body into it."""
    send, receive = anyio.create_memory_object_stream[bytes](AHEAD)
    pump = Pump(chunks, send)
    reader = BodyReader(receive, expected, pump)
    outcome: list[T] = []
    failure: list[BaseException] = []

    async def run_consumer() -> None:
        with receive:
            try:
                await pump.first.wait()  # on the event loop: a stalled start holds no thread
                if pump.failure is not None and pump.sent == 0:
                    raise pump.failure
                limiter = upload_limiter()
                outcome.append(await anyio.to_thread.run_sync(consume, reader, limiter=limiter))
            except Exception as exc:  # raised below, outside the task group, unwrapped
                failure.append(exc)

    async with anyio.create_task_group() as group:
        group.start_soon(pump.run)
        await run_consumer()
        group.cancel_scope.cancel()  # the consumer stopped early (an error): stop reading
    if failure:
        raise failure[0]
    return outcome[0]


def upload_limiter() -> anyio.CapacityLimiter:
    """The threads uploads may use, one limiter per event loop."""
    try:
        return _upload_limiter.get()
    except LookupError:
        limiter = anyio.CapacityLimiter(UPLOAD_THREADS)
        _upload_limiter.set(limiter)
        return limiter


class Pump:
    """Hands the body on in batches of at least BATCH bytes: one hop between threads per
    batch, not per network chunk (the server hands over 64 KiB at a time)."""

    def __init__(self, chunks: AsyncIterator[bytes], send: MemoryObjectSendStream[bytes]) -> None:
        self._chunks = chunks
        self._send = send
        self.first = anyio.Event()
        """Set when the first batch was handed on, or the body ended (or failed) first."""
        self.sent = 0
        self.failure: ModelkeepError | None = None
        """Why the body ended early, when the server decided it (a stalled body)."""

    async def run(self) -> None:
        with self._send:
            try:
                await self._pump()
            except ModelkeepError as exc:  # the body stalled (BodyTimeout)
                self.failure = exc
            except Exception:  # the client went away: the reader sees a short body, says so
                pass
            finally:
                self.first.set()

    async def _pump(self) -> None:
        parts: list[bytes] = []
        size = 0
        async for chunk in self._chunks:
            parts.append(chunk)
            size += len(chunk)
            if size >= BATCH:
                await self._hand_on(b"".join(parts))
                parts, size = [], 0
        if parts:
            await self._hand_on(b"".join(parts))

    async def _hand_on(self, batch: bytes) -> None:
        # the consumer may be gone (an error): read_body_in_thread reports why
        with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
            await self._send.send(batch)
        self.sent += 1
        self.first.set()
