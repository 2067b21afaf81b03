"""``lineage NAME@REF``: what went into a model version (upstream) or what was made from a
dataset version or run (downstream).

The actor sees only the nodes it may read (``scopes``); any other node is shown hidden
(``hidden:N``), never named, so a graph tells no secrets about other teams' work."""

from __future__ import annotations

from modelkeep.domain import access
from modelkeep.domain.lineage import BUNDLE, UPSTREAM, Lineage, walk
from modelkeep.domain.names import parse_ref
from modelkeep.domain.runs import check_run_id
from modelkeep.errors import InvalidInput, ModelNotFound, RunNotFound
from modelkeep.ports.unit_of_work import Transaction
from modelkeep.services import bundles, datasets, scopes, versions
from modelkeep.services.context import ServiceContext


def lineage(ctx: ServiceContext, ref: str, direction: str = UPSTREAM) -> Lineage:
    """``ref`` is ``NAME@REF`` (a model version, or with ``dataset:`` a dataset version)
    or ``run:ID``."""
    if direction not in ("upstream", "downstream", "both"):
        raise InvalidInput(f"{direction!r} is not a direction", "upstream, downstream or both")
    ctx.authorize(access.READ, access.ANY_MODEL)
    root = _node(ctx, ref)
    with ctx.store.transaction() as tx:
        edges = tx.datasets.lineage_edges()
        found = walk(edges, root, direction)
        reach = scopes.Reach(ctx, tx)
        if not reach.everything:
            found = found.hiding({n for n in found.nodes if not reach.node(n)})
        return found.with_leaves(_bundles(tx, found))


def _bundles(tx: Transaction, graph: Lineage) -> dict[str, list[str]]:
    """The serving bundles recorded on each (readable) model version of the graph."""
    models = [n for n in graph.nodes if n.startswith("model:")]
    return {
        node: [f"{BUNDLE}:{d}" for d in bundles.bundle_digests(tx, node.removeprefix("model:"))]
        for node in models
    }


def _node(ctx: ServiceContext, ref: str) -> str:
    kind, sep, rest = ref.partition(":")
    if sep and kind == "run":
        run_id = check_run_id(rest)
        with ctx.store.transaction() as tx:
            if tx.tracking.run_state(run_id) is None:
                raise RunNotFound(f"there is no run {run_id}")
            scopes.check_run_readable(ctx, tx, run_id)
        return f"run:{run_id}"
    if sep and kind == "dataset":
        parsed = parse_ref(rest, default_latest=True)
        ctx.authorize(access.READ, access.dataset_scope(parsed.model))
        with ctx.store.transaction() as tx:
            found = datasets.version_row(tx, parsed)
        return f"dataset:{parsed.model}@{found.number}"
    name = rest if sep and kind == "model" else ref
    try:
        version = versions.get_version(ctx, name)
    except ModelNotFound as missing:
        parsed = parse_ref(name, default_latest=True)
        with ctx.store.transaction() as tx:
            is_dataset = tx.datasets.id_of(parsed.model) is not None
        if is_dataset:  # the same NAME@REF a dataset has: say how to name it
            raise ModelNotFound(
                f"{missing.message}, but a dataset {parsed.model!r} does",
                f"write dataset:{name} for the dataset's lineage",
            ) from None
        raise
    return f"model:{version.model}@{version.number}"
