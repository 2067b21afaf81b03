from __future__ import annotations

import io
import json
import random
import struct
import tracemalloc
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, cast

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from modelkeep.content import chunking
from modelkeep.content.chunking import FASTCDC, MAX_CHUNK, MIB, MIN_CHUNK, SAFETENSORS, read_chunks
from modelkeep.errors import FileChanged

Warnings = list[str]


def chunks_of(
    data: bytes, name: str = "model.bin", stream: BinaryIO | None = None
) -> tuple[str, list[bytes], Warnings]:
    warnings: Warnings = []
    result = read_chunks(stream or io.BytesIO(data), name, warnings.append)
    return result.chunker, list(result.chunks), warnings


def cuts(chunks: list[bytes]) -> list[int]:
    """Offsets where chunks start, plus the end: [0, len(c0), len(c0) + len(c1), …]."""
    offsets = [0]
    for chunk in chunks:
        offsets.append(offsets[-1] + len(chunk))
    return offsets


def randbytes(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


def safetensors_file(header: object, data: bytes) -> bytes:
    """A hand-made safetensors file: any header, valid or not."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def header_size(data: bytes) -> int:
    return 8 + int(struct.unpack("<Q", data[:8])[0])


# -- content-defined chunking -------------------------------------------------------------


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    size=st.one_of(st.integers(0, 4096), st.integers(0, 20 * MIB)),
    name=st.sampled_from(["model.bin", "weights.pt", "x.SAFETENSORS.gz"]),
)
def test_content_chunks_cover_the_file_exactly(seed: int, size: int, name: str) -> None:
    data = randbytes(seed, size)
    chunker, chunks, warnings = chunks_of(data, name)
    assert chunker == FASTCDC
    assert not warnings
    assert b"".join(chunks) == data
    assert all(0 < len(chunk) <= MAX_CHUNK for chunk in chunks)
    assert all(type(chunk) is bytes for chunk in chunks)


@pytest.fixture(scope="module")
def random_24mib() -> bytes:
    return randbytes(24, 24 * MIB)


def test_a_one_byte_edit_changes_only_the_chunks_around_it(random_24mib: bytes) -> None:
    middle = len(random_24mib) // 2
    edited = bytearray(random_24mib)
    edited[middle] ^= 0xFF
    _, before, _ = chunks_of(random_24mib)
    _, after, _ = chunks_of(bytes(edited))
    assert len(before) >= 6  # enough chunks for "most are shared" to mean something
    new = set(after) - set(before)
    assert 1 <= len(new) <= 2
    assert len(set(after) & set(before)) >= len(before) - 2


def test_an_insertion_near_the_start_leaves_later_chunks_shared(random_24mib: bytes) -> None:
    at = 1 * MIB + 123
    inserted = random_24mib[:at] + randbytes(1, 5000) + random_24mib[at:]
    _, before, _ = chunks_of(random_24mib)
    _, after, _ = chunks_of(inserted)
    assert cuts(after)[1:] != cuts(before)[1:]  # the content really moved
    assert len(set(after) - set(before)) <= 2
    shared_tail = len(before) - 2
    assert after[-shared_tail:] == before[-shared_tail:]


def test_an_empty_file_has_no_chunks() -> None:
    assert chunks_of(b"", "model.bin")[:2] == (FASTCDC, [])
    chunker, chunks, _ = chunks_of(b"", "model.safetensors")
    assert (chunker, chunks) == (FASTCDC, [])


# -- safetensors: real files --------------------------------------------------------------


def make_tensors(seed: int) -> dict[str, np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    tensors: dict[str, np.ndarray[Any, Any]] = {
        "embed": rng.standard_normal(3_000_000, dtype=np.float32),  # 12 MB: over MAX_CHUNK
        "head": rng.standard_normal(5_000_000).astype(np.float16),  # 10 MB: over MAX_CHUNK
        "exact": rng.integers(0, 255, MAX_CHUNK, dtype=np.uint8),  # exactly MAX_CHUNK
        "mid": rng.standard_normal(300_000, dtype=np.float32),  # 1.2 MB
        "bias": rng.integers(-9, 9, 1001, dtype=np.int8),
    }
    for i in range(24):
        tensors[f"layer{i:02}.weight"] = rng.standard_normal((64, 64), dtype=np.float32)
    return tensors


def tensor_ranges(data: bytes) -> dict[str, tuple[int, int]]:
    """Each tensor's [begin, end) in file offsets."""
    start = header_size(data)
    header = json.loads(data[8:start])
    header.pop("__metadata__", None)
    return {
        k: (start + v["data_offsets"][0], start + v["data_offsets"][1]) for k, v in header.items()
    }


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("safetensors")


@pytest.fixture(scope="module")
def model_file(model_dir: Path) -> Path:
    path = model_dir / "model.safetensors"
    save_file(make_tensors(0), str(path), metadata={"format": "np"})
    return path


def test_safetensors_are_cut_at_tensor_boundaries(model_file: Path) -> None:
    data = model_file.read_bytes()
    with open(model_file, "rb") as stream:
        chunker, chunks, warnings = chunks_of(data, model_file.name, stream)
    assert (chunker, warnings) == (SAFETENSORS, [])
    assert chunks[0] == data[: header_size(data)]
    assert b"".join(chunks) == data
    assert all(0 < len(chunk) <= MAX_CHUNK for chunk in chunks[1:])
    cut_points = set(cuts(chunks))
    for name, (begin, end) in tensor_ranges(data).items():
        inside = {c for c in cut_points if begin < c < end}
        if end - begin > MAX_CHUNK:
            assert {begin, end} <= cut_points, name  # a big tensor has chunks of its own
            assert inside == set(range(begin + MAX_CHUNK, end, MAX_CHUNK)), name
        else:
            assert not inside, name


@pytest.mark.parametrize("changed", ["mid", "layer07.weight", "embed", "bias"])
def test_changing_one_tensor_changes_only_its_chunks(
    model_file: Path, model_dir: Path, changed: str
) -> None:
    tensors = make_tensors(0)
    tensors[changed] = tensors[changed] + 1
    edited_file = model_dir / f"{changed}.safetensors"
    save_file(tensors, str(edited_file), metadata={"format": "np"})
    before, after = model_file.read_bytes(), edited_file.read_bytes()
    _, old, _ = chunks_of(before, "model.safetensors")
    _, new, _ = chunks_of(after, "model.safetensors")
    assert cuts(old) == cuts(new)  # cut points depend on the header only
    begin, end = tensor_ranges(after)[changed]
    offsets = cuts(new)
    differing = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if a != b]
    assert differing
    for i in differing:
        assert offsets[i] < end and offsets[i + 1] > begin  # the chunk overlaps the tensor


