"""Governance through the SDK's two transports: in process and over HTTP.

``LocalGovernance`` calls services/governance.py; ``HttpGovernance`` calls the server's
routes (entrypoints/api/governance_routes.py) and rebuilds the same records from JSON, so
the contract tests run one suite over both.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from modelkeep.client import wire
from modelkeep.client.wire import path_segment as _seg
from modelkeep.domain.governance import (
    Approval,
    Attestation,
    CheckResult,
    NewCheckResult,
    PolicyRecord,
)
from modelkeep.domain.names import parse_ref
from modelkeep.domain.policy import Evaluation, RuleOutcome
from modelkeep.services import attestations, cards, governance
from modelkeep.services.attestations import Evidence
from modelkeep.services.governance import GateResult, Promotion
from modelkeep.services.registry import Registry


class GovernanceBackend(Protocol):
    def set_policy(self, document: str) -> PolicyRecord: ...
    def policy(self) -> PolicyRecord | None: ...
    def policy_history(self) -> list[PolicyRecord]: ...
    def model_policy(self, model: str) -> dict[str, Any]: ...
    def record_check(
        self, ref: str, dataset: str | None, result: NewCheckResult
    ) -> CheckResult: ...
    def checks(self, ref: str) -> list[CheckResult]: ...
    def decide(
        self,
        ref: str,
        stage: str,
        decision: str,
        comment: str | None,
        expect_digest: str | None,
    ) -> Approval: ...
    def approvals(self, ref: str) -> list[Approval]: ...
    def gate(self, ref: str, stage: str, promoter: str | None = None) -> GateResult: ...
    def promotion(
        self,
        ref: str,
        to: str,
        reason: str | None = None,
        expect: int | None = None,
        override: bool = False,
    ) -> Promotion: ...
    def attestations(self, ref: str) -> list[Attestation]: ...
    def evidence(self, ref: str, stage: str | None = None) -> Evidence: ...
    def card(self, ref: str, fmt: str = "md") -> str: ...
    def governance_report(self, model: str | None = None, fmt: str = "md") -> str: ...


class LocalGovernance:
    registry: Registry

    def set_policy(self, document: str) -> PolicyRecord:
        return governance.set_policy(self.registry, document)

    def policy(self) -> PolicyRecord | None:
        return governance.current_policy(self.registry)

    def policy_history(self) -> list[PolicyRecord]:
        return governance.policy_history(self.registry)

    def model_policy(self, model: str) -> dict[str, Any]:
        return governance.effective_policy(self.registry, model)

    def record_check(self, ref: str, dataset: str | None, result: NewCheckResult) -> CheckResult:
        return governance.record_check(self.registry, ref, dataset, result)

    def checks(self, ref: str) -> list[CheckResult]:
        return governance.list_checks(self.registry, ref)

    def decide(
        self,
        ref: str,
        stage: str,
        decision: str,
        comment: str | None,
        expect_digest: str | None,
    ) -> Approval:
        return governance.review(self.registry, ref, stage, decision, comment, expect_digest)

    def approvals(self, ref: str) -> list[Approval]:
        return governance.list_approvals(self.registry, ref)

    def gate(self, ref: str, stage: str, promoter: str | None = None) -> GateResult:
        return governance.gate(self.registry, ref, stage, promoter)

    def promotion(
        self,
        ref: str,
        to: str,
        reason: str | None = None,
        expect: int | None = None,
        override: bool = False,
    ) -> Promotion:
        return governance.promote(self.registry, ref, to, reason, expect, override)

    def attestations(self, ref: str) -> list[Attestation]:
        return attestations.list_attestations(self.registry, ref)

    def evidence(self, ref: str, stage: str | None = None) -> Evidence:
        return attestations.evidence(self.registry, ref, stage)

    def card(self, ref: str, fmt: str = "md") -> str:
        return cards.card(self.registry, ref, fmt)

    def governance_report(self, model: str | None = None, fmt: str = "md") -> str:
        return cards.governance_report(self.registry, model, fmt)


class HttpGovernance:
    """Mixed into ``HttpBackend``, which supplies the requests."""

    _call: Callable[..., Any]
    _items: Callable[..., list[dict[str, Any]]]
    _text: Callable[[str, dict[str, Any]], str]

    def set_policy(self, document: str) -> PolicyRecord:
        return PolicyRecord.from_dict(self._call("PUT", "/policy", json={"document": document}))

    def policy(self) -> PolicyRecord | None:
        found = self._call("GET", "/policy")["policy"]
        return PolicyRecord.from_dict(found) if found else None

    def policy_history(self) -> list[PolicyRecord]:
        return [PolicyRecord.from_dict(d) for d in self._items("/policy/history")]

    def model_policy(self, model: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/models/{_seg(model)}/policy"))

    def record_check(self, ref: str, dataset: str | None, result: NewCheckResult) -> CheckResult:
        body = {
            "dataset": dataset,
            "suite": result.suite,
            "kind": result.kind,
            "metrics": dict(result.metrics),
            "passed": result.passed,
            "failures": list(result.failures),
            "report": dict(result.report),
        }
        return CheckResult.from_dict(self._call("POST", _version_path(ref, "checks"), json=body))

    def checks(self, ref: str) -> list[CheckResult]:
        return [CheckResult.from_dict(d) for d in self._items(_version_path(ref, "checks"))]

    def decide(
        self,
        ref: str,
        stage: str,
        decision: str,
        comment: str | None,
        expect_digest: str | None,
    ) -> Approval:
        body = {
            "stage": stage,
            "decision": decision,
            "comment": comment,
            "expect_digest": expect_digest,
        }
        return Approval.from_dict(self._call("POST", _version_path(ref, "approvals"), json=body))

    def approvals(self, ref: str) -> list[Approval]:
        return [Approval.from_dict(d) for d in self._items(_version_path(ref, "approvals"))]

    def gate(self, ref: str, stage: str, promoter: str | None = None) -> GateResult:
        params = {"stage": stage, **({"promoter": promoter} if promoter else {})}
        return gate_result(self._call("GET", _version_path(ref, "gate"), params=params))

    def promotion(
        self,
        ref: str,
        to: str,
        reason: str | None = None,
        expect: int | None = None,
        override: bool = False,
    ) -> Promotion:
        parsed = parse_ref(ref)
        body = {
            "version": parsed.value,
            "to": to,
            "reason": reason,
            "expect": expect,
            "override": override,
        }
        found = self._call("POST", f"/models/{_seg(parsed.model)}/promote", json=body)
        return promotion(found)

    def attestations(self, ref: str) -> list[Attestation]:
        return [Attestation.from_dict(d) for d in self._items(_version_path(ref, "attestations"))]

    def evidence(self, ref: str, stage: str | None = None) -> Evidence:
        params = {"stage": stage} if stage else {}
        found = self._call("GET", _version_path(ref, "evidence"), params=params)
        return Evidence(
            attestation=Attestation.from_dict(found["attestation"]),
            envelope=base64.b64decode(found["envelope"]),
            public_key=found["public_key"].encode("ascii"),
            manifest=base64.b64decode(found["manifest"]),
            policy=found["policy"],
            checks=[CheckResult.from_dict(c) for c in found["checks"]],
            approvals=[Approval.from_dict(a) for a in found["approvals"]],
            reports={d: base64.b64decode(b) for d, b in found["reports"].items()},
        )

    def card(self, ref: str, fmt: str = "md") -> str:
        return self._text(_version_path(ref, "card"), {"format": fmt})

    def governance_report(self, model: str | None = None, fmt: str = "md") -> str:
        params = {"format": fmt, **({"model": model} if model else {})}
        return self._text("/reports/governance", params)


def _version_path(ref: str, what: str) -> str:
    parsed = parse_ref(ref)
    return f"/models/{_seg(parsed.model)}/versions/{_seg(parsed.value)}/{what}"


def evaluation(data: Mapping[str, Any]) -> Evaluation:
    rules = tuple(
        RuleOutcome(r["kind"], r["rule"], r["passed"], r["detail"], tuple(r.get("evidence", ())))
        for r in data["rules"]
    )
    return Evaluation(data["stage"], rules, tuple(data.get("notes", ())))


def gate_result(data: Mapping[str, Any]) -> GateResult:
    return GateResult(
        data["model"],
        data["number"],
        data["digest"],
        data["stage"],
        data["policy"],
        evaluation(data),
    )


def promotion(data: Mapping[str, Any]) -> Promotion:
    found = data["evaluation"]
    gate = GateResult(
        data["model"], data["new"], data["digest"], data["alias"], data["policy"], evaluation(found)
    )
    attestation = data.get("attestation")
    return Promotion(
        wire.alias_event(dict(data)),
        gate,
        Attestation.from_dict(attestation) if attestation else None,
    )
