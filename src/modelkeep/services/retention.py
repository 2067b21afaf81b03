"""Retention policies: set, show and clear them; ``gc`` applies them before it sweeps.

Setting or clearing a policy needs a global admin (the ``gc`` action: a policy decides
what gc deletes); reading one needs read on the model. Applying the policies purges
the versions they release, in one write transaction with a ``version.purge`` audit
event for each (see domain/retention.py for the rules).
"""

from __future__ import annotations

from datetime import datetime

from modelkeep.domain import access
from modelkeep.domain import retention as rules
from modelkeep.domain.events import EventKind
from modelkeep.domain.names import check_model_name
from modelkeep.domain.retention import RetentionPolicy
from modelkeep.domain.versions import Version
from modelkeep.errors import ModelNotFound
from modelkeep.ports.unit_of_work import Transaction
from modelkeep.services.context import ServiceContext


def get_policy(ctx: ServiceContext, model: str) -> RetentionPolicy | None:
    """The model's policy; None if it has none (every version is kept)."""
    check_model_name(model)
    ctx.authorize(access.READ, model)
    with ctx.store.transaction() as tx:
        _require_model(tx, model)
        return tx.retention.get(model)


def set_policy(
    ctx: ServiceContext, model: str, keep_last: int | None, keep_days: int | None
) -> RetentionPolicy:
    """Replace the model's policy (a global admin)."""
    check_model_name(model)
    ctx.authorize(access.GC, model)
    rules.check_policy(keep_last, keep_days)
    with ctx.store.transaction(write=True) as tx:
        _require_model(tx, model)
        at = ctx.clock()
        policy = RetentionPolicy(model, keep_last, keep_days, at, ctx.actor)
        tx.retention.put(policy)
        details = {"keep_last": keep_last, "keep_days": keep_days}
        ctx.record_event(tx, EventKind.RETENTION_SET, model, details, at)
        tx.commit()
    return policy


def clear_policy(ctx: ServiceContext, model: str) -> RetentionPolicy | None:
    """Remove the model's policy (a global admin): the one removed, None if it had none."""
    check_model_name(model)
    ctx.authorize(access.GC, model)
    with ctx.store.transaction(write=True) as tx:
        _require_model(tx, model)
        old = tx.retention.get(model)
        if old is None:
            return None
        tx.retention.clear(model)
        details = {"keep_last": old.keep_last, "keep_days": old.keep_days}
        ctx.record_event(tx, EventKind.RETENTION_CLEAR, model, details, ctx.clock())
        tx.commit()
    return old


def plan(tx: Transaction, now: datetime) -> list[tuple[RetentionPolicy, Version]]:
    """Every version some model's policy releases at ``now``, with that policy."""
    found = []
    for policy in tx.retention.all():
        versions = tx.versions.page(policy.model)
        events = tx.aliases.events(policy.model)
        found += [(policy, v) for v in rules.to_purge(policy, versions, events, now)]
    return found


def apply(ctx: ServiceContext) -> tuple[str, ...]:
    """Purge what every policy releases now (a global admin): the purged versions' refs.

    Under the write lock, so no alias can move to a version while it is being purged."""
    ctx.authorize(access.GC, None)
    with ctx.store.transaction(write=True) as tx:
        at = ctx.clock()
        released = plan(tx, at)
        for policy, version in released:
            if version.status == "active":
                tx.versions.archive(version.model, version.number, at)
            tx.versions.purge(version.model, version.number, at)
            details = {
                "digest": version.digest,
                "archived": version.status == "active",
                "keep_last": policy.keep_last,
                "keep_days": policy.keep_days,
            }
            ctx.record_event(tx, EventKind.VERSION_PURGE, version.ref, details, at)
        if released:
            tx.commit()
    return tuple(v.ref for _, v in released)


def _require_model(tx: Transaction, model: str) -> None:
    if tx.models.get(model) is None:
        raise ModelNotFound(f"model {model!r} does not exist")
