"""Deployments: change a model's desired state in an environment (deploy, promote, roll
back), read it, its history, and the feed gateways follow.

Every change is a compare-and-set on the state's revision (write transactions are ordered
by the audit head's lock, so the revision read inside one cannot move before it commits),
checked against the policy's environment rules and audited in the same transaction."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelkeep.domain import access
from modelkeep.domain import attestation as attest_format
from modelkeep.domain import deployments as rules
from modelkeep.domain.deployments import Backend, DeploymentChange, DesiredState, check_env
from modelkeep.domain.events import EventKind
from modelkeep.domain.names import check_model_name, parse_ref
from modelkeep.domain.text import check_text
from modelkeep.domain.versions import Version
from modelkeep.errors import (
    DeploymentMoved,
    DeploymentNotFound,
    InvalidInput,
    NothingToRollBack,
    PolicyNotMet,
    StoreUnavailable,
    VersionArchived,
    VersionPurged,
)
from modelkeep.ports.unit_of_work import Transaction
from modelkeep.services import lookup, policies
from modelkeep.services.context import ServiceContext


def deploy(
    ctx: ServiceContext,
    ref: str,
    env: str,
    *,
    canary: int | None = None,
    ab: int | None = None,
    sticky: str | None = None,
    shadow: int | None = None,
    expect_revision: int | None = None,
    reason: str | None = None,
) -> DeploymentChange:
    """Deploy ``ref`` to ``env``: as the stable version (no percent given), or as a
    candidate beside the stable one (``canary``, ``ab`` with ``sticky``, ``shadow``)."""
    parsed = parse_ref(ref)
    check_env(env)
    check_text("the reason", reason)
    mode, weight = _mode(canary, ab, shadow, sticky)
    ctx.authorize(access.DEPLOY, parsed.model)
    with ctx.store.transaction(write=True) as tx:
        version = _deployable(lookup.version_of(tx, parsed))
        current = tx.deployments.get(parsed.model, env)
        _check_expected(parsed.model, env, current, expect_revision)
        role: rules.Role = (
            "stable" if mode == "stable" else "shadow" if mode == "shadow" else "canary"
        )
        _check_stage(tx, version, env, role)
        target = Backend(version.ref, version.digest, role, weight)
        state = rules.next_state(current, parsed.model, env, target, mode, sticky)
        change = _record(ctx, tx, "deploy", current, state, reason)
        tx.commit()
    return change


def _check_change(ctx: ServiceContext, model: str, env: str, reason: str | None) -> None:
    """What every change of a model's deployment checks before reading anything."""
    check_model_name(model)
    check_env(env)
    check_text("the reason", reason)
    ctx.authorize(access.DEPLOY, model)


def promote(
    ctx: ServiceContext,
    model: str,
    env: str,
    *,
    expect_revision: int | None = None,
    reason: str | None = None,
) -> DeploymentChange:
    """The candidate (the canary, else the shadow) becomes the only, stable, version."""
    _check_change(ctx, model, env, reason)
    with ctx.store.transaction(write=True) as tx:
        lookup.model(tx, model)
        current = _current(tx, model, env)
        _check_expected(model, env, current, expect_revision)
        state = rules.promoted(current, model, env)
        stable = state.backends[0]
        version = _deployable(lookup.version_of(tx, parse_ref(stable.ref)))
        _check_stage(tx, version, env, "stable")
        change = _record(ctx, tx, "promote", current, state, reason)
        tx.commit()
    return change


def rollback(
    ctx: ServiceContext,
    model: str,
    env: str,
    *,
    expect_revision: int | None = None,
    reason: str | None = None,
) -> DeploymentChange:
    """Back to the state before the newest change not yet rolled back (again: one more
    change back). The stage rules are not asked again: each state was allowed when made."""
    _check_change(ctx, model, env, reason)
    with ctx.store.transaction(write=True) as tx:
        lookup.model(tx, model)
        current = _current(tx, model, env)
        _check_expected(model, env, current, expect_revision)
        target = rules.rollback_target(tx.deployments.history(model, env))
        if target is None:
            raise NothingToRollBack(
                f"{model} in {env} has no earlier desired state to go back to",
                f"deploy a version explicitly: modelkeep deploy {model}@REF --env {env}",
            )
        for backend in target.backends:
            version = lookup.version_of(tx, parse_ref(backend.ref))
            if version.purged_at is not None:
                raise VersionPurged(
                    f"{model} in {env} would roll back to {version.ref}, which is purged"
                )
        state = rules.with_revision(target, current.revision + 1)
        change = _record(ctx, tx, "rollback", current, state, reason)
        tx.commit()
    return change


def status(ctx: ServiceContext, model: str, env: str) -> DesiredState:
    check_model_name(model)
    check_env(env)
    ctx.authorize(access.READ, model)
    with ctx.store.transaction() as tx:
        lookup.model(tx, model)
        return _current(tx, model, env)


def history(ctx: ServiceContext, model: str, env: str) -> list[DeploymentChange]:
    check_model_name(model)
    check_env(env)
    ctx.authorize(access.READ, model)
    with ctx.store.transaction() as tx:
        lookup.model(tx, model)
        return tx.deployments.history(model, env)


