"""Retention policies and what gc does with them, on SQLite and PostgreSQL, through every
SDK transport: purging, exact bytes freed, pulls of kept and purged versions, roles."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest

import modelkeep
from modelkeep.client.local import LocalBackend
from modelkeep.config import Settings
from modelkeep.content.chunking import WHOLE_BELOW
from modelkeep.errors import Forbidden, InvalidInput, ModelNotFound, VersionPurged
from modelkeep.services.context import ServiceContext
from tests.clock import FakeClock
from tests.conftest import FileMaker, served_app

# Also on the in-memory store (tests/conftest.py); a test that reaches into SQL says so.
pytestmark = pytest.mark.backends("sqlite", "postgresql", "memory")


@pytest.fixture
def settings(store_dir: Path, database_url: str) -> Settings:
    """No grace period: blobs pushed a moment ago are old enough for gc to delete."""
    return Settings(
        uri=str(store_dir), database_url=database_url, token_cache_seconds=0, gc_grace_seconds=0
    )


def blob_path(store: Path, digest: str) -> Path:
    hexpart = digest.removeprefix("sha256:")
    return store / "blobs" / "sha256" / hexpart[:2] / hexpart[2:]


def content(number: int, size: int) -> bytes:
    return bytes([number]) * size


def test_keep_last_purges_old_versions_but_never_a_named_one(
    clock: FakeClock, mk: modelkeep.Client, files: FileMaker, settings: Settings, tmp_path: Path
) -> None:
    mk.create_model("m")
    shared = files.make("shared.bin", b"s" * 500)
    pushed = [mk.push("m", [files.make("w.bin", content(1, 100))])]  # m@1: champion
    pushed.append(mk.push("m", [files.make("w.bin", content(2, 200))]))  # m@2: production
    pushed.append(mk.push("m", [files.make("w.bin", content(3, 300)), shared]))  # m@3: purged
    pushed.append(mk.push("m", [files.make("w.bin", content(4, 400)), shared]))  # m@4: kept
    pushed.append(mk.push("m", [files.make("w.bin", content(5, 50))]))  # m@5: kept
    mk.set_alias("m@1", "champion")
    mk.promote("m@2", to="production")
    policy = mk.set_retention("m", keep_last=2)
    assert (policy.keep_last, policy.keep_days) == (2, None)
    assert mk.retention("m") == policy
    clock.advance()  # every blob is older than "now"

    dry = mk.gc(dry_run=True)
    assert dry.purged == ("m@3",)
    assert (dry.blobs, dry.bytes) == (1, 300)  # m@3's own file; the shared one stays
    assert mk.show("m@3").purged_at is None  # a dry run changes nothing
    assert blob_path(Path(settings.uri), pushed[2].files[1].digest).exists()

    done = mk.gc()
    assert done.purged == ("m@3",)
    assert (done.blobs, done.bytes) == (dry.blobs, dry.bytes)
    assert done.to_dict()["purged"] == ["m@3"]
    assert not blob_path(Path(settings.uri), pushed[2].files[1].digest).exists()

    purged = mk.show("m@3")
    assert purged.status == "archived"
    assert purged.purged_at is not None
    assert purged.to_dict()["purged_at"] == purged.purged_at.isoformat()
    assert purged.digest == pushed[2].digest  # manifest and metadata stay
    with pytest.raises(VersionPurged, match=r"m@3 was purged at \d{4}-"):
        mk.pull("m@3", tmp_path / "out3")
    kept = {
        1: {"w.bin": content(1, 100)},
        2: {"w.bin": content(2, 200)},
        4: {"w.bin": content(4, 400), "shared.bin": b"s" * 500},
        5: {"w.bin": content(5, 50)},
    }
    for number, expected in kept.items():
        dest = tmp_path / f"out{number}"
        mk.pull(f"m@{number}", dest)
        assert {p.name: p.read_bytes() for p in dest.iterdir()} == expected
    assert mk.verify().ok
    assert mk.verify("m@3").ok  # its manifest is all it keeps

    again = mk.gc()
    assert (again.purged, again.blobs) == ((), 0)
    actions = [(e.action, e.subject) for e in mk.audit_log(model="m")]
    assert ("retention.set", "m") in actions
    assert ("version.purge", "m@3") in actions
    assert mk.audit_verify().ok


def test_gc_frees_the_chunks_only_a_purged_version_used(
    clock: FakeClock, settings: Settings, registry: ServiceContext, files: FileMaker, tmp_path: Path
) -> None:
    """A chunked file: dry-run predicts exactly what gc frees (the purged version's own
    chunks and its recipe), and the kept version still pulls bit-exact."""
    size = WHOLE_BELOW + 4 * 1024 * 1024
    data = bytearray(random.Random(3).randbytes(size))
    first = files.make("weights.bin", bytes(data))
    data[size // 2 : size // 2 + 64] = b"z" * 64
    second = files.make("weights.bin", bytes(data))
    with modelkeep.connect(settings=settings) as mk:
        mk.create_model("big")
        v1 = mk.push("big", [first])
        v2 = mk.push("big", [second])
        before = mk.storage("big")
        mk.set_retention("big", keep_last=1)
        clock.advance()  # every blob is older than "now"
        dry = mk.gc(dry_run=True)
        done = mk.gc()
        after = mk.storage("big")
        mk.pull("big@2", tmp_path / "out")
    with registry.store.transaction() as tx:
        one, two = (tx.recipes.get(v.files[0].digest) for v in (v1, v2))
    assert two is not None
    assert one is None  # gc forgot the recipe no live version uses
    assert (tmp_path / "out" / "weights.bin").read_bytes() == bytes(data)

    own_chunks = before.physical_bytes - after.physical_bytes
    assert 0 < own_chunks < size // 4  # v1 shares all but the chunks around the change
    assert dry.purged == done.purged == ("big@1",)
    assert (done.blobs, done.bytes) == (dry.blobs, dry.bytes)
    recipe_blob = done.bytes - own_chunks
    assert 0 < recipe_blob < 64 * 1024  # and the purged file's recipe
    assert after.models[0].versions[0].new_bytes == size  # big@2 now holds every chunk
    assert after.physical_bytes == sum(c.size for c in {c.digest: c for c in two.chunks}.values())


def test_set_show_clear_and_bad_policies(mk: modelkeep.Client) -> None:
    mk.create_model("m")
    assert mk.retention("m") is None
    assert mk.clear_retention("m") is None
    set_ = mk.set_retention("m", keep_days=30)
    assert (set_.model, set_.keep_last, set_.keep_days) == ("m", None, 30)
    assert set_.updated_by and set_.updated_at is not None
    replaced = mk.set_retention("m", keep_last=3)
    assert (replaced.keep_last, replaced.keep_days) == (3, None)  # set replaces the policy
    assert mk.retention("m") == replaced
    assert mk.clear_retention("m") == replaced
    assert mk.retention("m") is None
    for keep_last, keep_days in ((None, None), (0, None), (None, -1)):
        with pytest.raises(InvalidInput):
            mk.set_retention("m", keep_last=keep_last, keep_days=keep_days)
    with pytest.raises(ModelNotFound):
        mk.set_retention("nope", keep_last=1)
    with pytest.raises(ModelNotFound):
        mk.retention("nope")
    assert [e.action for e in mk.audit_log(model="m")][-3:] == [
        "retention.set",
        "retention.set",
        "retention.clear",
    ]


def test_keep_days_keeps_what_an_alias_named_recently(
    registry: ServiceContext, files: FileMaker, settings: Settings
) -> None:
    """The registry's clock moves on: aliases moved long ago no longer protect."""
    start = registry.clock()
    now = [start - timedelta(days=100)]
    acting = registry.for_actor(registry.principal)  # closing it leaves the store open
    acting.clock = lambda: now[0]
    with modelkeep.Client(LocalBackend(acting, 0), settings) as mk:
        mk.create_model("m")
        for n in range(1, 5):
            mk.push("m", [files.make("w.bin", content(n, 10))])
        mk.set_alias("m@1", "champion")  # 100 days ago
        now[0] = start - timedelta(days=50)
        mk.set_alias("m@2", "champion")  # 1 -> 2, 50 days ago
        now[0] = start - timedelta(days=5)
        mk.set_alias("m@3", "champion")  # 2 -> 3, 5 days ago: 2 was named within 30 days
        now[0] = start
        mk.set_retention("m", keep_days=30)
        assert mk.gc(dry_run=True).purged == ("m@1", "m@4")
        assert mk.gc().purged == ("m@1", "m@4")
        assert [v.purged_at is not None for v in mk.versions("m")] == [True, False, False, True]


