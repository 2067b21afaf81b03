"""Governance over HTTP, and the attestation bundle an export writes.

``HttpGovernance`` calls the server's routes (entrypoints/api/governance_routes.py) and
rebuilds the same records from JSON that ``LocalGovernance`` (client/local.py) gets from
services/governance.py, so the contract tests run one suite over both.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from typing import Any

from modelkeep.client import wire
from modelkeep.client.wire import path_segment as _seg
from modelkeep.domain.governance import (
    Approval,
    Attestation,
    CheckResult,
    Evidence,
    GateResult,
    NewCheckResult,
    PolicyRecord,
    Promotion,
)
from modelkeep.domain.names import parse_ref
from modelkeep.domain.policy_eval import Evaluation, RuleOutcome


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
            "source": result.source,
        }
        return CheckResult.from_dict(self._call("POST", version_path(ref, "checks"), json=body))

    def checks(self, ref: str) -> list[CheckResult]:
        return [CheckResult.from_dict(d) for d in self._items(version_path(ref, "checks"))]

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
        return Approval.from_dict(self._call("POST", version_path(ref, "approvals"), json=body))

    def approvals(self, ref: str) -> list[Approval]:
        return [Approval.from_dict(d) for d in self._items(version_path(ref, "approvals"))]

    def gate(self, ref: str, stage: str, promoter: str | None = None) -> GateResult:
        params = {"stage": stage, **({"promoter": promoter} if promoter else {})}
        return gate_result(self._call("GET", version_path(ref, "gate"), params=params))

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
        return [Attestation.from_dict(d) for d in self._items(version_path(ref, "attestations"))]

    def evidence(self, ref: str, stage: str | None = None) -> Evidence:
        params = {"stage": stage} if stage else {}
        found = self._call("GET", version_path(ref, "evidence"), params=params)
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
        return self._text(version_path(ref, "card"), {"format": fmt})

    def governance_report(self, model: str | None = None, fmt: str = "md") -> str:
        params = {"format": fmt, **({"model": model} if model else {})}
        return self._text("/reports/governance", params)


def version_path(ref: str, what: str) -> str:
    """``/models/NAME/versions/REF/WHAT``, each part escaped."""
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
