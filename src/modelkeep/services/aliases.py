"""Aliases and stages: move, remove, promote, roll back, and the history of every move.

A free alias is moved by the usual roles unless the policy names who may; a stage moves
only by promotion (policy-gated, services/governance.py) or rollback. Every move is an
alias event and an audit event in one transaction."""

from __future__ import annotations

from typing import Any

from modelkeep.domain import access
from modelkeep.domain import aliases as alias_rules
from modelkeep.domain.events import EventKind
from modelkeep.domain.names import Ref, check_alias_name, check_model_name, check_stage, parse_ref
from modelkeep.domain.text import check_text
from modelkeep.domain.versions import Version
from modelkeep.errors import AliasMoved, Forbidden, ProtectedAlias, VersionArchived
from modelkeep.ports.registry import VersionKey
from modelkeep.ports.unit_of_work import Transaction
from modelkeep.services import integrity, lookup, policies
from modelkeep.services.context import ServiceContext


def set_alias(
    ctx: ServiceContext,
    ref: str,
    alias: str,
    reason: str | None = None,
    expect: int | None = None,
) -> alias_rules.AliasEvent:
    """Point ``alias`` at ``ref``. With ``expect`` (the version it must point at now;
    0: unset) the move is a compare-and-set: a stale one is refused, never lost."""
    check_alias_name(alias)
    if alias_rules.is_stage(alias):
        raise ProtectedAlias(f"{alias!r} is a stage, not a free alias")
    parsed = parse_ref(ref)
    _authorize_alias(ctx, parsed.model, alias)
    return _move(ctx, parsed, alias, reason, expect)


def remove_alias(
    ctx: ServiceContext, model: str, alias: str, reason: str | None = None
) -> alias_rules.AliasEvent:
    check_model_name(model)
    check_alias_name(alias)
    if alias_rules.is_stage(alias):
        raise ProtectedAlias(f"{alias!r} is a stage; it cannot be removed")
    _authorize_alias(ctx, model, alias)
    with ctx.store.transaction(write=True) as tx:
        lookup.model(tx, model)
        current = tx.aliases.key(model, alias)
        if current is None:
            raise lookup.no_alias(tx, model, alias)
        event = record_move(ctx, tx, model, alias, "rm", None, current, reason)
        tx.commit()
    return event


def rollback(
    ctx: ServiceContext, model: str, stage: str, reason: str | None = None
) -> alias_rules.AliasEvent:
    check_model_name(model)
    ctx.authorize(access.ROLLBACK, model)
    check_stage(stage)
    with ctx.store.transaction(write=True) as tx:
        lookup.model(tx, model)
        history = tx.aliases.events(model, stage)
        current = tx.aliases.key(model, stage)
        # rollback follows the history: it must be the moves the chain recorded
        integrity.check_stage_history(tx, model, stage, history, current)
        _, previous = alias_rules.rollback_target(stage, history)
        target = lookup.version(tx, model, previous)
        integrity.check_version(tx, target)
        if target.status == "archived":
            raise VersionArchived(f"{stage} would roll back to {target.ref}, which is archived")
        event = record_move(ctx, tx, model, stage, "rollback", target, current, reason)
        tx.commit()
    return event


def alias_history(
    ctx: ServiceContext, model: str, alias: str | None = None
) -> list[alias_rules.AliasEvent]:
    check_model_name(model)
    if alias is not None:
        check_alias_name(alias)
    ctx.authorize(access.READ, model)
    with ctx.store.transaction() as tx:
        lookup.model(tx, model)
        return tx.aliases.events(model, alias)


def record_move(
    ctx: ServiceContext,
    tx: Transaction,
    model: str,
    alias: str,
    action: alias_rules.AliasAction,
    target: Version | None,
    current: VersionKey | None,
    reason: str | None,
    extra: dict[str, Any] | None = None,
) -> alias_rules.AliasEvent:
    """Move the alias and audit it, in ``tx``; ``extra`` adds to the event's details.

    The alias must be where the chain's last move left it: a move recorded on top of a
    row edited in the database would make the edit look legitimate."""
    check_text("the reason", reason)
    integrity.check_alias(tx, model, alias, current)
    at = ctx.clock()
    number = target.number if target else None
    event = tx.aliases.move(model, alias, action, number, ctx.actor, at, reason)
    details = {
        "alias": alias,
        "old": current.number if current else None,
        "old_digest": current.digest if current else None,
        "new": number,
        "new_digest": target.digest if target else None,
        "reason": reason,
        **(extra or {}),
    }
    ctx.record_event(tx, EventKind.alias_move(action), f"{model}@{alias}", details, at)
    return event


def check_expected(model: str, alias: str, current: VersionKey | None, expect: int | None) -> None:
    """Compare-and-set: refuse a move made against a state that has changed since."""
    now = current.number if current else 0
    if expect is not None and now != expect:
        where = f"{model}@{now}" if now else "nothing"
        raise AliasMoved(
            f"{alias} of {model} points at {where} now, not at "
            f"{f'{model}@{expect}' if expect else 'nothing'} as expected"
        )


def _authorize_alias(ctx: ServiceContext, model: str, alias: str) -> None:
    """The usual roles move a free alias, unless the policy names who may move it."""
    with ctx.store.transaction() as tx:
        roles = policies.model_policy(tx, model).alias_roles(alias)
    if roles is None:
        ctx.authorize(access.SET_ALIAS, model)
        return
    action = access.Action(
        name=f"set-alias {alias}",
        description=f"move the alias {alias} (the policy names who may)",
        per_model=True,
        roles=tuple(dict.fromkeys((*roles, access.ADMIN))),
    )
    decision = access.decide(ctx.principal, action, model)
    if not decision.allowed:
        raise Forbidden(f"{decision.reason} (policy)")


def _move(
    ctx: ServiceContext,
    ref: Ref,
    alias: str,
    reason: str | None,
    expect: int | None = None,
) -> alias_rules.AliasEvent:
    with ctx.store.transaction(write=True) as tx:
        target = lookup.version_of(tx, ref)
        if target.status == "archived":
            raise VersionArchived(
                f"{target.ref} is archived",
                f"'modelkeep unarchive {target.ref}' makes it usable again, "
                "or name another version",
            )
        current = tx.aliases.key(ref.model, alias)
        check_expected(ref.model, alias, current, expect)
        if current is not None and current.number == target.number:
            return tx.aliases.events(ref.model, alias)[-1]  # already there: nothing to do
        event = record_move(ctx, tx, ref.model, alias, "set", target, current, reason)
        tx.commit()
    return event
