"""The in-memory metadata store's own transaction semantics: nothing is kept without
``commit``, writers take turns (real threads), readers see committed state only, and the
audit chain it keeps verifies. What the rows mean is held to the registry contract tests
(``pytest.mark.backends(..., "memory")``)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelkeep.bootstrap import open_context
from modelkeep.config import Settings
from modelkeep.domain.audit import verify_chain
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.versions import VersionMetadata
from modelkeep.errors import ModelExists, StoreMismatch, StoreUnavailable
from modelkeep.ports.registry import NewVersion
from modelkeep.services import audit, models
from modelkeep.storage.memory import MemoryMetadataStore, drop_memory_store, open_memory_store

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture
def name() -> Iterator[str]:
    """A store name of this test's own, forgotten afterwards."""
    name = f"unit-{uuid.uuid4().hex[:12]}"
    yield name
    drop_memory_store(name)


@pytest.fixture
def store(name: str) -> MemoryMetadataStore:
    return open_memory_store(name, blob_store_id="blobs-1", busy_timeout_ms=2000)


def new_version(model: str, n: int) -> NewVersion:
    digest = f"sha256:{n:064x}"
    files = [FileEntry("w.bin", n, digest)]
    return NewVersion(model, None, digest, files, VersionMetadata(), None, "t", AT)


def model_names(store: MemoryMetadataStore) -> list[str]:
    with store.transaction() as tx:
        return [m.name for m in tx.models.all()]


def add_then_fail(store: MemoryMetadataStore) -> None:
    with store.transaction(write=True) as tx:
        tx.models.add("failed", "", (), "t", AT)
        tx.models.add("failed", "", (), "t", AT)


def test_nothing_is_kept_without_commit(store: MemoryMetadataStore) -> None:
    with store.transaction(write=True) as tx:
        tx.models.add("gone", "", (), "t", AT)
        tx.audit.append("t", "model.create", "gone", {}, AT)
        assert [m.name for m in tx.models.all()] == ["gone"]  # its own writes it sees
    with pytest.raises(ModelExists):
        add_then_fail(store)
    assert model_names(store) == []
    with store.transaction() as tx:
        assert tx.audit.events() == [] and tx.audit.head() == (0, "0" * 64)

    with store.transaction(write=True) as tx:  # the lock was released each time
        tx.models.add("kept", "", (), "t", AT)
        tx.commit()
    assert model_names(store) == ["kept"]


def test_a_reader_sees_the_state_committed_when_it_began(store: MemoryMetadataStore) -> None:
    with store.transaction() as before:
        with store.transaction(write=True) as tx:
            tx.models.add("m", "", (), "t", AT)
            with store.transaction() as during:  # a nested reader: committed state only
                assert during.models.all() == []
            tx.commit()
        assert before.models.get("m") is None
    assert model_names(store) == ["m"]


def test_a_read_transaction_cannot_write(store: MemoryMetadataStore) -> None:
    with store.transaction() as tx, pytest.raises(RuntimeError, match="write transactions"):
        tx.models.add("m", "", (), "t", AT)
    unordered = store.transaction(write=True, ordered=False)
    with unordered as tx, pytest.raises(RuntimeError, match="audit events are written only"):
        tx.audit.append("t", "x", "m", {}, AT)


def test_writers_take_turns(store: MemoryMetadataStore) -> None:
    """Threads each read the newest number and write the next one, sleeping in between:
    interleaved writers would lose updates or collide; serialized ones cannot."""
    with store.transaction(write=True) as tx:
        tx.models.add("m", "", (), "t", AT)
        tx.commit()
    inside, most = [0], [0]
    count = threading.Lock()

    def push(n: int) -> None:
        with store.transaction(write=True) as tx:
            with count:
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            latest = tx.versions.latest_key("m")
            time.sleep(0.005)
            version = tx.versions.add(new_version("m", n))
            assert version.number == (latest.number if latest else 0) + 1
            tx.audit.append("t", "version.push", version.ref, {"n": n}, AT)
            with count:
                inside[0] -= 1
            tx.commit()

    threads = [threading.Thread(target=push, args=(n,)) for n in range(1, 13)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1
    with store.transaction() as tx:
        assert [v.number for v in tx.versions.page("m")] == list(range(1, 13))
        events, head = tx.audit.events(), tx.audit.head()
    assert sorted(e.details["n"] for e in events) == list(range(1, 13))
    assert verify_chain(events, head).ok


def test_a_writer_waits_for_the_busy_timeout_then_gives_up(name: str) -> None:
    store = open_memory_store(name, blob_store_id="b", busy_timeout_ms=50)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.transaction(write=True):
            held.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        held.wait(5)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="busy"), store.transaction(write=True):
            pass
        assert time.monotonic() - started >= 0.04
        with store.transaction() as tx:  # readers never wait
            assert tx.models.all() == []
    finally:
        release.set()
        holder.join()


def test_a_write_inside_a_write_on_one_thread_is_refused(store: MemoryMetadataStore) -> None:
    with store.transaction(write=True), pytest.raises(StoreUnavailable, match="inside another"):
        write_nothing(store)


def write_nothing(store: MemoryMetadataStore) -> None:
    with store.transaction(write=True):
        pass


def test_the_audit_chain_verifies_and_edits_are_refused_as_in_sql(
    store: MemoryMetadataStore,
) -> None:
    with store.transaction(write=True) as tx:
        tx.models.add("m", "", (), "t", AT)
        with pytest.raises(ModelExists):
            tx.models.add("m", "", (), "t", AT)
        first = tx.audit.append("t", "model.create", "m", {"files": ("a", "b")}, AT)
        tx.audit.append("t", "alias.set", "m@champion", {}, AT)
        tx.audit.append("t", "user.create", "user:ann", {}, AT)
        tx.commit()
    with store.transaction() as tx:
        events = tx.audit.events()
        assert verify_chain(events, tx.audit.head()).ok
        assert [e.seq for e in tx.audit.events(model="m")] == [1, 2]
        assert [e.seq for e in tx.audit.events(after=1, limit=1)] == [2]
    assert events[0].hash == first.hash
    assert events[0].details == {"files": ["a", "b"]}  # as a JSON column reads it back
    events[0].details["files"].append("c")  # a caller's copy: the stored event is intact
    with store.transaction() as tx:
        assert tx.audit.events()[0].details == {"files": ["a", "b"]}


def test_one_name_is_one_store_for_one_blob_store(name: str, store: MemoryMetadataStore) -> None:
    with store.transaction(write=True) as tx:
        tx.models.add("m", "", (), "t", AT)
        tx.commit()
    store.close()  # closing keeps the rows, like a database's
    assert model_names(open_memory_store(name, blob_store_id="blobs-1")) == ["m"]
    with pytest.raises(StoreMismatch, match="belongs to store blobs-1"):
        open_memory_store(name, blob_store_id="blobs-2")
    assert drop_memory_store(name)
    assert model_names(open_memory_store(name, blob_store_id="blobs-2")) == []


def test_bootstrap_opens_the_memory_store_and_writes_no_database(name: str, tmp_path: Path) -> None:
    settings = Settings(uri=str(tmp_path / "store"), database_url=f"memory://{name}")
    registry = open_context(settings)
    models.create_model(registry, "m")
    registry.close()
    reopened = open_context(settings)
    assert isinstance(reopened.store, MemoryMetadataStore)
    assert [m.name for m in models.list_models(reopened)] == ["m"]
    assert audit.verify(reopened).ok
    reopened.close()
    assert not list(tmp_path.rglob("*.db"))
