"""Policy, check results, approvals, gates, attestations and model cards over HTTP.

A promotion itself is ``POST /models/{name}/promote`` (routes.py); it answers the move
with the policy evaluation and the signed attestation. ``GET .../evidence`` hands out an
attestation with everything needed to verify it offline (``modelkeep attest export``).
"""

from __future__ import annotations

import base64
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.responses import Response

from modelkeep.domain.governance import NewCheckResult
from modelkeep.domain.names import check_model_name
from modelkeep.entrypoints.api import schemas
from modelkeep.entrypoints.api.paging import Cursor, Limit, page
from modelkeep.entrypoints.api.routes import Reg
from modelkeep.services import attestations, cards, governance

router = APIRouter(tags=["governance"])

Format = Literal["md", "html"]


def _ref(name: str, ref: str) -> str:
    return f"{check_model_name(name)}@{ref}"


@router.get("/policy")
def get_policy(reg: Reg) -> dict[str, Any]:
    """The policy in force (``policy`` null: none, every promotion needs only its role)."""
    record = governance.current_policy(reg)
    return {"policy": record.to_dict() if record else None}


@router.put("/policy")
def set_policy(reg: Reg, body: schemas.SetPolicy) -> dict[str, Any]:
    """Store a new version of the policy (a global admin); refused with the line if bad."""
    return governance.set_policy(reg, body.document).to_dict()


@router.get("/policy/history")
def policy_history(reg: Reg, limit: Limit = 100, after: Cursor | None = None) -> dict[str, Any]:
    found = governance.policy_history(reg)
    return page(((p.number, p.to_dict()) for p in found), limit, after)


@router.get("/models/{name}/policy")
def model_policy(reg: Reg, name: str) -> dict[str, Any]:
    """The rules that apply to this model: the registry's, with its overrides."""
    return governance.effective_policy(reg, check_model_name(name))


@router.post("/models/{name}/versions/{ref}/checks", status_code=201)
def record_check(reg: Reg, name: str, ref: str, body: schemas.CheckResultIn) -> dict[str, Any]:
    """Attach a check result (and its report) to the version; results never change."""
    result = NewCheckResult(
        suite=body.suite,
        kind=body.kind,
        metrics=body.metrics,
        passed=body.passed,
        failures=tuple(body.failures),
        report=body.report,
        source=body.source,
    )
    return governance.record_check(reg, _ref(name, ref), body.dataset, result).to_dict()


@router.get("/models/{name}/versions/{ref}/checks")
def list_checks(
    reg: Reg, name: str, ref: str, limit: Limit = 1000, after: Cursor | None = None
) -> dict[str, Any]:
    found = governance.list_checks(reg, _ref(name, ref))
    return page(((c.id, c.to_dict()) for c in found), limit, after)


@router.post("/models/{name}/versions/{ref}/approvals", status_code=201)
def review(reg: Reg, name: str, ref: str, body: schemas.Decision) -> dict[str, Any]:
    """Approve or reject the version for a stage (bound to its digest and evidence)."""
    return governance.review(
        reg, _ref(name, ref), body.stage, body.decision, body.comment, body.expect_digest
    ).to_dict()


@router.get("/models/{name}/versions/{ref}/approvals")
def list_approvals(
    reg: Reg, name: str, ref: str, limit: Limit = 1000, after: Cursor | None = None
) -> dict[str, Any]:
    found = governance.list_approvals(reg, _ref(name, ref))
    return page(((a.id, a.to_dict()) for a in found), limit, after)


@router.get("/models/{name}/versions/{ref}/gate")
def gate(
    reg: Reg,
    name: str,
    ref: str,
    stage: Literal["staging", "production"],
    promoter: str | None = None,
) -> dict[str, Any]:
    """Would a promotion pass the policy? Every rule, met or not; changes nothing."""
    return governance.gate(reg, _ref(name, ref), stage, promoter).to_dict()


@router.get("/models/{name}/versions/{ref}/attestations")
def list_attestations(
    reg: Reg, name: str, ref: str, limit: Limit = 1000, after: Cursor | None = None
) -> dict[str, Any]:
    found = attestations.list_attestations(reg, _ref(name, ref))
    return page(((a.id, a.to_dict()) for a in found), limit, after)


@router.get("/models/{name}/versions/{ref}/evidence")
def evidence(
    reg: Reg, name: str, ref: str, stage: Literal["staging", "production"] | None = None
) -> dict[str, Any]:
    """The newest attestation with its evidence: envelope, public key, manifest, policy,
    check and approval records, reports (bytes base64-encoded)."""
    found = attestations.evidence(reg, _ref(name, ref), stage)
    return {
        "attestation": found.attestation.to_dict(),
        "envelope": _b64(found.envelope),
        "public_key": found.public_key.decode("ascii"),
        "manifest": _b64(found.manifest),
        "policy": found.policy,
        "checks": [c.to_dict() for c in found.checks],
        "approvals": [a.to_dict() for a in found.approvals],
        "reports": {digest: _b64(data) for digest, data in found.reports.items()},
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


DOCUMENT: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The document: Markdown, or a standalone HTML page.",
        "content": {
            "text/markdown": {"schema": {"type": "string"}},
            "text/html": {"schema": {"type": "string"}},
        },
    }
}
"""A rendered document; errors are JSON like everywhere (``response_class=Response``
keeps the error responses documented as ``application/json``)."""


@router.get("/models/{name}/versions/{ref}/card", response_class=Response, responses=DOCUMENT)
def card(reg: Reg, name: str, ref: str, format: Format = "md") -> Response:
    """The model card, from registry facts, as Markdown or a standalone HTML page."""
    return _document(cards.card(reg, _ref(name, ref), format), format)


@router.get("/reports/governance", response_class=Response, responses=DOCUMENT)
def governance_report(reg: Reg, model: str | None = None, format: Format = "md") -> Response:
    """Each model's evidence mapped to the NIST AI RMF functions, with what is missing."""
    return _document(cards.governance_report(reg, model, format), format)


def _document(text: str, format: Format) -> Response:
    media = "text/html" if format == "html" else "text/markdown"
    return Response(text, media_type=f"{media}; charset=utf-8")
