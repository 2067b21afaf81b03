"""gc racing pushes of chunked files, from two replicas on one database and one store.

A replica is an independent ``open_context(settings)``: one pushes large (chunked)
files through the SDK while the other runs gc in a loop, from its own thread or, to race
through the database's locks as two machines would, from its own process. gc runs with
a grace period of 0, the harshest: every blob no version uses is a candidate at once.

The invariant: a push either fails with a clear modelkeep error or registers a complete
version. At the end, with gc stopped, verify finds nothing wrong, every registered
version pulls back bit-exact and the audit chain verifies.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import random
import shutil
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

import modelkeep
from modelkeep.bootstrap import open_context
from modelkeep.config import Settings
from modelkeep.content import chunking
from modelkeep.content.scanning import Piece, scan_file
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.versions import PushRequest
from modelkeep.errors import BlobNotFound, MissingChunk
from modelkeep.services import audit, maintenance, models, versions
from modelkeep.services import files as file_service
from modelkeep.services.context import ServiceContext, utc_now

MIB = 1024 * 1024
SIZE = 20 * MIB  # chunked: at least chunking.WHOLE_BELOW
MIN_PUSHES = 14  # pushes while gc runs, after a first version pushed before it starts
ENOUGH_PUSHED = 3  # then stop once this many registered...
PUSH_DEADLINE = 8.0  # ...or after this many seconds: the test stays well under 20 s
GC_PAUSE = 0.03  # at most this long between two gc runs (a random fraction of it)
MIN_GC_RUNS = 3
# What a push that lost a race may fail with: its blob or chunk was swept before it
# registered (the SDK uploads again and retries once; a second loss is reported).
LOST_RACE = (BlobNotFound, MissingChunk)
# What each push changes in the first version's file, in turn: a few bytes at these
# offsets (so it shares all but a chunk or two with it), or everything (None). The file
# changed at two offsets is made of chunks the two before it stored already.
CHANGES: list[tuple[int, ...] | None] = [
    (SIZE - 1000,),
    (SIZE // 2,),
    (100,),
    (SIZE // 2, 100),
    None,
    (SIZE - 200,),
    (SIZE // 3,),
]

assert SIZE >= chunking.WHOLE_BELOW


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(MIB):
            hasher.update(block)
    return "sha256:" + hasher.hexdigest()


def variant(base: bytes, attempt: int, rng: random.Random) -> bytes:
    """The ``attempt``-th file pushed, unlike every other one (a version of the same
    files as another is refused as a duplicate)."""
    cycle, kind = divmod(attempt, len(CHANGES))
    spots = CHANGES[kind]
    if spots is None:
        return rng.randbytes(SIZE)
    data = bytearray(base)
    for spot in spots:
        data[spot : spot + 8] = (cycle + 1).to_bytes(8, "little")
    return bytes(data)


# The gc replica: a loop, in a thread or in a process --------------------------------------


@dataclass
class GcRuns:
    runs: int = 0
    freed: int = 0  # blobs
    failures: list[str] = field(default_factory=list)  # tracebacks: a gc must not fail


def gc_loop(settings: Settings, stop: Any, started: Any, seed: int) -> GcRuns:
    """Open a replica and run gc (grace 0) until ``stop`` is set. Module level, so that a
    spawned process can run it."""
    rng = random.Random(seed)
    registry = open_context(settings)
    result = GcRuns()
    try:
        started.set()
        while not stop.is_set():
            try:
                result.freed += maintenance.gc(registry, grace_seconds=0).blobs
            except Exception as exc:  # reported by the test, which goes on racing
                result.failures.append("".join(traceback.format_exception(exc)))
            result.runs += 1
            stop.wait(rng.uniform(0, GC_PAUSE))
    finally:
        registry.close()
    return result


class GcInThread:
    def __init__(self, settings: Settings) -> None:
        self.stop, self.started = threading.Event(), threading.Event()
        self.result: GcRuns | BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(settings,), daemon=True)

    def _run(self, settings: Settings) -> None:
        try:
            self.result = gc_loop(settings, self.stop, self.started, 1)
        except BaseException as exc:  # re-raised by finish()
            self.result = exc

    def start(self) -> None:
        self.thread.start()
        if not self.started.wait(30):
            raise RuntimeError(f"the gc thread did not start: {self.result!r}")

    def finish(self) -> GcRuns:
        self.stop.set()
        self.thread.join(60)
        assert not self.thread.is_alive(), "the gc thread did not stop"
        if isinstance(self.result, BaseException):
            raise self.result
        assert self.result is not None
        return self.result


class GcInProcess:
    """The gc replica in a process of its own ('spawn', as in test_concurrency.py)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        context = multiprocessing.get_context("spawn")
        self.manager = context.Manager()
        self.stop, self.started = self.manager.Event(), self.manager.Event()
        self.pool = context.Pool(1)

    def start(self) -> None:
        self.result = self.pool.apply_async(gc_loop, (self.settings, self.stop, self.started, 2))
        deadline = time.monotonic() + 60
        while not self.started.wait(0.1):
            if self.result.ready():
                self.result.get()  # raises what the process raised
            if time.monotonic() > deadline:
                raise RuntimeError("the gc process did not start")

    def finish(self) -> GcRuns:
        self.stop.set()
        try:
            result: GcRuns = self.result.get(timeout=60)
            return result
        finally:
            self.pool.close()
            self.pool.join()
            self.manager.shutdown()


