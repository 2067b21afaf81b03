"""``lineage``: which datasets and runs went into a model version, or what was made from
a dataset version or a run."""

from __future__ import annotations

import sys
from collections import defaultdict

import click

from modelkeep.domain.lineage import BOTH, DOWNSTREAM, HIDDEN, UPSTREAM, Lineage
from modelkeep.entrypoints.cli.context import console, emit, json_option, state


@click.command()
@click.argument("ref", metavar="REF")
@click.option(
    "--upstream",
    "direction",
    flag_value=UPSTREAM,
    default=True,
    help="What went into REF (the default).",
)
@click.option("--downstream", "direction", flag_value=DOWNSTREAM, help="What was made from REF.")
@click.option("--both", "direction", flag_value=BOTH, help="Upstream and downstream.")
@click.option("--dot", is_flag=True, help="Print a Graphviz digraph (pipe it to 'dot -Tsvg').")
@json_option
def lineage(ref: str, direction: str, dot: bool) -> None:
    """Show the lineage graph around REF: dataset versions -> runs -> model versions.

    REF is a model version NAME@REF, a dataset version dataset:NAME@REF or a run
    run:ID. An edge points from an input to what was made from it: a run read a dataset
    version ('runs log --dataset'), a model version was pushed from a run ('push
    --run'). Output: an indented tree (<- made from, -> used by), the graph as JSON
    (--json), or Graphviz (--dot).
    """
    current = state()
    if dot and current.json:
        raise click.UsageError("give --json or --dot, not both")
    found = current.client.lineage(ref, direction=direction)
    if dot:
        current.emitted = True
        sys.stdout.write(found.to_dot())
        return
    emit(found.to_dict(), lambda: _print_tree(found))


def _print_tree(found: Lineage) -> None:
    inputs: dict[str, list[str]] = defaultdict(list)
    outputs: dict[str, list[str]] = defaultdict(list)
    for a, b in found.edges:
        inputs[b].append(a)
        outputs[a].append(b)
    console.print(found.root)
    if found.direction in (UPSTREAM, BOTH):
        _branch(found.root, inputs, "<-", 1, {found.root})
    if found.direction in (DOWNSTREAM, BOTH):
        _branch(found.root, outputs, "->", 1, {found.root})
    if not found.edges:
        where = "upstream or downstream" if found.direction == BOTH else found.direction
        console.print(f"  (nothing {where})")


def _branch(
    node: str, neighbours: dict[str, list[str]], arrow: str, depth: int, shown: set[str]
) -> None:
    """Each neighbour on its own line, deeper by depth; a node shown already is not
    expanded again (so shared inputs and cycles print once)."""
    for other in sorted(neighbours.get(node, ())):
        seen = other in shown
        label = "(hidden)" if other.startswith(f"{HIDDEN}:") else other  # not theirs to read
        console.print(f"{'  ' * depth}{arrow} {label}{' (shown above)' if seen else ''}")
        if not seen:
            shown.add(other)
            _branch(other, neighbours, arrow, depth + 1, shown)
