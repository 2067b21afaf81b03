"""Where a large file is cut into chunks, so successive versions share most of them.

Safetensors files are cut at tensor boundaries: a fine-tune that changes some tensors
leaves the other tensors' chunks byte-identical, whatever moved in the header. Any other
file is cut by content (FastCDC), so an insertion shifts bytes without moving the cut
points after it. The chunker label is recorded in recipes, so a label's cutting rule must
never change: a new rule gets a new label.

This module only decides cut points and reads the bytes; hashing and storing are the
caller's business. It holds at most one chunk (plus the header) at a time.
"""

from __future__ import annotations

import io
import json
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import pyfastcdc

from modelkeep.errors import FileChanged

KIB = 1024
MIB = 1024 * KIB
WHOLE_BELOW = 16 * MIB  # files smaller than this are stored whole, never chunked (callers check)
MIN_CHUNK = 512 * KIB
AVG_CHUNK = 2 * MIB
MAX_CHUNK = 8 * MIB
SAFETENSORS = "safetensors-1"  # chunker labels, recorded in recipes: never change their meaning
FASTCDC = "fastcdc-1"

_SUFFIX = ".safetensors"
_LENGTH = struct.Struct("<Q")
_MAX_HEADER = 100 * MIB  # the safetensors library's own limit; more is garbage, not a header

Warn = Callable[[str], None]


@dataclass(frozen=True)
class ChunkStream:
    chunker: str  # SAFETENSORS or FASTCDC
    chunks: Iterator[bytes]  # consecutive pieces that concatenate to exactly the file's bytes


class _Malformed(ValueError):
    """A safetensors file that cannot be cut at tensor boundaries; the message says why."""

    def __init__(self, message: str, *, read: bool = True) -> None:
        super().__init__(message)
        self.read = read  # False: nothing was read, so the stream need not (cannot) rewind


@dataclass(frozen=True)
class _Layout:
    header: bytes  # the 8 length bytes and the JSON header: the first chunk
    tensors: list[tuple[int, int]]  # (begin, end) in the data region, sorted, not overlapping
    data_size: int  # bytes after the header, including any gaps and trailing bytes


def read_chunks(stream: BinaryIO, name: str, warn: Warn | None = None) -> ChunkStream:
    """Cut ``stream`` into chunks.

    stream: a seekable binary file positioned at 0; name: the file's name (for the suffix
    check and messages). A malformed safetensors file is reported through ``warn`` and cut
    by content instead: it is still stored exactly, only with less sharing.
    """
    if not name.lower().endswith(_SUFFIX):
        return ChunkStream(FASTCDC, _fastcdc_chunks(stream))
    try:
        layout = _read_layout(stream)
    except _Malformed as problem:
        if warn is not None:
            warn(f"{name}: {problem}; chunked by content instead")
        if problem.read:
            stream.seek(0)
        return ChunkStream(FASTCDC, _fastcdc_chunks(stream))
    return ChunkStream(SAFETENSORS, _safetensors_chunks(stream, name, layout))


def _fastcdc_chunks(stream: BinaryIO) -> Iterator[bytes]:
    # min/avg/max were chosen once for the FASTCDC label; changing them changes every cut.
    cdc = pyfastcdc.FastCDC(avg_size=AVG_CHUNK, min_size=MIN_CHUNK, max_size=MAX_CHUNK)
    for chunk in cdc.cut_stream(stream):
        yield bytes(chunk.data)  # .data is reused once the next chunk is cut


def _safetensors_chunks(stream: BinaryIO, name: str, layout: _Layout) -> Iterator[bytes]:
    yield layout.header
    # The stream sits just after the header, where the data region starts.
    for length in _plan(layout.tensors, layout.data_size):
        yield _read_exactly(stream, length, name)


def _plan(tensors: list[tuple[int, int]], data_size: int) -> Iterator[int]:
    """Lengths of the data region's chunks, in order; they add up to ``data_size``.

    Cut points depend only on the tensors' offsets, never on their values, so changing a
    tensor's values changes only the chunk(s) holding it.
    """
    start = 0  # where the current chunk begins; it extends up to the tensor being looked at
    for begin, end in tensors:
        big_enough = begin - start >= MIN_CHUNK
        would_overflow = end - start > MAX_CHUNK and begin > start
        if big_enough or would_overflow:
            yield from _pieces(begin - start)  # pieces: a huge gap is still bounded
            start = begin
        if end - begin > MAX_CHUNK:
            # A big tensor gets chunks of its own, so its neighbours never share them.
            yield from _pieces(end - start)
            start = end
    yield from _pieces(data_size - start)  # whatever follows the last tensor


