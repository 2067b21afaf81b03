"""The one reader that hashes what it reads and checks the digest at the end of stream.

Every verified read goes through it: a blob from local disk or S3, a blob streamed from
the server, a file rebuilt from its chunks. Its source is either a raw stream (read
straight into the caller's buffer: no copy) or an iterator of blocks (a response's body,
chunks fetched in parallel). At the end of the stream, bytes that do not hash to the
expected digest raise ``DigestMismatch`` (the error says what was damaged); reading never
returns end of file for bytes that were not checked.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

from modelkeep.domain.digest import digest_of
from modelkeep.errors import DigestMismatch

Block = bytes | bytearray | memoryview
Mismatch = Callable[[str, str], DigestMismatch]
"""``(expected, actual)`` -> the error raised when the bytes hash to ``actual``."""


@runtime_checkable
class RawStream(Protocol):
    """A stream read straight into a buffer (a file opened unbuffered, an HTTP body)."""

    def readinto(self, buffer: bytearray | memoryview, /) -> int | None: ...
    def close(self) -> None: ...


def damaged_blob(expected: str, actual: str) -> DigestMismatch:
    return DigestMismatch(f"blob {expected} is damaged: its bytes hash to {actual}")


class VerifyingReader(io.RawIOBase):
    """Hashes what it reads from ``source``; at end of stream, raises ``mismatch(digest,
    actual)`` if the bytes do not hash to ``digest``. ``on_close`` runs when it is closed
    (after the source, if the source can be closed)."""

    def __init__(
        self,
        source: RawStream | Iterator[Block],
        digest: str,
        *,
        mismatch: Mismatch = damaged_blob,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self._raw: RawStream | None = None
        self._blocks: Iterator[Block] = iter(())
        if isinstance(source, RawStream):
            self._raw = source
        else:
            self._blocks = source
        self._digest = digest
        self._mismatch = mismatch
        self._on_close = on_close
        self._hash = hashlib.sha256()
        self._pending = memoryview(b"")
        self._checked = False

    @property
    def digest(self) -> str:
        return self._digest

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:
        fileno = getattr(self._raw, "fileno", None)
        return super().fileno() if fileno is None else int(fileno())

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._raw is not None:
            n = int(self._raw.readinto(buffer) or 0)
            if n:
                self._hash.update(memoryview(buffer)[:n])
            else:
                self._check()
            return n
        while not self._pending and not self._checked:
            block = next(self._blocks, None)
            if block is None:
                self._check()
            else:
                self._hash.update(block)
                self._pending = memoryview(block)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]  # a view: no copy of the rest
        return n

    def _check(self) -> None:
        if self._checked:
            return
        self._checked = True
        actual = digest_of(self._hash)
        if actual != self._digest:
            raise self._mismatch(self._digest, actual)

    def close(self) -> None:
        if self.closed:
            return
        try:
            source = self._raw if self._raw is not None else self._blocks
            close = getattr(source, "close", None)
            if close is not None:
                close()
            if self._on_close is not None:
                self._on_close()
        finally:
            super().close()
