"""Invariants under random inputs, on the real stores."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import modelkeep
from modelkeep.domain.aliases import replay

# Also on the in-memory store (tests/conftest.py); a test that reaches into SQL says so.
pytestmark = pytest.mark.backends("sqlite", "postgresql", "memory")

SETTINGS = settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
contents = st.dictionaries(
    st.text(alphabet="abcdefghij_-.", min_size=1, max_size=12).filter(
        lambda p: p not in (".", "..")
    ),
    st.binary(max_size=256),
    min_size=1,
    max_size=4,
)


@pytest.mark.transport  # odd names and bytes (empty files too) through real sockets
@SETTINGS
@given(contents)
def test_pull_of_push_returns_the_same_bytes(
    mk: modelkeep.Client, tmp_path: Path, content: dict[str, bytes]
) -> None:
    name = f"m{uuid.uuid4().hex[:10]}"
    src = tmp_path / name / "src"
    src.mkdir(parents=True)
    for path, data in content.items():
        (src / path).write_bytes(data)
    mk.create_model(name)
    pushed = mk.push(name, [src])
    resolved = mk.resolve(f"{name}@{pushed.digest[:20]}")
    assert (resolved.number, resolved.digest) == (pushed.number, pushed.digest)
    mk.pull(f"{name}@{pushed.number}", tmp_path / name / "out")
    out = {p.name: p.read_bytes() for p in (tmp_path / name / "out").iterdir()}
    assert out == content


moves = st.lists(
    st.tuples(st.sampled_from(["set", "rm"]), st.sampled_from(["a", "b", "c"]), st.integers(1, 3)),
    max_size=12,
)


@SETTINGS
@given(moves)
def test_alias_history_replays_to_the_current_state(
    mk: modelkeep.Client, tmp_path: Path, ops: list[tuple[str, str, int]]
) -> None:
    name = f"m{uuid.uuid4().hex[:10]}"
    mk.create_model(name)
    for i in range(3):
        weights = tmp_path / f"{name}-{i}.bin"
        weights.write_bytes(f"{name} {i}".encode())
        mk.push(name, [weights])
    for action, alias, number in ops:
        try:
            if action == "set":
                mk.set_alias(f"{name}@{number}", alias)
            else:
                mk.remove_alias(name, alias)
        except modelkeep.ModelkeepError:
            pass  # removing an absent alias is refused; the history must still add up
    current = {}
    for version in mk.versions(name):
        for alias in version.aliases:
            current[alias] = version.number
    assert replay(mk.alias_history(name)) == current
    assert mk.audit_verify().ok
