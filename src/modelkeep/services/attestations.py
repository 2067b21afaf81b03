"""Signed attestations of promotions, and the evidence an offline verifier needs.

``attest`` runs inside the promotion's transaction (services/governance.py): it signs an
in-toto statement of the version digest, the policy, every check result and approval
(by record digest) and the evaluation, stores the DSSE envelope as a blob and records it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelkeep.domain import attestation as attest_format
from modelkeep.domain.governance import Approval, Attestation, CheckResult, Evidence, PolicyRecord
from modelkeep.domain.policy import Evaluation, RuleOutcome
from modelkeep.domain.versions import Version
from modelkeep.errors import NotFound, StoreUnavailable
from modelkeep.ports.unit_of_work import Transaction
from modelkeep.services import audit as audit_service
from modelkeep.services import versions
from modelkeep.services.context import ServiceContext


def attest(
    ctx: ServiceContext,
    tx: Transaction,
    version: Version,
    stage: str,
    current: Any,
    record: PolicyRecord | None,
    evaluation: Evaluation,
    override: bool,
    reason: str | None,
) -> Attestation:
    """Sign the in-toto statement of this promotion and record it."""
    signer = ctx.signer
    if signer is None:
        raise StoreUnavailable(
            "this registry was opened without a signing key: promotions are signed",
            "open it with modelkeep.connect() or set MODELKEEP_SIGNING_KEY",
        )
    at = ctx.clock()
    overridden = {"reason": reason, "unmet": [r.rule for r in evaluation.unmet]}
    statement = _statement(
        ctx, tx, version, stage, current, record, evaluation, overridden if override else None, at
    )
    public = signer.public_key(create=True) or b""
    envelope = attest_format.sign_envelope(statement, signer.sign, attest_format.key_id(public))
    digest = ctx.blobs.put_bytes(envelope).digest
    return tx.governance.add_attestation(
        Attestation(
            id=0,
            model=version.model,
            number=version.number,
            version_digest=version.digest,
            stage=stage,
            envelope_digest=digest,
            policy_digest=record.digest if record else None,
            override_reason=reason if override else None,
            actor=ctx.actor,
            at=at,
        )
    )


def _statement(
    ctx: ServiceContext,
    tx: Transaction,
    version: Version,
    stage: str,
    current: Any,
    record: PolicyRecord | None,
    evaluation: Evaluation,
    override: dict[str, Any] | None,
    at: datetime,
) -> dict[str, Any]:
    """The in-toto statement of a promotion: every piece of evidence by record digest."""
    checks = tx.governance.check_results(version.model, version.number)
    approvals = [
        a
        for a in tx.governance.approvals(version.model, version.number)
        if a.version_digest == version.digest and a.stage == stage
    ]
    return attest_format.promotion_statement(
        store_id=ctx.blobs.store_id,
        model=version.model,
        number=version.number,
        version_digest=version.digest,
        stage=stage,
        previous={"number": current.number, "digest": current.digest} if current else None,
        policy={"version": record.number, "digest": record.digest} if record else None,
        checks=[_check_entry(c) for c in checks],
        approvals=[_approval_entry(a) for a in approvals],
        evaluation=[_rule_entry(r) for r in evaluation.rules],
        actor=ctx.actor,
        at=at.isoformat(),
        override=override,
    )


def _check_entry(check: CheckResult) -> dict[str, Any]:
    """A check result by record digest, with its provenance in the clear: who produced it
    (``producer``: null for results recorded before producers were) and on what data."""
    return {
        "id": check.id,
        "suite": check.suite,
        "digest": check.digest,
        "report_digest": check.report_digest,
        "passed": check.passed,
        "producer": check.producer.to_dict() if check.producer else None,
        "dataset": check.dataset,
        "dataset_digest": check.dataset_digest,
    }


def _approval_entry(approval: Approval) -> dict[str, Any]:
    return {
        "id": approval.id,
        "user": approval.user,
        "decision": approval.decision,
        "comment": approval.comment,
        "at": approval.created_at.isoformat(),
        "digest": approval.digest,
    }


def _rule_entry(rule: RuleOutcome) -> dict[str, Any]:
    return {"kind": rule.kind, "rule": rule.rule, "passed": rule.passed, "detail": rule.detail}


# attestations and their evidence ----------------------------------------------------------


def list_attestations(ctx: ServiceContext, ref: str) -> list[Attestation]:
    version = versions.get_version(ctx, ref)
    with ctx.store.transaction() as tx:
        return tx.governance.attestations(version.model, version.number)


def evidence(ctx: ServiceContext, ref: str, stage: str | None = None) -> Evidence:
    """The newest attestation of ``ref`` (for ``stage``, if given) with its evidence."""
    version = versions.get_version(ctx, ref)
    with ctx.store.transaction() as tx:
        found = [
            a
            for a in tx.governance.attestations(version.model, version.number)
            if stage is None or a.stage == stage
        ]
        if not found:
            where = f" for {stage}" if stage else ""
            raise NotFound(
                f"{version.ref} has no attestation{where}",
                "a version is attested when it is promoted",
            )
        chosen = found[-1]
        checks = tx.governance.check_results(version.model, version.number)
        approvals = tx.governance.approvals(version.model, version.number)
    envelope = ctx.blobs.read_bytes(chosen.envelope_digest)
    statement = attest_format.parse_statement(attest_format.decode_envelope(envelope))
    predicate = statement.get("predicate", {})
    named_checks = {c["id"] for c in predicate.get("checks", [])}
    named_approvals = {a["id"] for a in predicate.get("approvals", [])}
    kept_checks = [c for c in checks if c.id in named_checks]
    return Evidence(
        attestation=chosen,
        envelope=envelope,
        public_key=audit_service.public_key(ctx).pem.encode("ascii"),
        manifest=ctx.blobs.read_bytes(version.digest),
        policy=_policy_document(ctx, chosen.policy_digest),
        checks=kept_checks,
        approvals=[a for a in approvals if a.id in named_approvals],
        reports={c.report_digest: ctx.blobs.read_bytes(c.report_digest) for c in kept_checks},
    )


def _policy_document(ctx: ServiceContext, digest: str | None) -> str | None:
    """The policy text the attestation names: stored as a blob under its digest."""
    return ctx.blobs.read_bytes(digest).decode("utf-8") if digest else None
