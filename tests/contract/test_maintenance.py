"""verify, gc and the audit chain against tampering, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import modelkeep
from modelkeep.config import Settings
from tests.conftest import FileMaker


def blob_path(store: Path, digest: str) -> Path:
    hexpart = digest.removeprefix("sha256:")
    return store / "blobs" / "sha256" / hexpart[:2] / hexpart[2:]


def damage(path: Path, data: bytes = b"rot") -> None:
    path.chmod(0o644)
    path.write_bytes(data)


def age(path: Path, seconds: float) -> None:
    past = time.time() - seconds
    os.utime(path, (past, past))


def test_verify_names_damaged_blobs_and_the_versions_they_break(
    mk: modelkeep.Client, files: FileMaker, settings: Settings
) -> None:
    mk.create_model("m")
    shared = files.make("shared.bin", b"shared weights")
    v1 = mk.push("m", [shared, files.make("a.bin")])
    v2 = mk.push("m", [shared, files.make("b.bin")])
    v3 = mk.push("m", [files.make("c.bin")])
    assert mk.verify().ok
    shared_digest = v1.files[1].digest
    damage(blob_path(Path(settings.uri), shared_digest))
    blob_path(Path(settings.uri), v3.files[0].digest).unlink()
    report = mk.verify()
    assert not report.ok
    problems = {d.digest: d for d in report.damaged}
    assert set(problems[shared_digest].versions) == {v1.ref, v2.ref}
    assert problems[v3.files[0].digest].problem == "missing"
    assert report.broken_versions == ["m@1", "m@2", "m@3"]
    assert not mk.verify("m@3").ok
    assert mk.verify("m@3").checked_blobs == 2  # its manifest and its one file


def test_verify_catches_metadata_that_no_longer_matches_the_digest(
    mk: modelkeep.Client, files: FileMaker, settings: Settings
) -> None:
    mk.create_model("m")
    mk.push("m", [files.make()])
    engine = create_engine(settings.database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE version_files SET size = size + 1"))
    engine.dispose()
    report = mk.verify()
    assert report.inconsistent_versions == ("m@1",)


def test_gc_keeps_reachable_blobs_and_sweeps_old_orphans(
    mk: modelkeep.Client, files: FileMaker, settings: Settings
) -> None:
    mk.create_model("m")
    version = mk.push("m", [files.make("w.bin", b"kept" * 100)])
    store = Path(settings.uri)
    registry = mk._registry
    orphan_old = registry.blobs.put_bytes(b"orphan from a killed push")
    orphan_new = registry.blobs.put_bytes(b"upload in flight")
    age(blob_path(store, orphan_old.digest), 7200)
    for entry in [*version.files]:
        age(blob_path(store, entry.digest), 7200)  # old but reachable: must stay
    age(blob_path(store, version.digest), 7200)

    dry = mk.gc(dry_run=True)
    assert (dry.blobs, dry.bytes, dry.kept_in_grace) == (1, orphan_old.size, 1)
    assert blob_path(store, orphan_old.digest).exists()
    done = mk.gc()
    assert (done.blobs, done.bytes) == (dry.blobs, dry.bytes)
    assert not blob_path(store, orphan_old.digest).exists()
    assert blob_path(store, orphan_new.digest).exists()
    assert mk.verify().ok
    assert mk.audit_log()[-1].action == "store.gc"


def test_gc_with_no_grace_still_never_touches_reachable_blobs(
    files: FileMaker, settings: Settings
) -> None:
    with modelkeep.connect(settings=settings.replace(gc_grace_seconds=0)) as mk:
        mk.create_model("m")
        mk.push("m", [files.make(), files.make("other.bin")])
        time.sleep(0.01)
        assert mk.gc().blobs == 0
        assert mk.verify().ok


@pytest.mark.parametrize(
    ("statement", "first_bad"),
    [
        ("UPDATE audit_events SET actor = 'local:mallory' WHERE seq = 2", 2),
        ("DELETE FROM audit_events WHERE seq = 2", 2),
        ("DELETE FROM audit_events WHERE seq = 4", 4),
        ("UPDATE audit_events SET seq = seq + 100 WHERE seq = 3", 3),
    ],
)
def test_audit_verify_names_the_first_tampered_seq(
    mk: modelkeep.Client, files: FileMaker, settings: Settings, statement: str, first_bad: int
) -> None:
    mk.create_model("m")
    mk.push("m", [files.make()])
    mk.set_alias("m@1", "champion")
    mk.promote("m@1", to="staging")
    assert mk.audit_verify().ok
    engine = create_engine(settings.database_url)
    with engine.begin() as conn:
        conn.execute(text(statement))
    engine.dispose()
    report = mk.audit_verify()
    assert not report.ok
    assert report.first_bad_seq == first_bad
