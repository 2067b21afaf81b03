"""A push killed with SIGKILL at any moment leaves either no version or a complete one
(DESIGN.md section 4, write ordering): here always none, an intact store and audit chain,
and only leftovers that ``gc`` reclaims."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from modelkeep.config import Settings
from tests.conftest import CliRunnerInProcess
from tests.e2e.support import (
    assert_error_line,
    blob_files,
    ok,
    ok_json,
    ok_json_lines,
    sha256,
)

pytestmark = pytest.mark.slow

SIZE = 300 * 1024 * 1024
CHUNK = 4 * 1024 * 1024
MODELKEEP = Path(sys.executable).with_name("modelkeep")
DEADLINE = 60.0


class BigFile:
    def __init__(self, path: Path, digest: str) -> None:
        self.path = path
        self.digest = digest

    @property
    def manifest_digest(self) -> str:
        entries = [{"digest": self.digest, "path": self.path.name, "size": SIZE}]
        canonical = json.dumps(
            {"format": 1, "files": entries}, sort_keys=True, separators=(",", ":")
        )
        return sha256(canonical.encode())


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> BigFile:
    """~300 MB of random bytes (shared by the SQLite and PostgreSQL runs)."""
    assert SIZE % CHUNK == 0
    path = tmp_path_factory.mktemp("big") / "big.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as out:
        for _ in range(SIZE // CHUNK):
            chunk = os.urandom(CHUNK)
            digest.update(chunk)
            out.write(chunk)
    return BigFile(path, "sha256:" + digest.hexdigest())


class Pushes:
    """Starts ``modelkeep push m big.bin`` processes; kills any left at teardown."""

    def __init__(self, big: BigFile) -> None:
        self.big = big
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self) -> subprocess.Popen[bytes]:
        # the cli fixture has put MODELKEEP_URI and MODELKEEP_DATABASE_URL in os.environ
        proc = subprocess.Popen(
            [str(MODELKEEP), "push", "m", self.big.path.name],
            cwd=self.big.path.parent,
            env=dict(os.environ),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.started.append(proc)
        return proc

    def reap(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.kill()
            proc.communicate()


@pytest.fixture
def pushes(big_file: BigFile) -> Iterator[Pushes]:
    started = Pushes(big_file)
    yield started
    started.reap()


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"push ended (exit {proc.returncode}) before {what}: {err.decode()}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.001)


def kill(proc: subprocess.Popen[bytes], moment: str) -> None:
    assert proc.poll() is None, f"the push finished before it could be killed {moment}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL


def uploads(store: Path) -> set[str]:
    """Temporary files of uploads in progress: a whole blob's or a chunk's."""
    return {p.name for p in (store / "tmp").iterdir() if p.name.startswith(("upload-", "chunk-"))}


def uploaded_bytes(store: Path, old: set[Path]) -> int:
    """Bytes a push stored so far: its chunks (blob files not in ``old``), whole or not."""
    total = 0
    for path in [*(store / "blobs").rglob("*"), *(store / "tmp").iterdir()]:
        if path not in old:
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size if path.is_file() else 0
    return total


def stored_paths(store: Path) -> set[Path]:
    return {p for p in (store / "blobs").rglob("*") if p.is_file()}


@contextmanager
def write_lock(settings: Settings) -> Iterator[None]:
    """Hold the database's writer lock, so a push blocks just before it registers."""
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        assert url.database is not None
        conn = sqlite3.connect(url.database, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = create_engine(settings.database_url)
    try:
        with engine.connect() as pg:
            pg.execute(text("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE"))
            try:
                yield
            finally:
                pg.rollback()
    finally:
        engine.dispose()


def assert_nothing_registered(cli: CliRunnerInProcess, moment: str) -> None:
    assert ok_json(cli, "versions", "m") == [], moment
    assert ok_json(cli, "verify", "--all")["ok"] is True, moment
    chain = ok_json(cli, "audit", "verify")
    assert (chain["ok"], chain["checked"], chain["first_bad_seq"]) == (True, 1, None), moment
    assert [e["action"] for e in ok_json_lines(cli, "audit", "log")] == ["model.create"], moment


def test_a_killed_push_leaves_no_version_and_gc_cleans_up(
    cli: CliRunnerInProcess,
    settings: Settings,
    store: Path,
    big_file: BigFile,
    pushes: Pushes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ok(cli("models", "create", "m"))

    # 1. as soon as the upload's temporary file appears
    proc = pushes.start()
    wait_for(lambda: bool(uploads(store)), proc, "a temporary upload file")
    kill(proc, "when its temporary file appeared")
    assert_nothing_registered(cli, "killed at temp file")

    # 2. at a random point of the upload (by bytes written: timing varies with the disk)
    # (the write lock only guarantees a slow poll never lets it register first)
    seen = stored_paths(store)
    fraction = random.uniform(0.02, 0.9)
    with write_lock(settings):
        proc = pushes.start()
        wait_for(
            lambda: uploaded_bytes(store, seen) >= fraction * SIZE,
            proc,
            f"{fraction:.0%} of the upload",
        )
        kill(proc, f"{fraction:.0%} into the upload")
    assert_nothing_registered(cli, f"killed {fraction:.0%} into the upload")

    # 3. just after the upload (every chunk stored), while recording the file's recipe
    # and registering wait for the database's write lock
    with write_lock(settings):
        proc = pushes.start()
        wait_for(
            lambda: sum(p.stat().st_size for p in stored_paths(store)) >= SIZE,
            proc,
            "every chunk of the upload",
        )
        time.sleep(0.2)
        kill(proc, "while it waited to register")
    assert_nothing_registered(cli, "killed after the upload")
    assert_error_line(cli("show", "m@1"), "version_not_found")

    # gc reclaims what the killed pushes left behind: partial uploads and the orphan blob
    assert uploads(store)  # the temporary file of a chunk being written when killed
    assert sum(p.stat().st_size for p in stored_paths(store)) >= SIZE  # orphan chunks
    monkeypatch.setenv("MODELKEEP_GC_GRACE_SECONDS", "0")
    collected = ok_json(cli, "gc")
    assert collected["temporary_files"] >= 1
    assert collected["blobs"] >= 1
    assert collected["bytes"] >= SIZE
    assert list((store / "tmp").iterdir()) == []
    assert blob_files(store) == set()
    assert ok_json(cli, "audit", "verify")["ok"] is True

    # a normal push afterwards gets the first number
    pushed = subprocess.run(
        [str(MODELKEEP), "--json", "push", "m", big_file.path.name],
        cwd=big_file.path.parent,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert pushed.returncode == 0, pushed.stderr
    version = json.loads(pushed.stdout)
    assert version["number"] == 1
    assert version["files"] == [{"path": "big.bin", "size": SIZE, "digest": big_file.digest}]
    assert version["digest"] == big_file.manifest_digest
    assert [v["number"] for v in ok_json(cli, "versions", "m")] == [1]
    assert ok_json(cli, "verify", "--all")["ok"] is True
    assert ok_json(cli, "audit", "verify")["ok"] is True
    again = ok_json(cli, "gc")
    assert (again["blobs"], again["temporary_files"]) == (0, 0)
    assert ok(cli("pull", "m@1", str(big_file.path.parent / "pulled")))
