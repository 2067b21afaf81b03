"""The client's hash cache: an unchanged file is not read again; any change is noticed."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

import modelkeep
from modelkeep.client import files as client_files
from modelkeep.config import Settings
from modelkeep.content import chunking, scanning
from modelkeep.services import files as file_service
from modelkeep.services import maintenance
from modelkeep.services.context import ServiceContext

SIZE = chunking.WHOLE_BELOW + 1024 * 1024


def test_an_unchanged_file_is_pushed_again_without_reading_it(
    settings: Settings, registry: ServiceContext, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cached = settings.replace(cache_dir=str(tmp_path / "cache"))
    source = tmp_path / "model.bin"
    source.write_bytes(random.Random(1).randbytes(SIZE))
    small = tmp_path / "config.json"
    small.write_text("{}")
    with modelkeep.connect(settings=cached) as mk:
        mk.create_model("a")
        mk.create_model("b")
        first = mk.push("a", [source, small])

        def no_reading(*args: object, **kwargs: object) -> None:
            raise AssertionError("the file was read again")

        monkeypatch.setattr(scanning, "scan_file", no_reading)
        monkeypatch.setattr(client_files, "upload", no_reading)
        again = mk.push("b", [source, small])
        assert again.digest == first.digest
        monkeypatch.undo()

        data = bytearray(source.read_bytes())
        data[-1] ^= 1  # same size; the write moves the change time
        source.write_bytes(bytes(data))
        changed = mk.push("a", [source, small])
        assert changed.files != first.files
        assert {f.path: f.digest for f in changed.files}["model.bin"] == "sha256:" + (
            __import__("hashlib").sha256(bytes(data)).hexdigest()
        )


def test_a_file_gc_reclaimed_is_uploaded_again(
    settings: Settings, registry: ServiceContext, tmp_path: Path
) -> None:
    """The cache knows the file; the store no longer has it (retention purged its only
    version and gc swept the chunks): the push uploads it again."""
    cached = settings.replace(cache_dir=str(tmp_path / "cache"), gc_grace_seconds=0)
    source = tmp_path / "model.bin"
    source.write_bytes(random.Random(2).randbytes(SIZE))
    other = tmp_path / "other.bin"
    other.write_bytes(b"a later, small version")
    with modelkeep.connect(settings=cached) as mk:
        mk.create_model("a")
        mk.push("a", [source])
        mk.push("a", [other])
        mk.set_retention("a", keep_last=1)
        report = mk.gc()
        assert report.purged == ("a@1",) and report.bytes >= SIZE
        assert mk.verify().ok
        mk.create_model("b")
        mk.push("b", [source])  # the cache says known, the store says missing
        mk.pull("b@1", tmp_path / "out")
        assert (tmp_path / "out" / "model.bin").read_bytes() == source.read_bytes()
    assert maintenance.verify(registry, "b@1").ok


def test_the_cache_can_be_turned_off(tmp_path: Path) -> None:
    settings = Settings(uri=str(tmp_path / "s"), cache_dir="off")
    assert settings.hash_cache_dir is None
    assert Settings(uri="x", cache_dir="~/c").hash_cache_dir == Path(os.path.expanduser("~/c"))


def test_a_chunk_lost_behind_modelkeeps_back_is_pushed_again(
    settings: Settings, registry: ServiceContext, tmp_path: Path
) -> None:
    cached = settings.replace(cache_dir=str(tmp_path / "cache"))
    source = tmp_path / "model.bin"
    source.write_bytes(random.Random(3).randbytes(SIZE))
    with modelkeep.connect(settings=cached) as mk:
        mk.create_model("a")
        first = mk.push("a", [source])
        lost = registry.blobs.path(  # type: ignore[attr-defined]
            file_service.file_recipe(registry, first.files[0].digest).chunks[0].digest
        )
        lost.chmod(0o644)
        lost.unlink()
        assert not mk.verify().ok
        mk.create_model("b")
        mk.push("b", [source])  # the cache and the recipe say stored; a chunk is not
        assert mk.verify().ok  # the push put it back: a@1 is whole again too
        mk.pull("a@1", tmp_path / "out")
        assert (tmp_path / "out" / "model.bin").read_bytes() == source.read_bytes()