def _pieces(length: int) -> Iterator[int]:
    while length > MAX_CHUNK:
        yield MAX_CHUNK
        length -= MAX_CHUNK
    if length > 0:
        yield length


def _read_exactly(stream: BinaryIO, length: int, name: str) -> bytes:
    data = _read_up_to(stream, length)
    if len(data) != length:
        # The size was checked before cutting, so a short read means the file shrank.
        raise FileChanged(f"{name!r} changed while it was being chunked")
    return data


def _read_up_to(stream: BinaryIO, length: int) -> bytes:
    """Up to ``length`` bytes, fewer only at the end of the file, as a new bytes object."""
    buffer = bytearray(length)  # fresh each time: callers may keep the chunks they get
    with memoryview(buffer) as view:
        filled = 0
        while filled < length and (got := _read_into(stream, view[filled:])):
            filled += got
    del buffer[filled:]
    return bytes(buffer)


def _read_into(stream: BinaryIO, view: memoryview) -> int:
    readinto = getattr(stream, "readinto", None)  # not every BinaryIO has it
    if readinto is not None:
        return int(readinto(view) or 0)
    data = stream.read(len(view))
    view[: len(data)] = data
    return len(data)


def _read_layout(stream: BinaryIO) -> _Layout:
    """Read and check the header; leave the stream at the start of the data region."""
    size = _size(stream)
    if size < _LENGTH.size:
        raise _Malformed(f"{size} bytes is too short for a safetensors header")
    prefix = _read_prefix(stream, _LENGTH.size)
    (header_size,) = _LENGTH.unpack(prefix)
    if header_size > min(_MAX_HEADER, size - _LENGTH.size):
        raise _Malformed(f"header length {header_size} does not fit in {size} bytes")
    header = _read_prefix(stream, header_size)
    data_size = size - _LENGTH.size - header_size
    tensors = _tensor_ranges(_parse_header(header), data_size)
    return _Layout(prefix + header, tensors, data_size)


def _size(stream: BinaryIO) -> int:
    try:
        size = stream.seek(0, io.SEEK_END)
    except (OSError, ValueError) as error:  # io.UnsupportedOperation is both
        raise _Malformed(f"cannot find the file size ({error})", read=False) from None
    stream.seek(0)  # it could seek once; if it cannot seek back, failing beats losing bytes
    return size


def _read_prefix(stream: BinaryIO, length: int) -> bytes:
    data = _read_up_to(stream, length)
    if len(data) != length:  # the file shrank since its size was taken
        raise _Malformed(f"file ends inside the header ({len(data)} of {length} bytes)")
    return data


def _parse_header(header: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(header.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise _Malformed(f"header is not JSON ({type(error).__name__})") from None
    if not isinstance(parsed, dict):
        raise _Malformed("header is not a JSON object")
    metadata = parsed.pop("__metadata__", {})
    if not isinstance(metadata, dict) or not all(
        isinstance(value, str) for value in metadata.values()
    ):
        raise _Malformed("__metadata__ is not a map of strings")
    return parsed


def _tensor_ranges(tensors: dict[str, Any], data_size: int) -> list[tuple[int, int]]:
    ranges = sorted(_tensor_range(name, info, data_size) for name, info in tensors.items())
    previous_end = 0
    for begin, end in ranges:
        if begin < previous_end:
            raise _Malformed(f"tensors overlap at data offset {begin}")
        previous_end = end
    return ranges


def _tensor_range(name: str, info: Any, data_size: int) -> tuple[int, int]:
    offsets = info.get("data_offsets") if isinstance(info, dict) else None
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_int, offsets))):
        raise _Malformed(f"tensor {name[:64]!r} has no valid data_offsets")
    begin, end = offsets
    if not 0 <= begin <= end <= data_size:
        raise _Malformed(
            f"tensor {name[:64]!r} data_offsets {offsets} outside {data_size} data bytes"
        )
    return begin, end


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)  # JSON true is not an offset