# The pushing replica ----------------------------------------------------------------------


@dataclass
class Pushes:
    pushed: dict[int, str] = field(default_factory=dict)  # version number -> file digest
    lost: list[BaseException] = field(default_factory=list)  # clean failures
    wrong: list[BaseException] = field(default_factory=list)  # anything else
    times: list[float] = field(default_factory=list)

    def summary(self, gc: GcRuns) -> str:
        wrong = "".join(line for e in self.wrong for line in traceback.format_exception(e))
        return (
            f"{len(self.times)} pushes in {sum(self.times):.1f} s: {len(self.pushed)} "
            f"registered, {len(self.lost)} lost a race {self.lost!r}, "
            f"{len(self.wrong)} failed otherwise; {gc.runs} gc runs freed {gc.freed} blobs, "
            f"{len(gc.failures)} failed\n{wrong}{''.join(gc.failures)}"
        )


def push_while_gc_runs(mk: modelkeep.Client, folder: Path, base: bytes) -> Pushes:
    rng = random.Random(3)
    outcomes = Pushes()
    deadline = time.monotonic() + PUSH_DEADLINE
    attempt = 0
    while time.monotonic() < deadline and (
        attempt < MIN_PUSHES or len(outcomes.pushed) < ENOUGH_PUSHED
    ):
        data = variant(base, attempt, rng)
        source = folder / f"push{attempt}" / "model.bin"
        source.parent.mkdir(parents=True)
        source.write_bytes(data)
        began = time.monotonic()
        try:
            version = mk.push("m", [source], meta={"attempt": attempt})
        except LOST_RACE as exc:
            outcomes.lost.append(exc)
        except Exception as exc:  # a raw OSError, a database error: reported below
            outcomes.wrong.append(exc)
        else:
            assert [f.digest for f in version.files] == [sha256(data)]
            outcomes.pushed[version.number] = sha256(data)
        finally:
            outcomes.times.append(time.monotonic() - began)
            shutil.rmtree(source.parent)
        attempt += 1
    return outcomes


def check_store(settings: Settings, pushed: dict[int, str], tmp_path: Path) -> None:
    """With no gc running: verify ok, every version pulls bit-exact, the chain is whole."""
    registry = open_context(settings)
    try:
        stored = {
            v.number: [f.digest for f in v.files] for v in versions.list_versions(registry, "m")
        }
        assert stored == {n: [digest] for n, digest in pushed.items()}
        report = maintenance.verify(registry)
        assert report.ok, f"damaged {report.damaged}, inconsistent {report.inconsistent_versions}"
        chain = audit.verify(registry)
        assert chain.ok, chain
    finally:
        registry.close()
    with modelkeep.connect(settings=settings) as mk:
        for number, digest in pushed.items():
            dest = tmp_path / "pulled" / str(number)
            mk.pull(f"m@{number}", dest)
            assert file_sha256(dest / "model.bin") == digest, f"m@{number}"
            shutil.rmtree(dest)


