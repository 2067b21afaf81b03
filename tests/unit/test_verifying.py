"""The one verifying reader (content/verifying.py), over a raw stream and over blocks."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelkeep.content.verifying import VerifyingReader
from modelkeep.domain.digest import sha256_digest
from modelkeep.errors import DigestMismatch

DATA = bytes(range(256)) * 1000


def blocks(data: bytes, size: int = 4096) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.mark.parametrize("kind", ["raw", "blocks"])
def test_intact_bytes_read_whole(kind: str) -> None:
    source = io.BytesIO(DATA) if kind == "raw" else blocks(DATA)
    with io.BufferedReader(VerifyingReader(source, sha256_digest(DATA)), 1000) as reader:
        assert reader.read() == DATA


@pytest.mark.parametrize("kind", ["raw", "blocks"])
def test_damaged_bytes_fail_at_the_end_of_stream(kind: str) -> None:
    damaged = DATA[:-1] + b"\x00"
    source = io.BytesIO(damaged) if kind == "raw" else blocks(damaged)
    reader = io.BufferedReader(VerifyingReader(source, sha256_digest(DATA)), 1000)
    assert reader.read(len(DATA) - 1) == damaged[:-1]  # nothing is refused before the end
    with pytest.raises(DigestMismatch, match=f"blob {sha256_digest(DATA)} is damaged"):
        reader.read()


def test_the_error_is_the_callers() -> None:
    def mismatch(expected: str, actual: str) -> DigestMismatch:
        return DigestMismatch(f"file {expected} hashes to {actual}")

    reader = VerifyingReader(blocks(b"other"), sha256_digest(DATA), mismatch=mismatch)
    with pytest.raises(DigestMismatch, match=f"hashes to {sha256_digest(b'other')}"):
        io.BufferedReader(reader).read()


def test_close_closes_the_source_and_runs_on_close() -> None:
    closed: list[str] = []
    source = io.BytesIO(DATA)
    reader = VerifyingReader(source, sha256_digest(DATA), on_close=lambda: closed.append("x"))
    reader.close()
    reader.close()
    assert source.closed
    assert closed == ["x"]


def test_fileno_is_the_raw_streams(tmp_path: Path) -> None:
    (tmp_path / "blob").write_bytes(DATA)
    with open(tmp_path / "blob", "rb", buffering=0) as raw:
        assert VerifyingReader(raw, sha256_digest(DATA)).fileno() == raw.fileno()
    with pytest.raises(io.UnsupportedOperation):
        VerifyingReader(blocks(DATA), sha256_digest(DATA)).fileno()
