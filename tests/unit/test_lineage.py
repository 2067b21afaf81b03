"""The lineage walk on generated graphs of a few hundred nodes, against a reference."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from modelkeep.domain.lineage import BOTH, DOWNSTREAM, UPSTREAM, walk

Edge = tuple[str, str]


def graph(
    seed: int, datasets: int = 60, runs: int = 150, models: int = 120
) -> list[tuple[str, str]]:
    """Datasets feed runs, runs make model versions, some versions name datasets too."""
    rng = random.Random(seed)
    edges = set()
    for r in range(runs):
        for d in rng.sample(range(datasets), rng.randint(0, 3)):
            edges.add((f"dataset:d{d}@1", f"run:{r:012x}"))
    for m in range(models):
        edges.add((f"run:{rng.randrange(runs):012x}", f"model:m@{m + 1}"))
        if rng.random() < 0.2:
            edges.add((f"dataset:d{rng.randrange(datasets)}@1", f"model:m@{m + 1}"))
    return sorted(edges)


def reachable(edges: list[tuple[str, str]], root: str, forward: bool) -> set[str]:
    """Plain fixed point: the reference the walk must agree with."""
    found = {root}
    changed = True
    while changed:
        changed = False
        for a, b in edges:
            src, dst = (a, b) if forward else (b, a)
            if src in found and dst not in found:
                found.add(dst)
                changed = True
    return found


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.sampled_from([UPSTREAM, DOWNSTREAM, BOTH]))
def test_the_walk_finds_exactly_what_is_reachable(seed: int, direction: str) -> None:
    edges = graph(seed)
    nodes = sorted({n for e in edges for n in e})
    root = random.Random(seed).choice(nodes)
    found = walk(edges, root, direction)
    expected = {root}
    if direction in (UPSTREAM, BOTH):
        expected |= reachable(edges, root, forward=False)
    if direction in (DOWNSTREAM, BOTH):
        expected |= reachable(edges, root, forward=True)
    assert set(found.nodes) == expected
    assert set(found.edges) <= set(edges)
    assert all(a in expected and b in expected for a, b in found.edges)


def test_upstream_of_a_model_version_is_its_run_and_that_runs_data() -> None:
    edges = [
        ("dataset:tx@1", "run:aaaaaaaaaaaa"),
        ("dataset:tx@2", "run:bbbbbbbbbbbb"),
        ("run:aaaaaaaaaaaa", "model:fraud@1"),
        ("run:bbbbbbbbbbbb", "model:fraud@2"),
    ]
    up = walk(edges, "model:fraud@1", UPSTREAM)
    assert up.nodes == ("dataset:tx@1", "model:fraud@1", "run:aaaaaaaaaaaa")
    assert up.edges == (("dataset:tx@1", "run:aaaaaaaaaaaa"), ("run:aaaaaaaaaaaa", "model:fraud@1"))
    down = walk(edges, "dataset:tx@2", DOWNSTREAM)
    assert "model:fraud@2" in down.nodes and "model:fraud@1" not in down.nodes
    dot = down.to_dot()
    assert '"dataset:tx@2" [shape=cylinder, style=bold];' in dot
    assert '"run:bbbbbbbbbbbb" -> "model:fraud@2";' in dot


def test_bundles_hang_from_the_shown_model_versions_only() -> None:
    edges = [("run:r1", "model:m@1"), ("run:r1", "model:secret@1")]
    shown = walk(edges, "run:r1", DOWNSTREAM).hiding({"model:secret@1"})
    leaves = {n: [f"bundle:sha256:{n[-1]}"] for n in shown.nodes if n.startswith("model:")}
    found = shown.with_leaves(leaves)
    assert found.nodes == ("bundle:sha256:1", "hidden:1", "model:m@1", "run:r1")
    assert ("model:m@1", "bundle:sha256:1") in found.edges
    assert shown.with_leaves({}) is shown
    assert {"id": "bundle:sha256:1", "kind": "bundle"} in found.to_dict()["nodes"]
    assert '"bundle:sha256:1" [shape=note]' in found.to_dot()
