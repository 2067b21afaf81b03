"""verify, gc and the audit chain against tampering, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import modelkeep
from modelkeep.config import Settings
from modelkeep.errors import RecordTampered
from modelkeep.services import versions
from modelkeep.services.context import ServiceContext
from modelkeep.services.maintenance import sweep, unused
from tests.clock import FakeClock
from tests.conftest import FileMaker

# Also on the in-memory store (tests/conftest.py); a test that reaches into SQL says so.
pytestmark = pytest.mark.backends("sqlite", "postgresql", "memory")


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


@pytest.mark.backends("sqlite", "postgresql")  # edits rows in SQL
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
    mk: modelkeep.Client, files: FileMaker, settings: Settings, registry: ServiceContext
) -> None:
    mk.create_model("m")
    version = mk.push("m", [files.make("w.bin", b"kept" * 100)])
    store = Path(settings.uri)
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
    clock: FakeClock, files: FileMaker, settings: Settings
) -> None:
    with modelkeep.connect(settings=settings.replace(gc_grace_seconds=0)) as mk:
        mk.create_model("m")
        mk.push("m", [files.make(), files.make("other.bin")])
        clock.advance()  # every blob is older than gc's "now"
        assert mk.gc().blobs == 0
        assert mk.verify().ok


@pytest.mark.backends("sqlite", "postgresql")  # edits rows in SQL
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


@pytest.mark.backends("sqlite", "postgresql")  # edits rows in SQL
def test_verify_catches_metadata_edited_in_the_database(
    mk: modelkeep.Client, files: FileMaker, settings: Settings
) -> None:
    mk.create_model("m")
    mk.push("m", [files.make()], metrics={"auc": 0.7})
    mk.push("m", [files.make()], metrics={"auc": 0.8})
    engine = create_engine(settings.database_url)
    with engine.begin() as conn:
        versions = conn.execute(text("SELECT id, metadata FROM versions ORDER BY id")).all()
        first = versions[0]
        metadata = (
            first.metadata
            if isinstance(first.metadata, dict)
            else __import__("json").loads(first.metadata)
        )
        metadata["metrics"]["auc"] = 0.99
        conn.execute(
            text("UPDATE versions SET metadata = :m WHERE id = :id"),
            {"m": json.dumps(metadata), "id": first.id},
        )
    engine.dispose()
    with pytest.raises(RecordTampered, match="m@1: metadata_digest is sha256:"):
        mk.show("m@1")  # a read refuses what its push did not record
    assert mk.verify().inconsistent_versions == ("m@1",)
    assert mk.verify("m@2").ok


@pytest.mark.backends("sqlite", "postgresql")  # edits rows in SQL
def test_a_tampered_alias_and_file_row_are_refused_over_every_transport(
    mk: modelkeep.Client, files: FileMaker, settings: Settings, tmp_path: Path
) -> None:
    """The SDK, in process and over HTTP: a read refuses, verify names the rows."""
    mk.create_model("m")
    one = mk.push("m", [files.make("w.bin", b"one")])
    two = mk.push("m", [files.make("w.bin", b"two")])
    mk.set_alias("m@1", "champion")
    engine = create_engine(settings.database_url)
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE aliases SET version_id = (SELECT id FROM versions WHERE number = 2)")
        )
        conn.execute(
            text(
                "UPDATE version_files SET digest = :d WHERE version_id = "
                "(SELECT id FROM versions WHERE number = 1)"
            ),
            {"d": two.files[0].digest},
        )
    engine.dispose()
    with pytest.raises(RecordTampered, match="m@champion: target is version 2"):
        mk.resolve("m@champion")
    with pytest.raises(RecordTampered, match="m@1: file list digest"):
        mk.pull("m@1", tmp_path / "dest")
    assert not (tmp_path / "dest").exists()
    report = mk.verify()
    assert not report.ok
    found = {(m.kind, m.subject, m.field): (m.expected, m.found) for m in report.mismatches}
    assert found[("alias", "m@champion", "target")] == ("version 1", "version 2")
    assert found[("file", "m@1:w.bin", "digest")] == (one.files[0].digest, two.files[0].digest)
    assert report.broken_versions == ["m@1"]


def test_gc_spares_an_old_orphan_that_a_push_takes_up_meanwhile(
    mk: modelkeep.Client, files: FileMaker, settings: Settings, registry: ServiceContext
) -> None:
    """gc lists an old unused blob; before it sweeps, a push re-uploads and registers it."""
    mk.create_model("m")
    weights = files.make("w.bin", b"weights left by a killed push")
    orphan = registry.blobs.put_bytes(weights.read_bytes())
    age(blob_path(Path(settings.uri), orphan.digest), 7200)
    cutoff = datetime.now(UTC) - timedelta(hours=1)
    listed, young = unused(registry.blobs, set(), cutoff)
    assert [b.digest for b in listed] == [orphan.digest]

    version = mk.push("m", [weights])  # between gc's listing and its sweep
    report = sweep(registry, listed, young, cutoff)

    assert report.blobs == 0
    assert report.kept_in_grace == 1
    assert mk.verify(version.ref).ok


def test_a_blob_swept_before_registration_fails_the_push_cleanly(
    mk: modelkeep.Client, files: FileMaker, settings: Settings, registry: ServiceContext
) -> None:
    """Uploaded, then swept (a push slower than the grace period): no broken version."""
    from modelkeep.domain.manifest import FileEntry
    from modelkeep.domain.versions import PushRequest
    from modelkeep.errors import BlobNotFound

    mk.create_model("m")
    info = registry.blobs.put_bytes(b"slow upload")
    age(blob_path(Path(settings.uri), info.digest), 7200)
    with modelkeep.connect(settings=settings.replace(gc_grace_seconds=60)) as other:
        assert other.gc().blobs == 1
    with pytest.raises(BlobNotFound):
        versions.register_version(
            registry, "m", [FileEntry("w.bin", info.size, info.digest)], PushRequest()
        )
    assert mk.versions("m") == []


def test_push_uploads_again_when_gc_swept_its_blob_before_registration(
    mk: modelkeep.Client, files: FileMaker, settings: Settings
) -> None:
    mk.create_model("m")
    first, second = files.make("a.bin", b"first file"), files.make("b.bin", b"second file")
    first_digest = "sha256:" + hashlib.sha256(b"first file").hexdigest()
    swept: list[int] = []
    seen = [0]

    def sweep_first_blob(n: int) -> None:  # acts once the first file is stored
        seen[0] += n
        if swept or seen[0] <= len(b"first file"):
            return
        age(blob_path(Path(settings.uri), first_digest), 7200)
        with modelkeep.connect(settings=settings.replace(gc_grace_seconds=60)) as other:
            swept.append(other.gc().blobs)

    version = mk.push("m", [first, second], progress=sweep_first_blob)
    assert swept == [1]
    assert version.number == 1
    assert mk.verify().ok