def test_only_a_global_admin_sets_retention(settings: Settings) -> None:
    with modelkeep.connect(settings=settings) as operator:
        operator.create_model("m")
        operator.set_retention("m", keep_last=5)
    for role in ("contributor", "releaser", "viewer"):
        with client_as(settings, role) as mk:
            assert mk.retention("m") is not None  # any reader may read it
            with pytest.raises(Forbidden, match="gc needs a global admin"):
                mk.set_retention("m", keep_last=1)
            with pytest.raises(Forbidden):
                mk.clear_retention("m")
            with pytest.raises(Forbidden):
                mk.gc(dry_run=True)
            assert mk.storage().models[0].model == "m"
    with client_as(settings, "admin") as admin:
        assert admin.set_retention("m", keep_last=1).keep_last == 1


def client_as(settings: Settings, role: str) -> _ClientAs:
    return _ClientAs(settings, role)


class _ClientAs:
    """The SDK over HTTP as a new user holding a global ``role``."""

    def __init__(self, settings: Settings, role: str) -> None:
        self._served = served_app(settings, role)
        self._settings = settings

    def __enter__(self) -> modelkeep.Client:
        from modelkeep.client.http import HttpBackend

        http, token = self._served.__enter__()
        return modelkeep.Client(HttpBackend("http://testserver", token, http=http), self._settings)

    def __exit__(self, *exc: object) -> None:
        self._served.__exit__(None, None, None)
