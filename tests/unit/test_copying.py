from __future__ import annotations

import hashlib
import io
import os
import tracemalloc
from pathlib import Path

import pytest

from modelkeep.content import copying


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("copy") / "big.bin"
    with open(path, "wb") as out:
        for i in range(10):
            out.write(os.urandom(3 * 1024 * 1024 + i))  # not a multiple of the block
    return path


def test_a_pipelined_copy_is_exact_and_hashes_what_it_wrote(big_file: Path, tmp_path: Path) -> None:
    hasher, seen = hashlib.sha256(), []
    with open(big_file, "rb") as source, open(tmp_path / "copy", "wb") as out:
        size = copying.copy(source, out, hasher=hasher, progress=seen.append)
    data = big_file.read_bytes()
    assert size == len(data) == sum(seen)
    assert (tmp_path / "copy").read_bytes() == data
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()


def test_a_pipelined_copy_keeps_memory_constant(big_file: Path, tmp_path: Path) -> None:
    tracemalloc.start()
    with open(big_file, "rb") as source, open(tmp_path / "copy", "wb") as out:
        copying.copy(source, out)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < (copying.BUFFERS + 1) * copying.BLOCK


def test_a_failing_write_stops_the_copy_and_is_raised(big_file: Path) -> None:
    class Full(io.RawIOBase):
        writes = 0

        def writable(self) -> bool:
            return True

        def write(self, data: object) -> int:
            self.writes += 1
            if self.writes == 2:
                raise OSError(28, "No space left on device")
            return len(data)  # type: ignore[arg-type]

    sink = Full()
    with open(big_file, "rb") as source, pytest.raises(OSError, match="No space"):
        copying.copy(source, sink)  # type: ignore[arg-type]
    assert sink.writes == 2


def test_small_and_unsized_streams_copy_serially() -> None:
    out = io.BytesIO()
    assert copying.copy(io.BytesIO(b"abc"), out) == 3
    assert out.getvalue() == b"abc"
    assert copying.sha256_of(io.BytesIO(b"abc"))[0] == (
        "sha256:" + hashlib.sha256(b"abc").hexdigest()
    )
