"""The lineage graph: dataset versions -> runs -> model versions -> serving bundles.
Nodes are named ``dataset:NAME@N``, ``run:ID``, ``model:NAME@N`` and
``bundle:sha256:<hex>``; an edge points from an input to what was made from it. A node
its reader may not read is shown as ``hidden:N``."""

from __future__ import annotations

import hashlib
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

UPSTREAM, DOWNSTREAM, BOTH = "upstream", "downstream", "both"
HIDDEN = "hidden"
BUNDLE = "bundle"


@dataclass(frozen=True)
class Lineage:
    root: str
    direction: str
    nodes: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]

    def hiding(self, hidden: set[str]) -> Lineage:
        """The same graph with each node of ``hidden`` renamed ``hidden:1``, ``hidden:2``…
        (in no order that tells which node it was)."""
        if not hidden:
            return self
        names = {n: f"{HIDDEN}:{i}" for i, n in enumerate(sorted(hidden, key=_opaque), 1)}

        def shown(node: str) -> str:
            return names.get(node, node)

        nodes = tuple(sorted(shown(n) for n in self.nodes))
        edges = tuple(sorted({(shown(a), shown(b)) for a, b in self.edges}))
        return Lineage(shown(self.root), self.direction, nodes, edges)

    def with_leaves(self, leaves: dict[str, list[str]]) -> Lineage:
        """The graph with an edge from each node of ``leaves`` to each of its leaves (a
        model version's bundles, ``bundle:sha256:<hex>``: made from it, feeding nothing)."""
        added = {(node, leaf) for node, found in leaves.items() for leaf in found}
        if not added:
            return self
        nodes = tuple(sorted(set(self.nodes) | {leaf for _, leaf in added}))
        return Lineage(self.root, self.direction, nodes, tuple(sorted({*self.edges, *added})))

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "direction": self.direction,
            "nodes": [_node_dict(n) for n in self.nodes],
            "edges": [{"from": a, "to": b} for a, b in self.edges],
        }

    def to_dot(self) -> str:
        """Graphviz: datasets as cylinders, runs as boxes, model versions as ellipses."""
        shapes = {
            "dataset": "cylinder",
            "run": "box",
            "model": "ellipse",
            BUNDLE: "note",
            HIDDEN: "point",
        }
        lines = ["digraph lineage {", "  rankdir=LR;"]
        for node in self.nodes:
            kind = node.partition(":")[0]
            style = ", style=bold" if node == self.root else ""
            label = ', label="(hidden)"' if kind == HIDDEN else ""
            lines.append(f'  "{node}" [shape={shapes.get(kind, "ellipse")}{label}{style}];')
        lines += [f'  "{a}" -> "{b}";' for a, b in self.edges]
        lines.append("}")
        return "\n".join(lines) + "\n"


def _node_dict(node: str) -> dict[str, Any]:
    kind = node.partition(":")[0]
    if kind == HIDDEN:
        return {"id": node, "kind": HIDDEN, "hidden": True}
    return {"id": node, "kind": kind}


def _opaque(node: str) -> str:
    """A sort key that does not follow the names (a hash), so numbers reveal nothing."""
    return hashlib.sha256(node.encode()).hexdigest()


def walk(edges: Iterable[tuple[str, str]], root: str, direction: str) -> Lineage:
    """Everything reachable from ``root`` against the edges (upstream: what went into
    it), along them (downstream: what was made from it), or both."""
    forward: dict[str, set[str]] = defaultdict(set)
    backward: dict[str, set[str]] = defaultdict(set)
    for a, b in edges:
        forward[a].add(b)
        backward[b].add(a)
    seen = {root}
    kept: set[tuple[str, str]] = set()
    if direction in (UPSTREAM, BOTH):
        _visit(root, backward, seen, kept, reverse=True)
    if direction in (DOWNSTREAM, BOTH):
        _visit(root, forward, seen, kept, reverse=False)
    return Lineage(root, direction, tuple(sorted(seen)), tuple(sorted(kept)))


def _visit(
    root: str,
    neighbours: dict[str, set[str]],
    seen: set[str],
    kept: set[tuple[str, str]],
    *,
    reverse: bool,
) -> None:
    queue = deque([root])
    visited = {root}
    while queue:
        node = queue.popleft()
        for other in sorted(neighbours.get(node, ())):
            kept.add((other, node) if reverse else (node, other))
            if other not in visited:
                visited.add(other)
                seen.add(other)
                queue.append(other)
