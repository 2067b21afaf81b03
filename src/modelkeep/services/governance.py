"""Governance use cases: the policy, check results, approvals, gated promotion and its
signed attestation.

A promotion is evaluated and recorded in one write transaction: the policy in force, the
version's check results and approvals and the version now in the stage are read under the
audit head's lock, so no approval or result can slip in between the decision and the move.
The move's audit event names the attestation (a DSSE envelope signed with the store's key,
stored as a blob) that binds the version digest to that evidence.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from modelkeep.domain import access
from modelkeep.domain.access import Grant
from modelkeep.domain.audit import canonical_json
from modelkeep.domain.datasets import match_version
from modelkeep.domain.events import EventKind
from modelkeep.domain.governance import (
    DECISIONS,
    Approval,
    CheckResult,
    GateResult,
    NewCheckResult,
    PolicyRecord,
    Promotion,
)
from modelkeep.domain.names import STAGES, check_stage, parse_ref
from modelkeep.domain.policy import (
    ApprovalFact,
    ApproverNow,
    Evaluation,
    Policy,
    PromotionFacts,
    StageOccupant,
    evaluate,
    may_approve,
    parse_policy,
)
from modelkeep.domain.provenance import Producer, check_finite_metrics, check_source
from modelkeep.domain.text import check_text
from modelkeep.domain.versions import Version
from modelkeep.errors import (
    Conflict,
    DatasetNotFound,
    InvalidInput,
    PolicyNotMet,
    SeparationOfDuties,
    VersionArchived,
)
from modelkeep.ports.unit_of_work import Transaction
from modelkeep.services import aliases, attestations, lookup, models, policies, versions
from modelkeep.services.context import ServiceContext

MAX_POLICY_BYTES = 256 * 1024
MAX_REPORT_BYTES = 8 * 1024 * 1024


# the policy -------------------------------------------------------------------------------


def set_policy(ctx: ServiceContext, document: str) -> PolicyRecord:
    """Store a new version of the registry's policy (a global admin); refused, with the
    line, unless it parses and names only known stages, roles, metrics and fields."""
    ctx.authorize(access.SET_POLICY, None)
    data = document.encode("utf-8")
    if len(data) > MAX_POLICY_BYTES:
        raise InvalidInput(
            f"the policy is {len(data)} bytes, over the limit of {MAX_POLICY_BYTES}",
            "keep the policy short: rules, not data",
        )
    parse_policy(document)
    with ctx.store.transaction(write=True) as tx:
        current = tx.governance.current_policy()
        digest = ctx.blobs.put_bytes(data).digest
        if current is not None and current.digest == digest:
            return current  # the same document again: nothing changes
        at = ctx.clock()
        record = tx.governance.add_policy(digest, document, ctx.actor, at)
        previous = current.digest if current else None
        details = {"number": record.number, "digest": digest, "previous": previous}
        ctx.record_event(tx, EventKind.POLICY_SET, "policy", details, at)
        tx.commit()
    return record


def current_policy(ctx: ServiceContext) -> PolicyRecord | None:
    ctx.authorize(access.READ, access.ANY_MODEL)
    with ctx.store.transaction() as tx:
        return tx.governance.current_policy()


def policy_history(ctx: ServiceContext) -> list[PolicyRecord]:
    ctx.authorize(access.READ, access.ANY_MODEL)
    with ctx.store.transaction() as tx:
        return tx.governance.policies()


def effective_policy(ctx: ServiceContext, model: str) -> dict[str, Any]:
    """The rules that apply to ``model`` (the registry's, with its overrides)."""
    models.get_model(ctx, model)
    with ctx.store.transaction() as tx:
        record, policy = policies.policy_in_force(tx)
    return {
        "model": model,
        "policy": _policy_ref(record),
        "rules": policy.for_model(model).to_dict(),
    }


def _policy_ref(record: PolicyRecord | None) -> dict[str, Any] | None:
    return {"number": record.number, "digest": record.digest} if record else None


# check results ----------------------------------------------------------------------------


def record_check(
    ctx: ServiceContext, ref: str, dataset_ref: str | None, result: NewCheckResult
) -> CheckResult:
    """Attach one check result (and its JSON report, stored as a blob) to a version, with
    its producer: the actor, whether the actor is a runner on the model (decided here,
    from its grants) and the source the client gives."""
    parsed = parse_ref(ref)
    ctx.authorize(access.CHECK, parsed.model)
    if dataset_ref:  # evidence over a dataset needs reading it (isolation between teams)
        dataset_name = parse_ref(dataset_ref, default_latest=True).model
        ctx.authorize(access.READ, access.dataset_scope(dataset_name))
    _check_result(result)
    producer = Producer(
        ctx.actor, access.is_runner(ctx.principal.grants, parsed.model), result.source
    )
    report = canonical_json(result.report)
    if len(report) > MAX_REPORT_BYTES:
        raise InvalidInput(f"the check report is over {MAX_REPORT_BYTES} bytes", "report less")
    with ctx.store.transaction(write=True) as tx:
        version = lookup.version_of(tx, parsed)
        if version.status == "archived":
            raise VersionArchived(f"{version.ref} is archived: it cannot be checked")
        dataset = _dataset(tx, dataset_ref) if dataset_ref else None
        report_digest = ctx.blobs.put_bytes(report).digest
        at = ctx.clock()
        recorded = tx.governance.add_check_result(
            version.model, version.number, result, dataset, report_digest, ctx.actor, at, producer
        )
        details = {
            "id": recorded.id,
            "digest": recorded.digest,
            "version_digest": version.digest,
            "suite": result.suite,
            "passed": result.passed,
            "dataset": recorded.dataset,
            "dataset_digest": recorded.dataset_digest,
            "producer": producer.to_dict(),
        }
        ctx.record_event(tx, EventKind.CHECK_RECORD, version.ref, details, at)
        tx.commit()
    return recorded


def _check_result(result: NewCheckResult) -> None:
    check_text("the check's name", result.suite)
    if not result.suite or len(result.suite) > 128:
        raise InvalidInput("a check needs a name of 1 to 128 characters", "name the check")
    if result.kind not in ("evaluation", "fairness", "robustness", "command"):
        raise InvalidInput(
            f"{result.kind!r} is not a kind of check",
            "use evaluation, fairness, robustness or command",
        )
    if len(result.metrics) > 1000:
        raise InvalidInput("a check result holds at most 1000 metrics", "report fewer metrics")
    for name, value in result.metrics.items():
        if not isinstance(name, str) or not 0 < len(name) <= 128:
            raise InvalidInput(f"metric name {name!r} is not allowed", "use 1 to 128 characters")
        if value is not None and not isinstance(value, int | float):
            raise InvalidInput(f"metric {name!r} is not a number", "report numbers or null")
    check_finite_metrics(result.metrics)
    check_source(result.source)


def _dataset(tx: Transaction, ref: str) -> tuple[int, str, str]:
    parsed = parse_ref(ref, default_latest=True)
    found = match_version(tx.datasets.versions(parsed.model), parsed.kind, parsed.value)
    if found is None:
        raise DatasetNotFound(f"there is no dataset version {ref}")
    return int(found.id), f"{parsed.model}@{found.number}", str(found.digest)


def list_checks(ctx: ServiceContext, ref: str) -> list[CheckResult]:
    version = versions.get_version(ctx, ref)
    with ctx.store.transaction() as tx:
        return tx.governance.check_results(version.model, version.number)


# approvals --------------------------------------------------------------------------------


def review(
    ctx: ServiceContext,
    ref: str,
    stage: str,
    decision: str,
    comment: str | None = None,
    expect_digest: str | None = None,
) -> Approval:
    """Approve or reject ``ref`` for ``stage``, bound to its digest and to the check results
    and policy current now. The version's creator may not approve it (separation of
    duties, unless the policy turns it off)."""
    check_stage(stage)
    if decision not in DECISIONS:
        raise InvalidInput(f"{decision!r} is not a decision", "approve or reject")
    check_text("the comment", comment)
    parsed = parse_ref(ref)
    ctx.authorize(access.APPROVE, parsed.model)
    with ctx.store.transaction(write=True) as tx:
        version = lookup.version_of(tx, parsed)
        _check_digest(version, expect_digest)
        if version.status == "archived":
            raise VersionArchived(f"{version.ref} is archived: it cannot be approved")
        record, policy = policies.policy_in_force(tx)
        if decision == "approve":
            allowed, reason = may_approve(
                policy.for_model(version.model), stage, version.created_by, ctx.actor
            )
            if not allowed:
                raise SeparationOfDuties(reason)
        at = ctx.clock()
        new = _approval(ctx, tx, version, stage, decision, comment, record, at)
        approval = tx.governance.add_approval(new)
        details = {
            "id": approval.id,
            "digest": approval.digest,
            "version_digest": version.digest,
            "stage": stage,
            "comment": comment,
        }
        ctx.record_event(tx, EventKind.approval(decision), version.ref, details, at)
        tx.commit()
    return approval


def _approval(
    ctx: ServiceContext,
    tx: Transaction,
    version: Version,
    stage: str,
    decision: str,
    comment: str | None,
    record: PolicyRecord | None,
    at: datetime,
) -> Approval:
    """The decision, bound to the version's digest and to the check results and policy in
    force now (an approval older than a newer result is shown as such when promoting)."""
    checks = tx.governance.check_results(version.model, version.number)
    return Approval(
        id=0,
        model=version.model,
        number=version.number,
        version_digest=version.digest,
        stage=stage,
        decision=decision,
        user=ctx.actor,
        roles=roles_on(ctx, version.model),
        comment=comment,
        check_ids=tuple(c.id for c in checks),
        policy_digest=record.digest if record else None,
        created_at=at,
    )


def _check_digest(version: Version, expect: str | None) -> None:
    """An approval names what it approves: a reference that now means other bytes is
    refused (digests never change meaning; this guards against a moved alias)."""
    if expect is not None and not version.digest.startswith(expect):
        raise Conflict(
            f"{version.ref} is {version.digest}, not {expect}",
            "look at the version again ('modelkeep show') and approve what you reviewed",
        )


def roles_on(ctx: ServiceContext, model: str) -> tuple[str, ...]:
    """The actor's roles that apply to ``model`` (global or on that model)."""
    return _roles_of(ctx.principal.grants, model)


def _roles_of(grants: Iterable[Grant], model: str) -> tuple[str, ...]:
    return tuple(sorted({g.role for g in grants if g.is_global or g.model == model}))


def list_approvals(ctx: ServiceContext, ref: str) -> list[Approval]:
    version = versions.get_version(ctx, ref)
    with ctx.store.transaction() as tx:
        return [
            a
            for a in tx.governance.approvals(version.model, version.number)
            if a.version_digest == version.digest
        ]


# evaluation, gate, promotion --------------------------------------------------------------


def gate(ctx: ServiceContext, ref: str, stage: str, promoter: str | None = None) -> GateResult:
    """Would promoting ``ref`` to ``stage`` pass the policy? Changes nothing."""
    check_stage(stage)
    parsed = parse_ref(ref)
    ctx.authorize(access.READ, parsed.model)
    with ctx.store.transaction() as tx:
        version = lookup.version_of(tx, parsed)
        record, policy = policies.policy_in_force(tx)
        evaluation = _evaluate(ctx, tx, version, stage, policy, record, promoter)
    return GateResult(
        version.model, version.number, version.digest, stage, _policy_ref(record), evaluation
    )


def _evaluate(
    ctx: ServiceContext,
    tx: Transaction,
    version: Version,
    stage: str,
    policy: Policy,
    record: PolicyRecord | None,
    promoter: str | None,
) -> Evaluation:
    approvals = tuple(
        a.fact()
        for a in tx.governance.approvals(version.model, version.number)
        if a.version_digest == version.digest
    )
    facts = PromotionFacts(
        model=version.model,
        number=version.number,
        digest=version.digest,
        created_by=version.created_by,
        metadata=versions.metadata_through_run(tx, version.metadata),
        message=version.message,
        checks=tuple(c.fact() for c in tx.governance.check_results(version.model, version.number)),
        approvals=approvals,
        occupants={s: _occupant(tx, version.model, s) for s in STAGES},
        promoter=promoter,
        policy_digest=record.digest if record else None,
        approvers=_approvers_now(tx, version.model, approvals, ctx.clock()),
    )
    facts = replace(facts, runners=_runners_now(ctx, tx, facts))
    return evaluate(policy.for_model(version.model), stage, facts)


def _approvers_now(
    tx: Transaction, model: str, approvals: Iterable[ApprovalFact], now: datetime
) -> dict[str, ApproverNow]:
    """Each approver who is a user of the store as they stand now, in the evaluating
    transaction: an approval counts only while its author is active and still holds the
    role, whatever roles it recorded. Operators (``local:...``) are no users: not here."""
    found: dict[str, ApproverNow] = {}
    for name in {a.user for a in approvals}:
        user = tx.users.get(name, now)
        if user is not None:
            found[name] = ApproverNow(user.state, _roles_of(user.grants, model))
    return found


def _runners_now(ctx: ServiceContext, tx: Transaction, facts: PromotionFacts) -> frozenset[str]:
    """The runners whose results ``facts`` hold (the version's, and the stage versions')
    who are runners on the model now: not disabled, the role still held."""
    at = ctx.clock()
    checks = [*facts.checks, *(c for o in facts.occupants.values() if o for c in o.checks)]
    named = {c.producer.user for c in checks if c.producer is not None and c.producer.runner}
    users = {name: tx.users.get(name, at) for name in named}
    return frozenset(
        name
        for name, user in users.items()
        if user is not None
        and user.state == "active"
        and access.is_runner(user.grants, facts.model)
    )


def _occupant(tx: Transaction, model: str, stage: str) -> StageOccupant | None:
    key = tx.aliases.key(model, stage)
    if key is None:
        return None
    checks = tuple(c.fact() for c in tx.governance.check_results(model, key.number))
    return StageOccupant(ref=f"{model}@{key.number}", checks=checks)


def promote(
    ctx: ServiceContext,
    ref: str,
    stage: str,
    reason: str | None = None,
    expect: int | None = None,
    override: bool = False,
) -> Promotion:
    """Move ``stage`` to ``ref`` if the policy is met (else ``PolicyNotMet`` listing every
    unmet rule), and sign an attestation of the evidence. ``override`` (an admin, with a
    reason) promotes anyway and says so loudly in the audit log and the attestation."""
    check_stage(stage)
    parsed = parse_ref(ref)
    ctx.authorize(access.PROMOTE, parsed.model)
    check_text("the reason", reason)
    if override:
        ctx.authorize(access.OVERRIDE, parsed.model)
        if not reason or not reason.strip():
            raise InvalidInput("an override needs a reason", "give --reason TEXT")
    with ctx.store.transaction(write=True) as tx:
        version = lookup.version_of(tx, parsed)
        if version.status == "archived":
            raise VersionArchived(
                f"{version.ref} is archived",
                f"'modelkeep unarchive {version.ref}' makes it usable again, "
                "or promote another version",
            )
        current = tx.aliases.key(version.model, stage)
        aliases.check_expected(version.model, stage, current, expect)
        record, policy = policies.policy_in_force(tx)
        evaluation = _evaluate(ctx, tx, version, stage, policy, record, ctx.actor)
        result = GateResult(
            version.model, version.number, version.digest, stage, _policy_ref(record), evaluation
        )
        if current is not None and current.number == version.number:
            return Promotion(tx.aliases.events(version.model, stage)[-1], result, None)
        if not evaluation.passed and not override:
            raise PolicyNotMet(_unmet_message(version, stage, evaluation))
        signed = attestations.attest(
            ctx, tx, version, stage, current, record, evaluation, override, reason
        )
        extra: dict[str, Any] = {"attestation": signed.envelope_digest}
        if record is not None:
            extra["policy_digest"] = record.digest
        if override:
            extra["override"] = {"reason": reason, "unmet": [r.rule for r in evaluation.unmet]}
        event = aliases.record_move(
            ctx, tx, version.model, stage, "promote", version, current, reason, extra
        )
        if override:
            details = {"stage": stage, "reason": reason, "unmet": extra["override"]["unmet"]}
            ctx.record_event(tx, EventKind.POLICY_OVERRIDE, version.ref, details, signed.at)
        tx.commit()
    return Promotion(event, result, signed)


def _unmet_message(version: Version, stage: str, evaluation: Evaluation) -> str:
    unmet = "; ".join(f"{r.rule}: {r.detail}" for r in evaluation.unmet)
    return f"{version.ref} may not enter {stage}: {unmet}"
