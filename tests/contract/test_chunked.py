"""Large files stored as chunks: bit-exact round trips, dedup between versions, damage
found and named, bad uploads refused, interrupted transfers resumed, gc safe."""

from __future__ import annotations

import hashlib
import random
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

import modelkeep
from modelkeep.config import Settings
from modelkeep.content import chunking
from modelkeep.errors import DigestMismatch, InvalidInput, MissingChunk
from modelkeep.services import files as file_service
from modelkeep.services import maintenance, versions
from modelkeep.services.context import ServiceContext
from tests.conftest import served_app

MIB = 1024 * 1024
SIZE = chunking.WHOLE_BELOW + 4 * MIB  # just big enough to be chunked


def random_bytes(size: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(size)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def stored_bytes(store: Path) -> int:
    return sum(p.stat().st_size for p in (store / "blobs").rglob("*") if p.is_file())


def sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.transport  # a chunked push (streamed pack) and chunk downloads over sockets
def test_a_large_file_round_trips_bit_exact_through_its_chunks(
    mk: modelkeep.Client, registry: ServiceContext, tmp_path: Path
) -> None:
    source = write(tmp_path / "model.bin", random_bytes(SIZE, 1))
    mk.create_model("m")
    version = mk.push("m", [source])
    assert version.files[0].digest == sha256(source)  # identity is the whole file's sha256
    recipe = file_service.file_recipe(registry, version.files[0].digest)
    assert not recipe.is_whole
    assert len(recipe.chunks) > 2
    mk.pull("m@1", tmp_path / "out")
    assert (tmp_path / "out" / "model.bin").read_bytes() == source.read_bytes()


def test_a_second_version_stores_only_the_chunks_that_changed(
    mk: modelkeep.Client, store_dir: Path, tmp_path: Path
) -> None:
    data = bytearray(random_bytes(3 * SIZE, 2))
    mk.create_model("m")
    mk.push("m", [write(tmp_path / "model.gguf", bytes(data))])
    first = stored_bytes(store_dir)
    data[len(data) // 2 : len(data) // 2 + 1000] = random_bytes(1000, 3)  # one region
    mk.push("m", [write(tmp_path / "model.gguf", bytes(data))])
    added = stored_bytes(store_dir) - first
    assert 0 < added < 0.25 * first
    mk.pull("m@2", tmp_path / "out")
    assert (tmp_path / "out" / "model.gguf").read_bytes() == bytes(data)


def test_safetensors_are_cut_at_tensor_boundaries_and_dedup_per_tensor(
    mk: modelkeep.Client, store_dir: Path, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    tensors = {f"layer{i}": rng.standard_normal(600_000).astype(np.float32) for i in range(12)}
    save_file(tensors, str(tmp_path / "model.safetensors"))
    mk.create_model("m")
    mk.push("m", [tmp_path / "model.safetensors"])
    first = stored_bytes(store_dir)
    tensors["layer5"] = rng.standard_normal(600_000).astype(np.float32)
    save_file(tensors, str(tmp_path / "model.safetensors"))
    mk.push("m", [tmp_path / "model.safetensors"])
    added = stored_bytes(store_dir) - first
    assert added < 0.2 * first  # one tensor of twelve (and the header) changed
    mk.pull("m@2", tmp_path / "out")
    assert sha256(tmp_path / "out" / "model.safetensors") == sha256(tmp_path / "model.safetensors")


def _chunk_path(store: Path, digest: str) -> Path:
    hexd = digest.removeprefix("sha256:")
    return store / "blobs" / "sha256" / hexd[:2] / hexd[2:]


def test_a_damaged_chunk_fails_the_pull_and_verify_names_it_with_its_version(
    registry: ServiceContext, settings: Settings, store_dir: Path, tmp_path: Path
) -> None:
    with modelkeep.connect(settings=settings) as mk:
        mk.create_model("m")
        version = mk.push("m", [write(tmp_path / "model.bin", random_bytes(SIZE, 4))])
        chunk = file_service.file_recipe(registry, version.files[0].digest).chunks[1]
        path = _chunk_path(store_dir, chunk.digest)
        path.chmod(0o644)
        path.write_bytes(b"x" * chunk.size)
        with pytest.raises(DigestMismatch, match=r"model\.bin"):
            mk.pull("m@1", tmp_path / "out")
        assert not (tmp_path / "out" / "model.bin").exists()
        report = maintenance.verify(registry)
        assert [d.digest for d in report.damaged] == [chunk.digest]
        assert report.damaged[0].versions == ("m@1",)


def test_a_missing_chunk_is_an_integrity_failure_naming_the_chunk(
    registry: ServiceContext, settings: Settings, store_dir: Path, tmp_path: Path
) -> None:
    with modelkeep.connect(settings=settings) as mk:
        mk.create_model("m")
        version = mk.push("m", [write(tmp_path / "model.bin", random_bytes(SIZE, 5))])
        chunk = file_service.file_recipe(registry, version.files[0].digest).chunks[0]
        _chunk_path(store_dir, chunk.digest).unlink()
        with pytest.raises(MissingChunk, match=chunk.digest) as caught:
            mk.pull("m@1", tmp_path / "out")
        assert caught.value.exit_code == 3
        report = maintenance.verify(registry)
        assert [(d.digest, d.problem) for d in report.damaged] == [(chunk.digest, "missing")]


def test_a_pull_interrupted_midway_fetches_only_the_rest_next_time(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with modelkeep.connect(settings=settings) as mk:
        mk.create_model("m")
        source = write(tmp_path / "model.bin", random_bytes(3 * SIZE, 6))
        mk.push("m", [source])
        fetched: list[str] = []
        real = file_service.read_chunk

        def failing(opener, digest, size):  # type: ignore[no-untyped-def]
            if len(fetched) == 4:
                raise ConnectionError("the network went away")
            fetched.append(digest)
            return real(opener, digest, size)

        monkeypatch.setattr(file_service, "read_chunk", failing)
        with pytest.raises(ConnectionError):
            mk.pull("m@1", tmp_path / "out")

        def counting(opener, digest, size):  # type: ignore[no-untyped-def]
            fetched.append(digest)
            return real(opener, digest, size)

        monkeypatch.setattr(file_service, "read_chunk", counting)
        first_try = list(fetched)
        fetched.clear()
        mk.pull("m@1", tmp_path / "out")
        assert (tmp_path / "out" / "model.bin").read_bytes() == source.read_bytes()
        assert not set(first_try) & set(fetched)  # what arrived before was kept
        assert not (tmp_path / "out" / ".modelkeep-partial").exists()


def test_the_server_names_a_file_by_hashing_the_chunks_it_holds(
    settings: Settings, registry: ServiceContext
) -> None:
    parts = [random_bytes(MIB, 7), random_bytes(MIB // 2, 8)]
    listed: list[list[object]] = []
    for part in parts:
        registry.blobs.put_bytes(part)
        listed.append(["sha256:" + hashlib.sha256(part).hexdigest(), len(part)])
    whole = "sha256:" + hashlib.sha256(b"".join(parts)).hexdigest()
    absent = "sha256:" + hashlib.sha256(b"never uploaded").hexdigest()
    with served_app(settings, "contributor") as (http, token):
        auth = {"authorization": f"Bearer {token}"}

        def assemble(chunks: list[list[object]]) -> tuple[int, Any]:
            body = {"chunker": "fastcdc-1", "chunks": chunks}
            answer = http.post("/api/v1/files", json=body, headers=auth)
            return answer.status_code, answer.json()

        assert assemble(listed) == (201, {"digest": whole, "size": 3 * MIB // 2, "chunks": 2})
        missing = http.post("/api/v1/blobs/missing", json={"digests": [whole]}, headers=auth)
        assert missing.json() == {"missing": []}
        status, body = assemble([[listed[0][0], 5], listed[1]])
        assert (status, body["error"]["code"]) == (400, "invalid_input")
        status, body = assemble([*listed, [absent, 10]])
        assert (status, body["error"]["code"]) == (404, "blob_not_found")
        assert absent in body["error"]["message"]


def test_a_pack_whose_bytes_do_not_match_is_refused_and_stores_nothing_bad(
    settings: Settings, registry: ServiceContext
) -> None:
    good, bad = random_bytes(1000, 8), random_bytes(1000, 9)
    good_digest = "sha256:" + hashlib.sha256(good).hexdigest()
    claimed = "sha256:" + hashlib.sha256(b"not these bytes").hexdigest()
    with served_app(settings, "contributor") as (http, token):
        headers = {
            "authorization": f"Bearer {token}",
            "content-type": "application/octet-stream",
            "x-modelkeep-chunks": f"{good_digest}:1000,{claimed}:1000",
        }
        answer = http.put("/api/v1/chunks", content=good + bad, headers=headers)
        assert answer.status_code == 422
        assert answer.json()["error"]["code"] == "digest_mismatch"
        short = http.put("/api/v1/chunks", content=good[:10], headers=headers)
        assert short.status_code == 400
    assert registry.blobs.has(good_digest)
    assert not registry.blobs.has(claimed)


def test_two_clients_pushing_the_same_new_chunks_at_once_both_succeed_with_one_copy(
    settings: Settings, store_dir: Path, tmp_path: Path
) -> None:
    data = random_bytes(SIZE, 10)
    errors: list[BaseException] = []
    with modelkeep.connect(settings=settings) as setup:
        setup.create_model("a")
        setup.create_model("b")

    def push(model: str) -> None:
        try:
            source = write(tmp_path / f"{model}.bin", data)
            with modelkeep.connect(settings=settings) as mk:
                mk.push(model, [source])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(m,)) for m in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert SIZE <= stored_bytes(store_dir) < SIZE + MIB  # one copy of the chunks


def test_gc_keeps_the_chunks_of_a_push_in_flight_and_reclaims_abandoned_ones(
    registry: ServiceContext, tmp_path: Path
) -> None:
    data = random_bytes(SIZE, 11)
    source = write(tmp_path / "model.bin", data)
    from modelkeep.content.scanning import scan_file

    scan = scan_file(source, lambda p: file_service.store_chunk(registry, p.data, p.digest))
    recipe = file_service.put_recipe(registry, scan.recipe())
    report = maintenance.gc(registry, grace_seconds=3600)
    assert report.blobs == 0  # recorded recently: a push is about to register it
    assert versions.missing_blobs(registry, [recipe.digest]) == set()
    report = maintenance.gc(registry, grace_seconds=0)  # now it is abandoned
    assert report.blobs == len(recipe.chunks) + 1  # the chunks and the recipe blob
    assert report.bytes >= SIZE
    assert versions.missing_blobs(registry, [recipe.digest]) == {recipe.digest}


def test_a_push_interrupted_midway_stores_only_the_rest_next_time(
    registry: ServiceContext, settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write(tmp_path / "model.bin", random_bytes(3 * SIZE, 12))
    blobs = type(registry.blobs)
    real = blobs.put_hashed
    written: list[str] = []

    def failing(self, data, digest):  # type: ignore[no-untyped-def]
        if len(written) == 5:
            raise OSError("no space left on device")
        written.append(digest)
        return real(self, data, digest)

    monkeypatch.setattr(blobs, "put_hashed", failing)
    with modelkeep.connect(settings=settings) as mk:
        mk.create_model("m")
        with pytest.raises(OSError, match="no space"):
            mk.push("m", [source])
        assert mk.versions("m") == []  # nothing half-registered
        first_try = list(written)

        def counting(self, data, digest):  # type: ignore[no-untyped-def]
            written.append(digest)
            return real(self, data, digest)

        monkeypatch.setattr(blobs, "put_hashed", counting)
        written.clear()
        version = mk.push("m", [source])
    recipe = file_service.file_recipe(registry, version.files[0].digest)
    assert set(written) == {c.digest for c in recipe.chunks} - set(first_try)


def test_verify_names_the_files_a_damaged_chunk_breaks_and_can_sample(
    mk: modelkeep.Client, registry: ServiceContext, store_dir: Path, tmp_path: Path
) -> None:
    data = random_bytes(SIZE, 13)
    mk.create_model("m")
    mk.push("m", [write(tmp_path / "a.bin", data)])
    mk.push("m", [write(tmp_path / "a.bin", data), write(tmp_path / "b.bin", b"small")])
    recipe = file_service.file_recipe(registry, mk.show("m@1").files[0].digest)
    chunk = recipe.chunks[-1]
    _chunk_path(store_dir, chunk.digest).chmod(0o644)
    _chunk_path(store_dir, chunk.digest).write_bytes(b"y" * chunk.size)
    report = mk.verify()
    assert [(d.digest, d.versions, d.files) for d in report.damaged] == [
        (chunk.digest, ("m@1", "m@2"), ("m@1:a.bin", "m@2:a.bin"))
    ]
    every = report.checked_blobs
    assert every == len(recipe.chunks) + 1 + 1 + 2  # chunks, recipe, b.bin, two manifests
    sampled = mk.verify(sample=10)
    assert sampled.sample == 10
    assert sampled.checked_blobs == -(-every * 10 // 100)
    with pytest.raises(InvalidInput, match="percentage"):
        maintenance.verify(registry, sample=0)
