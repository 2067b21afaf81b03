"""Policy documents, check results, approvals and attestations: the SQL half of
governance. Rows are inserted, never updated: services decide, this module records."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select

from modelkeep.domain.governance import (
    Approval,
    Attestation,
    CheckResult,
    NewCheckResult,
    PolicyRecord,
)
from modelkeep.domain.provenance import Producer
from modelkeep.errors import VersionNotFound
from modelkeep.storage.sql.tables import (
    approvals,
    attestations,
    check_results,
    deployment_events,
    models,
    policies,
    versions,
)

_VERSION = select(versions.c.id, models.c.name, versions.c.number, versions.c.digest).join(
    models, models.c.id == versions.c.model_id
)


def _with_version(table: Any) -> Any:
    """Rows of ``table`` with their version's model name, number and digest."""
    return (
        select(
            table,
            models.c.name.label("model_name"),
            versions.c.number.label("version_number"),
            versions.c.digest.label("version_digest"),
        )
        .join(versions, versions.c.id == table.c.version_id)
        .join(models, models.c.id == versions.c.model_id)
        .order_by(table.c.id)
    )


_CURRENT_POLICY = (
    select(policies.c.number, policies.c.digest).order_by(policies.c.number.desc()).limit(1)
)
_POLICY_BY_NUMBER = select(policies).where(policies.c.number == bindparam("number"))
_CHECKS = _with_version(check_results)
_APPROVALS = _with_version(approvals)
_ATTESTATIONS = _with_version(attestations)