@pytest.mark.slow
@pytest.mark.parametrize("gc_in", ["thread", "process"])
def test_gc_racing_pushes_of_chunked_files_leaves_only_complete_versions(
    settings: Settings, tmp_path: Path, gc_in: str
) -> None:
    base = random.Random(42).randbytes(SIZE)
    folder = tmp_path / "files"
    with modelkeep.connect(settings=settings) as mk:
        mk.create_model("m")
        # A first version, before gc starts: the pushes that share its chunks have a
        # chance to win their race, however often gc runs.
        first = folder / "first" / "model.bin"
        first.parent.mkdir(parents=True)
        first.write_bytes(base)
        pushed = {mk.push("m", [first]).number: sha256(base)}

        gc = GcInThread(settings) if gc_in == "thread" else GcInProcess(settings)
        gc.start()
        try:
            outcomes = push_while_gc_runs(mk, folder, base)
        finally:
            runs = gc.finish()

    summary = outcomes.summary(runs)
    check_store(settings, {**pushed, **outcomes.pushed}, tmp_path)  # the invariant
    assert outcomes.wrong == [] and runs.failures == [], summary
    assert len(outcomes.pushed) >= 1, summary
    assert runs.runs >= MIN_GC_RUNS, summary

    # And a last gc with nothing in flight leaves every version whole.
    registry = open_context(settings)
    try:
        maintenance.gc(registry, grace_seconds=0)
    finally:
        registry.close()
    check_store(settings, {**pushed, **outcomes.pushed}, tmp_path)


# The grace period, deterministically ------------------------------------------------------


def blob_files(store: Path) -> list[Path]:
    return [p for p in (store / "blobs").rglob("*") if p.is_file()]


def age_all(store: Path, seconds: float) -> None:
    """Make every stored blob older than ``seconds``: only the database protects it now."""
    past = time.time() - seconds
    for path in blob_files(store):
        os.utime(path, (past, past))


def chunk_sink(registry: ServiceContext) -> Callable[[Piece], None]:
    """Stores each chunk the scan reads, as the in-process client does."""

    def sink(piece: Piece) -> None:
        file_service.store_chunk(registry, piece.data, piece.digest)

    return sink


def push_in_flight(registry: ServiceContext, source: Path) -> FileEntry:
    """Chunks stored and recipe recorded, as a push does, but no version registered."""
    scan = scan_file(source, chunk_sink(registry))
    recipe = file_service.put_recipe(registry, scan.recipe())
    return FileEntry("model.bin", recipe.size, recipe.digest)


@pytest.fixture
def replicas(settings: Settings) -> Any:
    """Two independent registries on the same database and store: (pusher, gc)."""
    pusher, collector = open_context(settings), open_context(settings)
    yield pusher, collector
    pusher.close()
    collector.close()


def run_in_thread(call: Callable[[], Any]) -> Any:
    """``call()`` from a thread of its own (the other replica's), its result or error."""
    box: list[Any] = []

    def run() -> None:
        try:
            box.append(call())
        except BaseException as exc:  # re-raised below
            box.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(60)
    if isinstance(box[0], BaseException):
        raise box[0]
    return box[0]


def test_within_the_grace_period_a_recorded_recipe_keeps_its_chunks_until_registration(
    replicas: tuple[ServiceContext, ServiceContext],
    settings: Settings,
    store_dir: Path,
    tmp_path: Path,
) -> None:
    pusher, collector = replicas
    models.create_model(pusher, "m")
    data = random.Random(7).randbytes(chunking.WHOLE_BELOW + 2 * MIB)
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    entry = push_in_flight(pusher, source)
    recipe = file_service.file_recipe(pusher, entry.digest)
    assert not recipe.is_whole
    orphan = pusher.blobs.put_bytes(b"left by a push killed long ago")
    age_all(store_dir, 7200)  # older than the grace period: only the recipe protects them

    report = run_in_thread(lambda: maintenance.gc(collector, grace_seconds=3600))

    assert (report.blobs, report.bytes) == (1, orphan.size)  # the orphan, nothing else
    needed = {c.digest for c in recipe.chunks} | {recipe.recipe_digest}
    assert versions.missing_blobs(pusher, needed) == set()
    assert versions.missing_blobs(pusher, [orphan.digest]) == {orphan.digest}

    version = versions.register_version(pusher, "m", [entry], PushRequest())
    assert [f.digest for f in version.files] == [sha256(data)]
    # Registered: its chunks are a version's now, whatever their age and the grace.
    run_in_thread(lambda: maintenance.gc(collector, grace_seconds=0))
    check_store(settings, {version.number: sha256(data)}, tmp_path)


