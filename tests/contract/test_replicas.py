"""Two ``modelkeep server`` replicas on one PostgreSQL and one blob store act as one
registry: unique version numbers, compare-and-set alias moves, one gap-free audit chain."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import modelkeep
from modelkeep.config import Settings
from modelkeep.errors import AliasMoved
from tests.conftest import drop_pg_schema, live_server, make_pg_schema_url

PUSHES_PER_REPLICA = 6
MOVERS = 4


@pytest.fixture
def pg_settings(tmp_path: Path, pg_database: str) -> Iterator[Settings]:
    url, schema = make_pg_schema_url(pg_database)
    yield Settings(uri=str(tmp_path / "store"), database_url=url)
    drop_pg_schema(pg_database, schema)


@pytest.mark.slow
def test_two_replicas_behave_as_one_registry(pg_settings: Settings, tmp_path: Path) -> None:
    with (
        live_server(pg_settings, "admin") as (url_a, token_a),
        live_server(pg_settings, "releaser") as (url_b, _token_b),
    ):
        clients = [
            modelkeep.connect(url_a, token=token_a),
            modelkeep.connect(url_b, token=token_a),
        ]  # one user, either replica
        clients[0].create_model("m")
        numbers = _push_through_both(clients, tmp_path)
        assert sorted(numbers) == list(range(1, 2 * PUSHES_PER_REPLICA + 1))

        outcomes = _race_alias_moves(clients)
        history = clients[1].alias_history("m", "champion")
        assert len(history) == outcomes["moved"]  # no successful move lost
        for earlier, later in itertools.pairwise(history):
            assert later.old == earlier.new  # every move started from the state it saw
        assert outcomes["refused"] > 0  # the race really happened

        events = clients[0].audit_log()
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        assert clients[1].audit_verify().ok
        assert clients[0].verify().ok
        for client in clients:
            client.close()


def _push_through_both(clients: list[modelkeep.Client], tmp_path: Path) -> list[int]:
    numbers: list[int] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(clients))

    def push(index: int, client: modelkeep.Client) -> None:
        try:
            barrier.wait()
            for i in range(PUSHES_PER_REPLICA):
                weights = tmp_path / f"w-{index}-{i}.bin"
                weights.write_bytes(f"replica {index} push {i}".encode())
                numbers.append(client.push("m", [weights]).number)
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    _run([threading.Thread(target=push, args=(i, c)) for i, c in enumerate(clients)])
    assert errors == []
    return numbers


def _race_alias_moves(clients: list[modelkeep.Client]) -> dict[str, int]:
    """Movers read the alias, then move it with compare-and-set, through both replicas."""
    outcomes = {"moved": 0, "refused": 0}
    lock = threading.Lock()
    barrier = threading.Barrier(MOVERS)
    errors: list[BaseException] = []

    def mover(index: int) -> None:
        client = clients[index % len(clients)]
        try:
            barrier.wait()
            for step in range(5):
                history = client.alias_history("m", "champion")
                seen = history[-1].new if history else 0
                target = (index * 5 + step) % (2 * PUSHES_PER_REPLICA) + 1
                if target == seen:
                    continue
                try:
                    client.set_alias(f"m@{target}", "champion", expect=seen or 0)
                    key = "moved"
                except AliasMoved:
                    key = "refused"
                with lock:
                    outcomes[key] += 1
        except BaseException as exc:  # re-raised below
            errors.append(exc)

    _run([threading.Thread(target=mover, args=(i,)) for i in range(MOVERS)])
    assert errors == []
    return outcomes


def _run(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
