"""Concurrent writers: version numbers stay unique and gap-free, the audit chain whole."""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import threading
from pathlib import Path
from typing import Any

import pytest

import modelkeep
from modelkeep.config import Settings
from modelkeep.errors import ModelExists

WRITERS = 8


def _writer(settings: Settings, index: int, folder: str, barrier: Any) -> int:
    """One process: open the store (racing the others through migrations), push once."""
    barrier.wait()
    with modelkeep.connect(settings=settings) as mk:
        with contextlib.suppress(ModelExists):
            mk.create_model("m")
        weights = Path(folder) / f"w{index}.bin"
        weights.write_bytes(f"weights of writer {index}".encode())
        return mk.push("m", [weights], meta={"writer": index}).number


@pytest.mark.slow
@pytest.mark.empty_database  # the writers race through the migrations too
def test_processes_pushing_at_once_get_numbers_1_to_n(settings: Settings, tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Manager().Barrier(WRITERS)
    with context.Pool(WRITERS) as pool:
        results = [
            pool.apply_async(_writer, (settings, i, str(tmp_path), barrier)) for i in range(WRITERS)
        ]
        numbers = [r.get(timeout=120) for r in results]
    assert sorted(numbers) == list(range(1, WRITERS + 1))
    with modelkeep.connect(settings=settings) as mk:
        versions = mk.versions("m")
        assert sorted(v.metadata.meta["writer"] for v in versions) == list(range(WRITERS))
        events = mk.audit_log()
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert mk.audit_verify().ok
        assert mk.verify().ok


@pytest.mark.transport  # concurrent connections to one server
def test_threads_moving_one_alias_lose_no_move(
    mk: modelkeep.Client, settings: Settings, tmp_path: Path
) -> None:
    mk.create_model("m")
    for i in range(4):
        weights = tmp_path / f"w{i}.bin"
        weights.write_bytes(bytes([i]) * 10)
        mk.push("m", [weights])
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def move(number: int) -> None:
        try:
            with modelkeep.connect(settings=settings) as client:
                barrier.wait()
                for _ in range(5):
                    client.set_alias(f"m@{number}", "champion")
                    client.set_alias(f"m@{(number % 4) + 1}", "champion")
        except BaseException as exc:  # collected and re-raised below
            errors.append(exc)

    threads = [threading.Thread(target=move, args=(n,)) for n in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    history = mk.alias_history("m", "champion")
    for earlier, later in itertools.pairwise(history):
        assert later.old == earlier.new  # every move starts where the previous one ended
    assert mk.resolve("m@champion").number == history[-1].new
    assert mk.audit_verify().ok