def test_within_the_grace_period_a_push_keeps_the_old_chunks_it_reuses(
    replicas: tuple[ServiceContext, ServiceContext],
    settings: Settings,
    store_dir: Path,
    tmp_path: Path,
) -> None:
    """Chunks left long ago by an abandoned push, which a new push of the same file finds
    stored already: gc runs before the new push records its recipe. The push is well
    within the grace period, so it must succeed (design.md, gc: "Every blob it puts is
    either new or has its modification time refreshed")."""
    pusher, collector = replicas
    models.create_model(pusher, "m")
    data = random.Random(10).randbytes(chunking.WHOLE_BELOW + 2 * MIB)
    source = tmp_path / "model.bin"
    source.write_bytes(data)
    scan_file(source, chunk_sink(pusher))
    age_all(store_dir, 7200)  # the abandoned push's chunks: old, and no recipe names them

    scan = scan_file(source, chunk_sink(pusher))
    run_in_thread(lambda: maintenance.gc(collector, grace_seconds=3600))
    recipe = file_service.put_recipe(pusher, scan.recipe())
    entry = FileEntry("model.bin", recipe.size, recipe.digest)
    version = versions.register_version(pusher, "m", [entry], PushRequest())
    check_store(settings, {version.number: sha256(data)}, tmp_path)


def test_after_the_grace_period_an_unregistered_push_fails_cleanly(
    replicas: tuple[ServiceContext, ServiceContext],
    settings: Settings,
    store_dir: Path,
    tmp_path: Path,
) -> None:
    """A push slower than the grace period: its recipe and chunks are swept, and its late
    registration is refused instead of registering a version with missing chunks."""
    pusher, collector = replicas
    models.create_model(pusher, "m")
    source = tmp_path / "model.bin"
    source.write_bytes(random.Random(8).randbytes(chunking.WHOLE_BELOW + 2 * MIB))
    entry = push_in_flight(pusher, source)
    chunks = file_service.file_recipe(pusher, entry.digest).chunks
    age_all(store_dir, 7200)
    collector.clock = lambda: utc_now() + timedelta(seconds=3601)  # the recipe is old too

    report = run_in_thread(lambda: maintenance.gc(collector, grace_seconds=3600))

    assert report.blobs == len(chunks) + 1  # the chunks and the recipe blob
    with pytest.raises(BlobNotFound, match=r"model\.bin"):
        versions.register_version(pusher, "m", [entry], PushRequest())
    assert versions.list_versions(pusher, "m") == []
    check_store(settings, {}, tmp_path)


def test_gc_between_a_recipe_blob_and_its_record_never_leaves_a_broken_version(
    replicas: tuple[ServiceContext, ServiceContext],
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file made only of chunks stored already (two fine-tunes merged): its push stores
    nothing but the recipe blob, and gc (grace 0) starts just after that, before the
    recipe is recorded. The recipe blob is stored under the write lock, so that gc waits
    for the push; the push must fail cleanly or register a version with every blob."""
    pusher, collector = replicas
    models.create_model(pusher, "m")
    base = random.Random(9).randbytes(SIZE)

    def changed(*spots: int) -> Path:
        data = bytearray(base)
        for spot in spots:
            data[spot : spot + 8] = b"changed!"
        path = tmp_path / f"changed-{'-'.join(map(str, spots))}" / "model.bin"
        path.parent.mkdir()
        path.write_bytes(data)
        return path

    registered = {}
    for source in (changed(100), changed(SIZE // 2)):
        entry = push_in_flight(pusher, source)
        registered[versions.register_version(pusher, "m", [entry], PushRequest()).number] = (
            entry.digest
        )
    merged = scan_file(changed(100, SIZE // 2)).recipe()
    assert versions.missing_blobs(pusher, {c.digest for c in merged.chunks}) == set()  # all shared

    real_put = pusher.blobs.put_bytes
    swept: list[Any] = []
    started: list[threading.Thread] = []

    def collect() -> None:
        try:
            swept.append(maintenance.gc(collector, grace_seconds=0).blobs)
        except BaseException as exc:  # checked below
            swept.append(exc)

    def put_then_gc(data: bytes) -> Any:
        info = real_put(data)
        if info.digest == merged.recipe_digest:
            started.append(threading.Thread(target=collect))
            started[0].start()
            time.sleep(0.3)  # gc is now waiting for the lock the push holds
        return info

    monkeypatch.setattr(pusher.blobs, "put_bytes", put_then_gc)
    try:
        file_service.put_recipe(pusher, merged)
        entry = FileEntry("model.bin", merged.size, merged.digest)
        registered[versions.register_version(pusher, "m", [entry], PushRequest()).number] = (
            entry.digest
        )
    except BlobNotFound:
        pass  # a clean failure: the SDK would upload again
    monkeypatch.undo()
    started[0].join(60)
    assert len(swept) == 1 and isinstance(swept[0], int), swept  # gc ran, after the push
    check_store(settings, registered, tmp_path)
