"""The storage report: logical against physical bytes, on SQLite and PostgreSQL, through
every SDK transport; chunk-level sharing of a large file; who sees which models."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

import modelkeep
from modelkeep.config import Settings
from modelkeep.content.chunking import WHOLE_BELOW
from modelkeep.domain.access import Actor, Grant
from modelkeep.domain.versions import PushRequest
from modelkeep.errors import Forbidden, ModelNotFound
from modelkeep.services import models, storage, versions
from modelkeep.services.context import ServiceContext
from tests.conftest import FileMaker

A, B, SHARED = b"a" * 100, b"b" * 50, b"s" * 1000


def test_two_versions_sharing_a_file_count_it_once(mk: modelkeep.Client, files: FileMaker) -> None:
    mk.create_model("m")
    mk.create_model("n")
    mk.create_model("empty")
    shared = files.make("shared.bin", SHARED)
    v1 = mk.push("m", [files.make("a.bin", A), shared])
    v2 = mk.push("m", [shared, files.make("b.bin", B)])
    n1 = mk.push("n", [files.make("copy.bin", SHARED)])  # same bytes, other model

    report = mk.storage()
    assert report.to_dict() == {
        "logical_bytes": 1100 + 1050 + 1000,
        "physical_bytes": 1150,
        "saved_bytes": 2000,
        "models": [
            {"model": "empty", "logical_bytes": 0, "physical_bytes": 0, "versions": []},
            {
                "model": "m",
                "logical_bytes": 2150,
                "physical_bytes": 1150,
                "versions": [
                    {"number": 1, "digest": v1.digest, "logical_bytes": 1100, "new_bytes": 1100},
                    {"number": 2, "digest": v2.digest, "logical_bytes": 1050, "new_bytes": 50},
                ],
            },
            {
                "model": "n",
                "logical_bytes": 1000,
                "physical_bytes": 1000,
                "versions": [
                    {"number": 1, "digest": n1.digest, "logical_bytes": 1000, "new_bytes": 0}
                ],
            },
        ],
    }
    assert report.saving_ratio == pytest.approx(2000 / 3150)

    only_n = mk.storage("n")
    assert (only_n.logical_bytes, only_n.physical_bytes, only_n.saved_bytes) == (1000, 1000, 0)
    assert [m.model for m in only_n.models] == ["n"]
    assert only_n.models[0].versions[0].new_bytes == 0  # m@1 stored those bytes first
    with pytest.raises(ModelNotFound):
        mk.storage("nope")


def test_a_large_file_changed_in_the_middle_stores_only_its_new_chunks(
    settings: Settings, registry: ServiceContext, tmp_path: Path
) -> None:
    size = WHOLE_BELOW + 4 * 1024 * 1024  # 20 MiB: chunked
    data = bytearray(random.Random(7).randbytes(size))
    first = tmp_path / "one" / "weights.bin"
    first.parent.mkdir()
    first.write_bytes(data)
    data[size // 2 : size // 2 + 100] = b"x" * 100
    second = tmp_path / "two" / "weights.bin"
    second.parent.mkdir()
    second.write_bytes(data)
    with modelkeep.connect(settings=settings) as mk:
        mk.create_model("big")
        v1 = mk.push("big", [first])
        v2 = mk.push("big", [second])
        report = mk.storage("big")

    with registry.store.transaction() as tx:
        one, two = (tx.recipes.get(v.files[0].digest) for v in (v1, v2))
    assert one is not None and two is not None and len(one.chunks) > 2
    chunks_one = {c.digest: c.size for c in one.chunks}
    chunks_two = {c.digest: c.size for c in two.chunks}
    new_in_two = sum(s for d, s in chunks_two.items() if d not in chunks_one)
    physical = sum({**chunks_one, **chunks_two}.values())

    model = report.models[0]
    assert (model.logical_bytes, model.physical_bytes) == (2 * size, physical)
    assert [(v.logical_bytes, v.new_bytes) for v in model.versions] == [
        (size, sum(chunks_one.values())),
        (size, new_in_two),
    ]
    assert 0 < new_in_two < size // 4  # only the chunks around the change are new
    assert report.saved_bytes == 2 * size - physical


def test_the_report_shows_only_the_models_the_actor_may_read(registry: ServiceContext) -> None:
    models.create_model(registry, "m")
    models.create_model(registry, "n")
    for model, content in (("m", A), ("n", SHARED)):
        info = registry.blobs.put_bytes(content)
        entry = modelkeep.FileEntry("w.bin", info.size, info.digest)
        versions.register_version(registry, model, [entry], PushRequest())

    reader = registry.for_actor(Actor("bob", (Grant("viewer", "n"),)))
    seen = storage.report(reader)
    assert [m.model for m in seen.models] == ["n"]
    assert (seen.logical_bytes, seen.physical_bytes) == (1000, 1000)
    assert storage.report(reader, "n").models[0].versions[0].new_bytes == 1000
    with pytest.raises(Forbidden):
        storage.report(reader, "m")
    with pytest.raises(Forbidden):
        storage.report(registry.for_actor(Actor("nobody")))
