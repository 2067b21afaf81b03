"""What a principal may read and use, by the scope each thing belongs to.

- a model version belongs to its model;
- a run belongs to its experiment (``experiment:E``); readers of a model may also read
  the runs its versions were pushed from;
- a dataset version belongs to its dataset (``dataset:D``);
- a blob or file is readable only through something readable that holds it (a version's
  file or manifest, a run's file, diff or package lock, a dataset's file or manifest, a
  check report); a chunked file when every chunk of it is.

A push may name only digests its pusher may read or has uploaded (sent the bytes of,
hashed on arrival: proof of possession). Global readers read and use everything.
"""

from __future__ import annotations

from collections.abc import Iterable

from modelkeep.domain import access
from modelkeep.domain.access import dataset_scope, experiment_scope
from modelkeep.errors import BlobNotReadable, Forbidden
from modelkeep.ports.unit_of_work import Transaction
from modelkeep.services.context import ServiceContext


class Reach:
    """What ``ctx``'s principal may read, looked up lazily in ``tx``."""

    def __init__(self, ctx: ServiceContext, tx: Transaction) -> None:
        self._ctx = ctx
        self._tx = tx
        self.everything = ctx.can(access.READ, None)
        self._run_models: dict[str, set[str]] | None = None
        self._runs: dict[str, bool] = {}

    def model(self, name: str) -> bool:
        return self._ctx.can(access.READ, name)

    def dataset(self, name: str) -> bool:
        return self._ctx.can(access.READ, dataset_scope(name))

    def experiment(self, name: str) -> bool:
        return self._ctx.can(access.READ, experiment_scope(name))

    def run(self, run_id: str, experiment: str | None = None) -> bool:
        """Readers of the run's experiment, and of any model a version was pushed from
        it to, may read it."""
        if self.everything:
            return True
        if run_id not in self._runs:
            if experiment is None:
                experiment = self._tx.tracking.experiment_of(run_id)
            self._runs[run_id] = (experiment is not None and self.experiment(experiment)) or any(
                self.model(m) for m in self.models_of_run(run_id)
            )
        return self._runs[run_id]

    def models_of_run(self, run_id: str) -> set[str]:
        """The models a version was pushed to from run ``run_id``."""
        if self._run_models is None:
            self._run_models = {}
            for source, target in self._tx.datasets.lineage_edges():
                if source.startswith("run:") and target.startswith("model:"):
                    model = target.removeprefix("model:").rpartition("@")[0]
                    self._run_models.setdefault(source.removeprefix("run:"), set()).add(model)
        return self._run_models.get(run_id, set())

    def node(self, node: str) -> bool:
        """A lineage node or a blob's user: ``model:NAME@N`` (or ``NAME@N``),
        ``dataset:NAME@N``, ``run:ID``, ``policy:N``."""
        if self.everything:
            return True
        kind, sep, rest = node.partition(":")
        if not sep:
            return self.model(node.rpartition("@")[0])
        name = rest.rpartition("@")[0]
        if kind == "model":
            return self.model(name)
        if kind == "dataset":
            return self.dataset(name)
        if kind == "run":
            return self.run(rest)
        # a policy document is the whole registry's: whoever may read something reads it
        return kind == "policy" and self._ctx.can(access.READ, access.ANY_MODEL)

    def _held_readable(self, held: dict[str, set[str]]) -> set[str]:
        return {d for d, names in held.items() if any(self.node(n) for n in names)}

    def digests(self, digests: Iterable[str]) -> set[str]:
        """Those of ``digests`` (blobs, or files stored whole or chunked) the principal
        may read: held by something it may read; a chunked file also when every chunk
        of it is (whoever may read the chunks may read the file they make)."""
        wanted = set(digests)
        if self.everything or not wanted:
            return wanted
        readable = self._held_readable(self._tx.recipes.holders(wanted))
        rest = wanted - readable
        if rest:  # a run's diff or package lock (a scan of the runs: only when needed)
            kept = self._tx.tracking.runs_keeping(rest)
            readable |= {d for d, ids in kept.items() if any(self.run(r) for r in ids)}
            rest -= readable
        recipes = [r for r in map(self._tx.recipes.get, self._tx.recipes.digests(rest)) if r]
        if recipes:
            chunks = self.digests({c.digest for r in recipes for c in r.chunks})
            readable |= {r.digest for r in recipes if all(c.digest in chunks for c in r.chunks)}
        return readable


def usable(ctx: ServiceContext, tx: Transaction, digests: Iterable[str]) -> set[str]:
    """Those of ``digests`` a push by the principal may name: readable, or uploaded by it."""
    wanted = set(digests)
    reach = Reach(ctx, tx)
    if reach.everything or not wanted:
        return wanted
    owned = tx.recipes.uploaded_by(ctx.actor, wanted)
    return owned | reach.digests(wanted - owned)


def check_usable(ctx: ServiceContext, tx: Transaction, digests: Iterable[str]) -> None:
    """Refuse a push naming a digest its pusher neither uploaded nor may read."""
    wanted = set(digests)
    refused = sorted(wanted - usable(ctx, tx, wanted))
    if refused:
        raise BlobNotReadable(
            f"{ctx.actor} may not use {refused[0]}: they did not upload its bytes and may "
            "read no version, run or dataset that holds it",
            "upload the file's bytes in this push (modelkeep's client does so by itself)",
        )


def check_readable(ctx: ServiceContext, tx: Transaction, digest: str) -> None:
    """Refuse to read a blob or file held by nothing the actor may read."""
    if digest not in Reach(ctx, tx).digests([digest]):
        raise Forbidden(
            f"{ctx.actor} may not read {digest}: no version, run or dataset they may read holds it",
            "read it through a version, run or dataset you may read, or ask an admin for a role",
        )


def record_uploads(ctx: ServiceContext, digests: Iterable[str]) -> None:
    """Remember that the principal sent these bytes (not needed for global readers)."""
    wanted = list(digests)
    if not wanted or ctx.can(access.READ, None):
        return
    with ctx.store.transaction(write=True, ordered=False) as tx:
        tx.recipes.add_uploads(ctx.actor, wanted, ctx.clock())
        tx.commit()


def check_run_readable(
    ctx: ServiceContext, tx: Transaction, run_id: str, experiment: str | None = None
) -> None:
    if not Reach(ctx, tx).run(run_id, experiment):
        raise Forbidden(
            f"{ctx.actor} may not read run {run_id}",
            "ask an admin for a role on its experiment ('modelkeep users grant --experiment')",
        )