class GovernanceRows:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    # policies

    def add_policy(self, digest: str, document: str, actor: str, at: datetime) -> PolicyRecord:
        last = self._conn.execute(select(func.max(policies.c.number))).scalar()
        number = int(last or 0) + 1
        self._conn.execute(
            insert(policies).values(
                number=number, digest=digest, document=document, created_at=at, created_by=actor
            )
        )
        return PolicyRecord(number, digest, document, at, actor)

    def current_policy(self) -> PolicyRecord | None:
        key = self.current_policy_key()
        return self.policy(key[0]) if key else None

    def current_policy_key(self) -> tuple[int, str] | None:
        """(number, digest) of the policy in force: cheap, for every push and alias move."""
        row = self._conn.execute(_CURRENT_POLICY).first()
        return (int(row.number), str(row.digest)) if row else None

    def policy(self, number: int) -> PolicyRecord | None:
        row = self._conn.execute(_POLICY_BY_NUMBER, {"number": number}).first()
        return _policy(row) if row else None

    def policies(self) -> list[PolicyRecord]:
        return [
            _policy(r) for r in self._conn.execute(select(policies).order_by(policies.c.number))
        ]

    # check results

    def add_check_result(
        self,
        model: str,
        number: int,
        new: NewCheckResult,
        dataset: tuple[int, str, str] | None,
        report_digest: str,
        actor: str,
        at: datetime,
        producer: Producer | None = None,
    ) -> CheckResult:
        """``dataset``: (dataset version id, ``NAME@N``, digest) the check ran on."""
        version_id, version_digest = self._version_row(model, number)
        result = new.record(
            model, number, version_digest, dataset, report_digest, actor, at, 0, producer
        )
        result_id = self._conn.execute(
            insert(check_results)
            .values(
                version_id=version_id,
                suite=result.suite,
                kind=result.kind,
                metrics=dict(result.metrics),
                passed=int(result.passed),
                failures=list(result.failures),
                dataset_version_id=dataset[0] if dataset else None,
                dataset=result.dataset,
                dataset_digest=result.dataset_digest,
                report_digest=report_digest,
                digest=result.digest,
                created_at=at,
                created_by=actor,
                producer=producer.to_dict() if producer else None,
            )
            .returning(check_results.c.id)
        ).scalar_one()
        return replace(result, id=int(result_id))

    def check_results(self, model: str, number: int | None = None) -> list[CheckResult]:
        query = _CHECKS.where(models.c.name == model)
        if number is not None:
            query = query.where(versions.c.number == number)
        return [self._check(row) for row in self._conn.execute(query)]

    @staticmethod
    def _check(row: Any) -> CheckResult:
        return CheckResult(
            id=int(row.id),
            model=row.model_name,
            number=int(row.version_number),
            version_digest=row.version_digest,
            suite=row.suite,
            kind=row.kind,
            metrics=dict(row.metrics),
            passed=bool(row.passed),
            failures=tuple(row.failures),
            dataset=row.dataset,
            dataset_digest=row.dataset_digest,
            report_digest=row.report_digest,
            created_at=row.created_at,
            created_by=row.created_by,
            producer=Producer.from_dict(row.producer) if row.producer else None,
        )

    # approvals

    def add_approval(self, approval: Approval) -> Approval:
        version_id, _ = self._version_row(approval.model, approval.number)
        approval_id = self._conn.execute(
            insert(approvals)
            .values(
                version_id=version_id,
                stage=approval.stage,
                decision=approval.decision,
                user=approval.user,
                roles=list(approval.roles),
                comment=approval.comment,
                check_ids=list(approval.check_ids),
                policy_digest=approval.policy_digest,
                digest=replace(approval, id=0).digest,
                created_at=approval.created_at,
            )
            .returning(approvals.c.id)
        ).scalar_one()
        return replace(approval, id=int(approval_id))

    def approvals(self, model: str, number: int | None = None) -> list[Approval]:
        query = _APPROVALS.where(models.c.name == model)
        if number is not None:
            query = query.where(versions.c.number == number)
        return [_approval(row) for row in self._conn.execute(query)]

    # attestations

    def add_attestation(self, attestation: Attestation) -> Attestation:
        version_id, _ = self._version_row(attestation.model, attestation.number)
        attestation_id = self._conn.execute(
            insert(attestations)
            .values(
                version_id=version_id,
                stage=attestation.stage,
                envelope_digest=attestation.envelope_digest,
                policy_digest=attestation.policy_digest,
                override_reason=attestation.override_reason,
                actor=attestation.actor,
                at=attestation.at,
            )
            .returning(attestations.c.id)
        ).scalar_one()
        row = self._conn.execute(_ATTESTATIONS.where(attestations.c.id == attestation_id)).one()
        return _attestation(row)

    def attestations(self, model: str, number: int | None = None) -> list[Attestation]:
        query = _ATTESTATIONS.where(models.c.name == model)
        if number is not None:
            query = query.where(versions.c.number == number)
        return [_attestation(row) for row in self._conn.execute(query)]

    def governance_blobs(self) -> Iterator[tuple[str, str]]:
        """(digest, user) of every blob governance keeps: policy documents, check reports,
        attestation envelopes (gc roots, like versions' files)."""
        for number, digest in self._conn.execute(select(policies.c.number, policies.c.digest)):
            yield digest, f"policy:{number}"
        for table, column in (
            (check_results, check_results.c.report_digest),
            (attestations, attestations.c.envelope_digest),
        ):
            query = (
                select(column, models.c.name, versions.c.number)
                .join(versions, versions.c.id == table.c.version_id)
                .join(models, models.c.id == versions.c.model_id)
            )
            for digest, name, number in self._conn.execute(query):
                yield digest, f"{name}@{number}"

    def deployment_blobs(self) -> Iterator[tuple[str, str]]:
        """(digest, ``NAME@env:ENV``) of each deployment change's attestation (gc roots)."""
        signed = (
            select(deployment_events.c.attestation, models.c.name, deployment_events.c.env)
            .join(models, models.c.id == deployment_events.c.model_id)
            .where(deployment_events.c.attestation.is_not(None))
        )
        for digest, name, env in self._conn.execute(signed):
            yield digest, f"{name}@env:{env}"  # a deployment change's attestation

    def _version_row(self, model: str, number: int) -> tuple[int, str]:
        """The version's row id and digest."""
        row = self._conn.execute(
            _VERSION.where(models.c.name == model, versions.c.number == number)
        ).first()
        if row is None:
            raise VersionNotFound(f"{model}@{number} does not exist")
        return int(row.id), str(row.digest)


def _policy(row: Any) -> PolicyRecord:
    return PolicyRecord(int(row.number), row.digest, row.document, row.created_at, row.created_by)


def _approval(row: Any) -> Approval:
    return Approval(
        id=int(row.id),
        model=row.model_name,
        number=int(row.version_number),
        version_digest=row.version_digest,
        stage=row.stage,
        decision=row.decision,
        user=row.user,
        roles=tuple(row.roles),
        comment=row.comment,
        check_ids=tuple(int(i) for i in row.check_ids),
        policy_digest=row.policy_digest,
        created_at=row.created_at,
    )


def _attestation(row: Any) -> Attestation:
    return Attestation(
        id=int(row.id),
        model=row.model_name,
        number=int(row.version_number),
        version_digest=row.version_digest,
        stage=row.stage,
        envelope_digest=row.envelope_digest,
        policy_digest=row.policy_digest,
        override_reason=row.override_reason,
        actor=row.actor,
        at=row.at,
    )