def test_small_tensors_are_grouped_into_chunks_of_at_least_min_chunk() -> None:
    size = 100 * 1024
    header = {
        f"t{i}": {"dtype": "U8", "shape": [size], "data_offsets": [i * size, (i + 1) * size]}
        for i in range(40)
    }
    data = safetensors_file(header, randbytes(3, 40 * size))
    chunker, chunks, _ = chunks_of(data, "model.safetensors")
    assert chunker == SAFETENSORS
    body = chunks[1:]
    assert all(MIN_CHUNK <= len(chunk) < MIN_CHUNK + size for chunk in body[:-1])
    assert all(len(chunk) % size == 0 for chunk in body)


def test_the_safetensors_suffix_is_case_insensitive(model_file: Path) -> None:
    data = model_file.read_bytes()
    assert chunks_of(data, "MODEL.SafeTensors")[0] == SAFETENSORS


def test_short_reads_and_streams_without_readinto_give_the_same_chunks(model_file: Path) -> None:
    data = model_file.read_bytes()
    expected = chunks_of(data, "model.safetensors")[1]

    class Trickle(io.BytesIO):  # a pipe-like stream: at most 64 KiB per read
        def readinto(self, buffer: Any) -> int:
            with memoryview(buffer) as view:
                return super().readinto(view[: 64 * 1024])

    class ReadOnly:  # has read and seek, but no readinto
        def __init__(self, data: bytes) -> None:
            self.inner = io.BytesIO(data)
            self.read, self.seek = self.inner.read, self.inner.seek

    for stream in (Trickle(data), cast(BinaryIO, ReadOnly(data))):
        chunker, chunks, warnings = chunks_of(data, "model.safetensors", stream)
        assert (chunker, warnings, chunks) == (SAFETENSORS, [], expected)


