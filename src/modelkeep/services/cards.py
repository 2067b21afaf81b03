"""Model cards and the governance report, from registry facts only.

This module gathers the facts (``card_facts``); ``domain/cards.py`` renders them and maps
them to the NIST AI RMF functions. Nothing here is typed in by hand: a gap in the
evidence shows as a gap in the card.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelkeep.domain import access
from modelkeep.domain.names import STAGES
from modelkeep.domain.runs import RUN_ID
from modelkeep.domain.versions import Version
from modelkeep.errors import ModelkeepError
from modelkeep.render.cards import render_card, render_governance_report
from modelkeep.services import datasets, governance, tracking

if TYPE_CHECKING:
    from modelkeep.services.registry import Registry


def card(registry: Registry, ref: str, fmt: str = "md") -> str:
    return render_card(card_facts(registry, ref), fmt)


def governance_report(registry: Registry, model: str | None = None, fmt: str = "md") -> str:
    """Every model the actor may read (or ``model``): its production version, else its
    newest, mapped to GOVERN, MAP, MEASURE and MANAGE with what is missing."""
    names = [model] if model is not None else [m.name for m in registry.list_models()]
    facts = []
    for name in names:
        ref = _reported_ref(registry, name)
        if ref is not None:
            facts.append(card_facts(registry, ref))
    return render_governance_report(facts, fmt, registry.clock().isoformat())


def _reported_ref(registry: Registry, model: str) -> str | None:
    found = registry.get_model(model)
    if found.latest is None:
        return None
    with registry.store.transaction() as tx:
        in_production = tx.alias_key(model, "production")
    return f"{model}@{in_production.number if in_production else found.latest}"


def card_facts(registry: Registry, ref: str) -> dict[str, Any]:
    """The facts a card shows, as plain data (shapes in domain/cards.py)."""
    version = registry.get_version(ref)
    model = registry.get_model(version.model)
    run = _run(registry, version)
    dataset_refs = list(
        dict.fromkeys((*version.metadata.datasets, *(run or {}).get("datasets", [])))
    )
    with registry.store.transaction() as tx:
        record, _ = governance.policy_in_force(tx)
        checks = tx.check_results(version.model, version.number)
        approvals = [
            a
            for a in tx.approvals(version.model, version.number)
            if a.version_digest == version.digest
        ]
        attestations = tx.attestations(version.model, version.number)
    return {
        "model": {
            "name": model.name,
            "description": model.description,
            "created_by": model.created_by,
            "created_at": model.created_at.isoformat(),
        },
        "version": version.to_dict(),
        "run": _run_facts(run),
        "datasets": [_dataset(registry, r) for r in dataset_refs],
        "checks": [c.to_dict() for c in checks],
        "approvals": [a.to_dict() for a in approvals],
        "stage_history": _stage_history(registry, version),
        "attestations": [a.to_dict() for a in attestations],
        "policy": {"version": record.number, "digest": record.digest} if record else None,
        "audit_ok": _audit_ok(registry),
    }


def _run(registry: Registry, version: Version) -> dict[str, Any] | None:
    run_id = version.metadata.run
    if run_id is None or not RUN_ID.fullmatch(run_id):
        return None
    try:
        return tracking.get_run(registry, run_id).to_dict()
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


def _dataset(registry: Registry, ref: str) -> dict[str, Any]:
    try:
        found = datasets.get_version(registry, ref)
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


def _stage_history(registry: Registry, version: Version) -> list[dict[str, Any]]:
    """Moves of the stages to or from this version."""
    events = []
    for stage in STAGES:
        for event in registry.alias_history(version.model, stage):
            if version.number in (event.old, event.new):
                events.append(event.to_dict())
    return sorted(events, key=lambda e: str(e["at"]))


def _audit_ok(registry: Registry) -> bool | None:
    """Whether the audit chain verifies; None when the actor may not read all of it."""
    if not registry.can(access.READ, None):
        return None
    return registry.audit_verify().ok
