"""Governance records, written once and never changed; and per-model retention."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from modelkeep.domain.governance import (
    Approval,
    Attestation,
    CheckResult,
    NewCheckResult,
    PolicyRecord,
)
from modelkeep.domain.provenance import Producer
from modelkeep.domain.retention import RetentionPolicy


class Governance(Protocol):
    def add_policy(self, digest: str, document: str, actor: str, at: datetime) -> PolicyRecord:
        """Record the next version of the registry's policy document."""
        ...

    def current_policy(self) -> PolicyRecord | None: ...
    def current_policy_key(self) -> tuple[int, str] | None:
        """(number, digest) of the policy in force, without its document."""
        ...

    def policy(self, number: int) -> PolicyRecord | None: ...
    def policies(self) -> list[PolicyRecord]: ...
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
        """``dataset``: (dataset version id, ``NAME@N``, digest) the check ran on;
        ``producer``: who recorded it (kept with the record, and in its digest)."""
        ...

    def check_results(self, model: str, number: int | None = None) -> list[CheckResult]: ...
    def add_approval(self, approval: Approval) -> Approval:
        """Record ``approval`` of its version; the stored record, with its row ``id``."""
        ...

    def approvals(self, model: str, number: int | None = None) -> list[Approval]: ...
    def add_attestation(self, attestation: Attestation) -> Attestation:
        """Record ``attestation`` of its version; the stored record, with its row ``id``."""
        ...

    def attestations(self, model: str, number: int | None = None) -> list[Attestation]: ...


class Retention(Protocol):
    def get(self, model: str) -> RetentionPolicy | None: ...
    def all(self) -> list[RetentionPolicy]:
        """Every model's policy, by model name."""
        ...

    def put(self, policy: RetentionPolicy) -> None:
        """Replace the model's policy."""
        ...

    def clear(self, model: str) -> bool:
        """Remove the model's policy; False if it had none."""
        ...