def test_a_file_that_shrinks_while_being_chunked_is_an_error(
    model_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "shrinking.safetensors"
    data = model_file.read_bytes()
    path.write_bytes(data)
    with open(path, "rb") as stream:
        result = read_chunks(stream, path.name)  # the header is read and checked here
        with open(path, "r+b") as writer:
            writer.truncate(header_size(data) + 10 * MIB)
        with pytest.raises(FileChanged):
            list(result.chunks)


def test_safetensors_chunking_holds_one_chunk_at_a_time(model_file: Path) -> None:
    tracemalloc.start()
    try:
        with open(model_file, "rb") as stream:
            # maxlen=0 drops each chunk at once: only what the module holds is measured.
            deque(read_chunks(stream, model_file.name).chunks, maxlen=0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # One chunk read into a buffer and copied into bytes, plus the header: never the file.
    assert peak < 2 * MAX_CHUNK + MIB


# -- safetensors: layouts hypothesis makes up ---------------------------------------------

sizes = st.one_of(
    st.integers(0, 4096),
    st.integers(MIN_CHUNK - 4096, MIN_CHUNK + 4096),
    st.integers(MAX_CHUNK - 2, MAX_CHUNK + 2),
    st.integers(0, 3 * MAX_CHUNK),
)
gaps = st.one_of(st.just(0), st.integers(0, 64), st.integers(0, 2 * MAX_CHUNK))


@settings(max_examples=30, deadline=None)
@given(layout=st.lists(st.tuples(gaps, sizes), max_size=6), trailing=gaps, seed=st.integers(0))
def test_any_valid_layout_is_cut_exactly(
    layout: list[tuple[int, int]], trailing: int, seed: int
) -> None:
    ranges, at = [], 0
    for gap, size in layout:
        ranges.append((at + gap, at + gap + size))
        at += gap + size
    data_size = at + trailing
    assume(data_size <= 48 * MIB)
    # Listed in reverse: the header's order is not the file's order.
    header: dict[str, Any] = {"__metadata__": {"k": "v"}}
    for i, (begin, end) in reversed(list(enumerate(ranges))):
        header[f"t{i}"] = {"dtype": "U8", "shape": [end - begin], "data_offsets": [begin, end]}
    data = safetensors_file(header, randbytes(seed, data_size))
    chunker, chunks, warnings = chunks_of(data, "m.safetensors")
    assert (chunker, warnings) == (SAFETENSORS, [])
    start = header_size(data)
    assert chunks[0] == data[:start]
    assert b"".join(chunks) == data
    assert all(0 < len(chunk) <= MAX_CHUNK for chunk in chunks[1:])
    cut_points = {c - start for c in cuts(chunks)[1:]}
    for begin, end in ranges:
        inside = {c for c in cut_points if begin < c < end}
        if end - begin > MAX_CHUNK:
            assert {begin, end} <= cut_points
            assert inside == set(range(begin + MAX_CHUNK, end, MAX_CHUNK))
        else:
            assert not inside


# -- malformed safetensors ----------------------------------------------------------------


def tensor(begin: object, end: object) -> dict[str, Any]:
    return {"dtype": "U8", "shape": [1], "data_offsets": [begin, end]}


VALID = safetensors_file({"a": tensor(0, 4), "b": tensor(4, 10)}, b"0123456789")

MALFORMED: dict[str, Callable[[], bytes]] = {
    "shorter than the length": lambda: b"\x01\x02\x03",
    "truncated header": lambda: VALID[:20],
    "length beyond the file": lambda: struct.pack("<Q", 5000) + bytes(1000),
    "length over 100 MiB": lambda: struct.pack("<Q", 2**63) + bytes(1000),
    "garbage JSON": lambda: safetensors_file(b"{not json", bytes(100)),
    "not UTF-8": lambda: safetensors_file(b'{"\xff": 1}', bytes(100)),
    "deeply nested JSON": lambda: safetensors_file(b"[" * 100_000 + b"]" * 100_000, b""),
    "JSON array": lambda: safetensors_file([1, 2], bytes(100)),
    "offsets past the end": lambda: safetensors_file({"a": tensor(0, 1000)}, bytes(10)),
    "begin after end": lambda: safetensors_file({"a": tensor(5, 2)}, bytes(10)),
    "negative offset": lambda: safetensors_file({"a": tensor(-1, 2)}, bytes(10)),
    "float offsets": lambda: safetensors_file({"a": tensor(0.0, 2.0)}, bytes(10)),
    "bool offsets": lambda: safetensors_file({"a": tensor(False, True)}, bytes(10)),
    "three offsets": lambda: safetensors_file({"a": {"data_offsets": [0, 1, 2]}}, bytes(10)),
    "no offsets": lambda: safetensors_file({"a": {"dtype": "U8"}}, bytes(10)),
    "tensor not an object": lambda: safetensors_file({"a": 3}, bytes(10)),
    "overlapping tensors": lambda: safetensors_file(
        {"a": tensor(0, 6), "b": tensor(4, 8)}, bytes(10)
    ),
    "metadata not strings": lambda: safetensors_file({"__metadata__": {"k": 1}}, b""),
    "small random file": lambda: randbytes(7, 4096),
    "large random file": lambda: randbytes(8, 12 * MIB),
}


def test_the_valid_sample_is_valid() -> None:
    assert chunks_of(VALID, "x.safetensors")[:3:2] == (SAFETENSORS, [])


@pytest.mark.parametrize("make", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_safetensors_file_is_chunked_by_content(make: Callable[[], bytes]) -> None:
    data = make()
    chunker, chunks, warnings = chunks_of(data, "x.safetensors")
    assert chunker == FASTCDC
    assert len(warnings) == 1
    assert warnings[0].startswith("x.safetensors: ")
    assert warnings[0].endswith("; chunked by content instead")
    assert b"".join(chunks) == data


def test_a_malformed_file_without_a_warn_callback_is_still_chunked() -> None:
    data = MALFORMED["garbage JSON"]()
    result = read_chunks(io.BytesIO(data), "x.safetensors")
    assert result.chunker == FASTCDC
    assert b"".join(result.chunks) == data


def test_a_stream_whose_size_is_unknown_is_chunked_by_content() -> None:
    class Unseekable(io.BytesIO):
        def seek(self, offset: int, whence: int = 0) -> int:
            raise io.UnsupportedOperation("seek")

    chunker, chunks, warnings = chunks_of(VALID, "x.safetensors", Unseekable(VALID))
    assert chunker == FASTCDC
    assert len(warnings) == 1
    assert "cannot find the file size" in warnings[0]
    assert b"".join(chunks) == VALID


def test_the_constants_keep_their_meaning() -> None:
    # Recipes record these labels; a change here would misdescribe stored versions.
    assert (chunking.SAFETENSORS, chunking.FASTCDC) == ("safetensors-1", "fastcdc-1")
    assert (chunking.MIN_CHUNK, chunking.AVG_CHUNK, chunking.MAX_CHUNK) == (
        512 * 1024,
        2 * MIB,
        8 * MIB,
    )
