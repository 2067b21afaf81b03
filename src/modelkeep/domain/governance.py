"""The records governance keeps: policy documents, check results, approvals, attestations.

Each is written once and never changed; a later fact is a new record. Check results and
approvals have a **record digest**: the sha256 of the canonical JSON of ``record()``
(every field but the row id), which signed attestations name, so that anyone holding the
exported records can check that the evidence is the one that was signed.

Beside them, what governance answers: a gate's result, a promotion, and the evidence of
one attestation (what an offline verifier needs).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Self

from modelkeep.domain.aliases import AliasEvent
from modelkeep.domain.attestation import record_digest
from modelkeep.domain.policy_eval import ApprovalFact, CheckFact, Evaluation
from modelkeep.domain.provenance import SOURCE_CLIENT, Producer

DECISIONS = ("approve", "reject")


def _time(value: str | datetime) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


@dataclass(frozen=True)
class PolicyRecord:
    """One version of the registry's policy document (YAML text, as given)."""

    number: int
    digest: str
    document: str
    created_at: datetime
    created_by: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "digest": self.digest,
            "document": self.document,
            "created_at": self.created_at.isoformat(),
            "created_by": self.created_by,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PolicyRecord:
        return cls(
            int(data["number"]),
            str(data["digest"]),
            str(data["document"]),
            _time(data["created_at"]),
            str(data["created_by"]),
        )


@dataclass(frozen=True)
class NewCheckResult:
    """What a check produced, as the client sends it to be recorded."""

    suite: str
    kind: str
    metrics: Mapping[str, float | None]
    passed: bool
    failures: Sequence[str] = ()
    report: Mapping[str, Any] = field(default_factory=dict)
    source: str = SOURCE_CLIENT
    """What the client says made it: ``modelkeep check`` or ``client`` (see provenance)."""

    def record(
        self,
        model: str,
        number: int,
        version_digest: str,
        dataset: tuple[int, str, str] | None,
        report_digest: str,
        actor: str,
        at: datetime,
        id: int = 0,
        producer: Producer | None = None,
    ) -> CheckResult:
        """The result as recorded; ``dataset``: (its version id, ``NAME@N``, digest);
        ``producer``: who recorded it (the registry decides, see provenance)."""
        return CheckResult(
            id=id,
            model=model,
            number=number,
            version_digest=version_digest,
            suite=self.suite,
            kind=self.kind,
            metrics=dict(self.metrics),
            passed=self.passed,
            failures=tuple(self.failures),
            dataset=dataset[1] if dataset else None,
            dataset_digest=dataset[2] if dataset else None,
            report_digest=report_digest,
            created_at=at,
            created_by=actor,
            producer=producer,
        )


class _Record:
    """A written-once record with a row id and a record digest over every other field."""

    id: int

    def record(self) -> dict[str, Any]:
        """The fields the record digest covers (everything but the row id), as JSON."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name != "id"}  # type: ignore[arg-type]

    @property
    def digest(self) -> str:
        return record_digest(self.record())

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, **self.record(), "digest": self.digest}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        values: dict[str, Any] = {}
        for f in fields(cls):  # type: ignore[arg-type]
            raw: Any = data.get(f.name)
            if f.name == "created_at":
                raw = _time(raw)
            elif f.name == "producer":
                raw = Producer.from_dict(raw) if raw is not None else None
            elif str(f.type).startswith("tuple"):
                raw = tuple(raw)
            elif str(f.type).startswith("Mapping"):
                raw = dict(raw)
            values[f.name] = raw
        return cls(**values)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Producer):
        return value.to_dict()
    return value


@dataclass(frozen=True)
class CheckResult(_Record):
    id: int
    model: str
    number: int
    version_digest: str
    suite: str
    kind: str
    metrics: Mapping[str, float | None]
    passed: bool
    failures: tuple[str, ...]
    dataset: str | None
    dataset_digest: str | None
    report_digest: str
    created_at: datetime
    created_by: str
    producer: Producer | None = None
    """None for results recorded before producers were: their record (and its digest,
    which attestations name) stays what it was."""

    def record(self) -> dict[str, Any]:
        record = super().record()
        if self.producer is None:
            del record["producer"]
        return record

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "producer": _plain(self.producer)}

    def fact(self) -> CheckFact:
        return CheckFact(
            id=self.id,
            suite=self.suite,
            metrics=self.metrics,
            passed=self.passed,
            dataset=self.dataset,
            at=self.created_at,
            producer=self.producer,
        )


@dataclass(frozen=True)
class Approval(_Record):
    """An approval or rejection of a version (by digest) for a stage."""

    id: int
    model: str
    number: int
    version_digest: str
    stage: str
    decision: str
    user: str
    roles: tuple[str, ...]
    comment: str | None
    check_ids: tuple[int, ...]
    policy_digest: str | None
    created_at: datetime

    def fact(self) -> ApprovalFact:
        return ApprovalFact(
            id=self.id,
            user=self.user,
            roles=self.roles,
            decision=self.decision,
            stage=self.stage,
            comment=self.comment,
            at=self.created_at,
            check_ids=self.check_ids,
            policy_digest=self.policy_digest,
        )


@dataclass(frozen=True)
class Attestation:
    """A signed promotion record: the DSSE envelope is the blob ``envelope_digest``."""

    id: int
    model: str
    number: int
    version_digest: str
    stage: str
    envelope_digest: str
    policy_digest: str | None
    override_reason: str | None
    actor: str
    at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "number": self.number,
            "version_digest": self.version_digest,
            "stage": self.stage,
            "envelope_digest": self.envelope_digest,
            "policy_digest": self.policy_digest,
            "override": {"reason": self.override_reason} if self.override_reason else None,
            "actor": self.actor,
            "at": self.at.isoformat(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Attestation:
        override = data.get("override")
        return cls(
            id=int(data["id"]),
            model=str(data["model"]),
            number=int(data["number"]),
            version_digest=str(data["version_digest"]),
            stage=str(data["stage"]),
            envelope_digest=str(data["envelope_digest"]),
            policy_digest=data.get("policy_digest"),
            override_reason=override["reason"] if override else None,
            actor=str(data["actor"]),
            at=_time(data["at"]),
        )


@dataclass(frozen=True)
class GateResult:
    """What the policy says of promoting one version to one stage."""

    model: str
    number: int
    digest: str
    stage: str
    policy: dict[str, Any] | None
    evaluation: Evaluation

    @property
    def passed(self) -> bool:
        return self.evaluation.passed

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "number": self.number,
            "digest": self.digest,
            "stage": self.stage,
            "policy": self.policy,
            **self.evaluation.to_dict(),
            "passed": self.passed,
        }


@dataclass(frozen=True)
class Promotion:
    event: AliasEvent
    gate: GateResult
    attestation: Attestation | None
    """None when the version was in the stage already (nothing moved, nothing signed)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.event.to_dict(),
            "digest": self.gate.digest,
            "policy": self.gate.policy,
            "evaluation": self.gate.evaluation.to_dict(),
            "attestation": self.attestation.to_dict() if self.attestation else None,
        }


@dataclass(frozen=True)
class Evidence:
    """Everything an offline verifier needs for one attestation (``attest export``)."""

    attestation: Attestation
    envelope: bytes
    public_key: bytes
    manifest: bytes
    policy: str | None
    checks: Sequence[CheckResult]
    approvals: Sequence[Approval]
    reports: dict[str, bytes]
