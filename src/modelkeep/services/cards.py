"""Model cards and the governance report, from registry facts only.

This module gathers the facts (``card_facts``); ``domain/cards.py`` builds the document and
maps it to the NIST AI RMF functions, ``render/cards.py`` writes it as Markdown or HTML.
Nothing here is typed in by hand: a gap in the evidence shows as a gap in the card.
"""

from __future__ import annotations

from typing import Any

from modelkeep.domain import access
from modelkeep.domain.names import STAGES
from modelkeep.domain.runs import RUN_ID
from modelkeep.domain.versions import Version
from modelkeep.errors import ModelkeepError
from modelkeep.render.cards import render_card, render_governance_report
from modelkeep.services import (
    aliases,
    audit,
    datasets,
    models,
    policies,
    tracking,
    versions,
)
from modelkeep.services.context import ServiceContext


def card(ctx: ServiceContext, ref: str, fmt: str = "md") -> str:
    return render_card(card_facts(ctx, ref), fmt)


def governance_report(ctx: ServiceContext, model: str | None = None, fmt: str = "md") -> str:
    """Every model the actor may read (or ``model``): its production version, else its
    newest, mapped to GOVERN, MAP, MEASURE and MANAGE with what is missing."""
    names = [model] if model is not None else [m.name for m in models.list_models(ctx)]
    facts = []
    for name in names:
        ref = _reported_ref(ctx, name)
        if ref is not None:
            facts.append(card_facts(ctx, ref))
    return render_governance_report(facts, fmt, ctx.clock().isoformat())


def _reported_ref(ctx: ServiceContext, model: str) -> str | None:
    found = models.get_model(ctx, model)
    if found.latest is None:
        return None
    with ctx.store.transaction() as tx:
        in_production = tx.aliases.key(model, "production")
    return f"{model}@{in_production.number if in_production else found.latest}"


def card_facts(ctx: ServiceContext, ref: str) -> dict[str, Any]:
    """The facts a card shows, as plain data (shapes in domain/cards.py)."""
    version = versions.get_version(ctx, ref)
    model = models.get_model(ctx, version.model)
    run = _run(ctx, version)
    dataset_refs = list(
        dict.fromkeys((*version.metadata.datasets, *(run or {}).get("datasets", [])))
    )
    with ctx.store.transaction() as tx:
        record, _ = policies.policy_in_force(tx)
        checks = tx.governance.check_results(version.model, version.number)
        approvals = [
            a
            for a in tx.governance.approvals(version.model, version.number)
            if a.version_digest == version.digest
        ]
        attestations = tx.governance.attestations(version.model, version.number)
    return {
        "model": {
            "name": model.name,
            "description": model.description,
            "created_by": model.created_by,
            "created_at": model.created_at.isoformat(),
        },
        "version": version.to_dict(),
        "run": _run_facts(run),
        "datasets": [_dataset(ctx, r) for r in dataset_refs],
        "checks": [c.to_dict() for c in checks],
        "approvals": [a.to_dict() for a in approvals],
        "stage_history": _stage_history(ctx, version),
        "attestations": [a.to_dict() for a in attestations],
        "policy": {"version": record.number, "digest": record.digest} if record else None,
        "audit_ok": _audit_ok(ctx),
    }


def _run(ctx: ServiceContext, version: Version) -> dict[str, Any] | None:
    run_id = version.metadata.run
    if run_id is None or not RUN_ID.fullmatch(run_id):
        return None
    try:
        return tracking.get_run(ctx, run_id).to_dict()
    except ModelkeepError:
        return None  # the run is not readable by this actor: the card says so (no run)


def _run_facts(run: dict[str, Any] | None) -> dict[str, Any] | None:
    if run is None:
        return None
    code, env = run["code"], run["environment"]
    return {
        "id": run["id"],
        "experiment": run["experiment"],
        "status": run["status"],
        "commit": code.get("commit"),
        "branch": code.get("branch"),
        "dirty": code.get("dirty"),
        "python": env.get("python"),
        "packages_digest": env.get("packages_digest"),
        "params": run["params"],
        "metrics": run["metrics"],
        "datasets": run["datasets"],
    }


def _dataset(ctx: ServiceContext, ref: str) -> dict[str, Any]:
    try:
        found = datasets.get_version(ctx, ref)
    except ModelkeepError:
        return {"ref": ref, "digest": None}  # named, but not registered here
    profiles = list(found.profiles.values())
    rows = sum(p.get("rows") or 0 for p in profiles if isinstance(p, dict)) if profiles else None
    columns: list[dict[str, Any]] = next(
        (p.get("columns", []) for p in profiles if isinstance(p, dict) and p.get("columns")), []
    )
    return {
        "ref": found.ref,
        "digest": found.digest,
        "rows": rows,
        "source": found.source,
        "steps": list(found.steps),
        "sampling": found.sampling,
        "columns": [{"name": c.get("name"), "type": c.get("type")} for c in columns],
    }


def _stage_history(ctx: ServiceContext, version: Version) -> list[dict[str, Any]]:
    """Moves of the stages to or from this version."""
    events = []
    for stage in STAGES:
        for event in aliases.alias_history(ctx, version.model, stage):
            if version.number in (event.old, event.new):
                events.append(event.to_dict())
    return sorted(events, key=lambda e: str(e["at"]))


def _audit_ok(ctx: ServiceContext) -> bool | None:
    """Whether the audit chain verifies; None when the actor may not read all of it."""
    if not ctx.can(access.READ, None):
        return None
    return audit.verify(ctx).ok