def feed(ctx: ServiceContext, env: str) -> list[DesiredState]:
    """Every desired state of ``env`` the caller may read, by model name: what a gateway
    serves. Needs no grant of its own: a state the caller may not read is left out."""
    check_env(env)
    with ctx.store.transaction() as tx:
        states = tx.deployments.in_env(env)
    return [s for s in states if ctx.can(access.READ, s.model)]


def marker(ctx: ServiceContext, env: str) -> int:
    """A number that grows with every change in ``env``: cheap to ask every few hundred
    milliseconds (a long-poll's question "has anything changed?")."""
    check_env(env)
    with ctx.store.transaction() as tx:
        return tx.deployments.marker(env)


# --- the rules of one change -------------------------------------------------------------


def _mode(
    canary: int | None, ab: int | None, shadow: int | None, sticky: str | None
) -> tuple[rules.Mode, int]:
    given = {k: v for k, v in (("canary", canary), ("ab", ab), ("shadow", shadow)) if v is not None}
    if len(given) > 1:
        raise InvalidInput(
            f"--{' and --'.join(given)} cannot be given together",
            "deploy one candidate at a time: --canary PCT, --ab PCT --sticky KEY or --shadow PCT",
        )
    if sticky is not None:
        rules.check_sticky(sticky)
        if "ab" not in given:
            raise InvalidInput(
                "--sticky is for A/B tests only", "use --ab PCT --sticky KEY, or drop --sticky"
            )
    if not given:
        return "stable", 100
    ((name, weight),) = given.items()
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= 100:
        raise InvalidInput(
            f"--{name} {weight!r} is not a weight", "give a whole percent from 0 to 100"
        )
    mode: rules.Mode = "canary" if name == "canary" else "ab" if name == "ab" else "shadow"
    return mode, weight


def _deployable(version: Version) -> Version:
    if version.status == "archived":
        raise VersionArchived(f"{version.ref} is archived")
    if version.purged_at is not None:
        raise VersionPurged(f"{version.ref} is purged: its files are gone")
    return version


def _current(tx: Transaction, model: str, env: str) -> DesiredState:
    current = tx.deployments.get(model, env)
    if current is None:
        raise DeploymentNotFound(f"{model} is not deployed to {env}")
    return current


def _check_expected(model: str, env: str, current: DesiredState | None, expect: int | None) -> None:
    now = current.revision if current else 0
    if expect is not None and now != expect:
        raise DeploymentMoved(
            f"{model} in {env} is at revision {now} now, not at {expect} as expected"
        )


def _check_stage(tx: Transaction, version: Version, env: str, role: rules.Role) -> None:
    """The policy's rule for ``env``: the stage a version must be in for its role."""
    rule = policies.policy_in_force(tx)[1].environment(env)
    stage = rule.stage_for(role)
    if stage is None:
        return
    key = tx.aliases.key(version.model, stage)
    if key is None or key.number != version.number:
        what = "a stable version" if role == "stable" else f"a {role}"
        raise PolicyNotMet(
            f"{version.ref} is not in {stage}, and {what} in {env} must be (policy 'environments')",
            f"promote it first: modelkeep promote {version.ref} --to {stage}",
        )


def _record(
    ctx: ServiceContext,
    tx: Transaction,
    action: rules.Action,
    current: DesiredState | None,
    state: DesiredState,
    reason: str | None,
) -> DeploymentChange:
    at = ctx.clock()
    signed = _attest(ctx, tx, action, current, state, at, reason)
    change = DeploymentChange(
        state.model,
        state.env,
        state.revision,
        action,
        current,
        state,
        ctx.actor,
        at,
        reason,
        signed,
    )
    tx.deployments.record(change)
    details: dict[str, Any] = {
        "env": state.env,
        "revision": state.revision,
        "old": [b.to_dict() for b in current.backends] if current else None,
        "new": [b.to_dict() for b in state.backends],
        "sticky": state.sticky,
        "reason": reason,
        "attestation": signed,
    }
    ctx.record_event(tx, EventKind.deployment(action), subject(state.model, state.env), details, at)
    return change


def _attest(
    ctx: ServiceContext,
    tx: Transaction,
    action: rules.Action,
    current: DesiredState | None,
    state: DesiredState,
    at: datetime,
    reason: str | None,
) -> str:
    """Sign the in-toto statement of this change (as a promotion's) and store the DSSE
    envelope as a blob; its digest goes into the history and the audit event."""
    signer = ctx.signer
    if signer is None:
        raise StoreUnavailable(
            "this registry was opened without a signing key: deployment changes are signed",
            "open it with modelkeep.connect() or set MODELKEEP_SIGNING_KEY",
        )
    record = tx.governance.current_policy_key()
    statement = attest_format.deployment_statement(
        store_id=ctx.blobs.store_id,
        state=state.to_dict(),
        previous=current.to_dict() if current else None,
        action=action,
        policy={"version": record[0], "digest": record[1]} if record else None,
        actor=ctx.actor,
        at=at.isoformat(),
        reason=reason,
    )
    public = signer.public_key(create=True) or b""
    envelope = attest_format.sign_envelope(statement, signer.sign, attest_format.key_id(public))
    return ctx.blobs.put_bytes(envelope).digest


def subject(model: str, env: str) -> str:
    """The audit subject of a deployment: ``fraud@env:prod`` (``audit log --model`` finds it)."""
    return f"{model}@env:{env}"
