"""Policy documents, check results, approvals, attestations and retention policies in
memory. Governance rows are written once and never changed, as in SQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import TypeVar

from modelkeep.domain.governance import (
    Approval,
    Attestation,
    CheckResult,
    NewCheckResult,
    PolicyRecord,
)
from modelkeep.domain.provenance import Producer
from modelkeep.domain.retention import RetentionPolicy
from modelkeep.errors import Conflict, VersionNotFound
from modelkeep.storage.memory.state import View, json_copy, maybe_utc, utc

R = TypeVar("R", CheckResult, Approval, Attestation)


def _of_version(rows: dict[int, R], model: str, number: int | None) -> list[R]:
    """The rows about the model (and version, if given), by id."""
    return [
        rows[i]
        for i in sorted(rows)
        if rows[i].model == model and (number is None or rows[i].number == number)
    ]


class GovernanceRows:
    def __init__(self, view: View) -> None:
        self._view = view

    # policies

    def add_policy(self, digest: str, document: str, actor: str, at: datetime) -> PolicyRecord:
        number = max(self._view.read.policies, default=0) + 1
        record = PolicyRecord(number, digest, document, at, actor)
        self._view.change().policies[number] = replace(record, created_at=utc(at))
        return record

    def current_policy(self) -> PolicyRecord | None:
        key = self.current_policy_key()
        return self.policy(key[0]) if key else None

    def current_policy_key(self) -> tuple[int, str] | None:
        policies = self._view.read.policies
        if not policies:
            return None
        number = max(policies)
        return number, policies[number].digest

    def policy(self, number: int) -> PolicyRecord | None:
        return self._view.read.policies.get(number)

    def policies(self) -> list[PolicyRecord]:
        policies = self._view.read.policies
        return [policies[n] for n in sorted(policies)]

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
        version_digest = self._version_digest(model, number)
        tables = self._view.change()
        result = new.record(
            model,
            number,
            version_digest,
            dataset,
            report_digest,
            actor,
            at,
            tables.next_id("check_results"),
            producer,
        )
        stored = replace(result, metrics=json_copy(dict(new.metrics)), created_at=utc(at))
        tables.check_results[result.id] = stored
        return result

    def check_results(self, model: str, number: int | None = None) -> list[CheckResult]:
        return [
            replace(row, metrics=json_copy(dict(row.metrics)))
            for row in _of_version(self._view.read.check_results, model, number)
        ]

    # approvals

    def add_approval(self, approval: Approval) -> Approval:
        self._version_digest(approval.model, approval.number)  # the version must exist
        tables = self._view.change()
        stored = replace(approval, id=tables.next_id("approvals"))
        tables.approvals[stored.id] = replace(stored, created_at=utc(stored.created_at))
        return stored

    def approvals(self, model: str, number: int | None = None) -> list[Approval]:
        return _of_version(self._view.read.approvals, model, number)

    # attestations

    def add_attestation(self, attestation: Attestation) -> Attestation:
        self._version_digest(attestation.model, attestation.number)  # the version must exist
        tables = self._view.change()
        stored = replace(attestation, id=tables.next_id("attestations"), at=utc(attestation.at))
        tables.attestations[stored.id] = stored
        return stored  # as the SQL adapter, which reads the row back

    def attestations(self, model: str, number: int | None = None) -> list[Attestation]:
        return _of_version(self._view.read.attestations, model, number)

    def governance_blobs(self) -> Iterator[tuple[str, str]]:
        """(digest, user) of every blob governance keeps: policy documents, check reports,
        attestation envelopes (gc roots, like versions' files)."""
        tables = self._view.read
        for number, policy in tables.policies.items():
            yield policy.digest, f"policy:{number}"
        for check in tables.check_results.values():
            yield check.report_digest, f"{check.model}@{check.number}"
        for attestation in tables.attestations.values():
            yield attestation.envelope_digest, f"{attestation.model}@{attestation.number}"

    def deployment_blobs(self) -> Iterator[tuple[str, str]]:
        """(digest, ``NAME@env:ENV``) of each deployment change's attestation (gc roots)."""
        for _, change in self._view.read.deployment_events:
            if change.attestation is not None:  # a deployment change's attestation
                yield change.attestation, f"{change.model}@env:{change.env}"

    def _version_digest(self, model: str, number: int) -> str:
        row = self._view.read.versions.get((model, number))
        if row is None:
            raise VersionNotFound(f"{model}@{number} does not exist")
        return row.digest


class RetentionRows:
    def __init__(self, view: View) -> None:
        self._view = view

    def get(self, model: str) -> RetentionPolicy | None:
        return self._view.read.retention.get(model)

    def all(self) -> list[RetentionPolicy]:
        """Every model's policy, by model name."""
        policies = self._view.read.retention
        return [policies[name] for name in sorted(policies)]

    def put(self, policy: RetentionPolicy) -> None:
        """Replace the model's policy."""
        if policy.model not in self._view.read.models:  # a foreign key in SQL
            raise Conflict(f"model {policy.model!r} vanished during the transaction")
        stored = replace(policy, updated_at=maybe_utc(policy.updated_at))
        self._view.change().retention[policy.model] = stored

    def clear(self, model: str) -> bool:
        """Remove the model's policy; False if it had none."""
        if model not in self._view.read.retention:
            return False
        del self._view.change().retention[model]
        return True
