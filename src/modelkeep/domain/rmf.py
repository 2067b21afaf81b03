"""The evidence a model version has, mapped to the four NIST AI RMF functions.

GOVERN (a policy in force, approvals with separation of duties, a verified audit chain,
signed attestations), MAP (intended use, limitations, data lineage, the run and commit),
MEASURE (evaluation, fairness and robustness checks present and passing, metrics) and
MANAGE (stage history, an attested promotion, a rollback target, overrides justified).
Each function lists what is ``met`` and what is ``missing``, in words: a missing line is a
gap a reviewer should close or accept. The input is the *card facts* dict described in
``modelkeep.domain.cards``; any optional key may be absent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FUNCTIONS = ("GOVERN", "MAP", "MEASURE", "MANAGE")
REQUIRED_CHECK_KINDS = ("evaluation", "fairness", "robustness")
STAGES = ("production", "staging")
APPROVED = ("approve", "approved")


# reading card facts -----------------------------------------------------------------------


def section(facts: Mapping[str, Any], key: str) -> dict[str, Any]:
    """``facts[key]`` if it is a dict, else an empty one."""
    value = facts.get(key)
    return dict(value) if isinstance(value, Mapping) else {}


def items(facts: Mapping[str, Any], key: str) -> list[dict[str, Any]]:
    """``facts[key]``'s dict entries; an absent key or None is an empty list."""
    value = facts.get(key)
    if not isinstance(value, list | tuple):
        return []
    return [dict(item) for item in value if isinstance(item, Mapping)]


def metadata(facts: Mapping[str, Any]) -> dict[str, Any]:
    return section(section(facts, "version"), "metadata")


def meta(facts: Mapping[str, Any]) -> dict[str, Any]:
    return section(metadata(facts), "meta")


def stated(value: Any) -> str | None:
    """A free-text fact, or None when it is absent or blank."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def intended_use(facts: Mapping[str, Any]) -> tuple[str | None, str]:
    """The intended use and where it came from (``meta.intended_use``, else the model
    description); ``(None, "")`` when neither says anything."""
    own = stated(meta(facts).get("intended_use"))
    if own:
        return own, "meta.intended_use"
    description = stated(section(facts, "model").get("description"))
    if description:
        return description, "the model description"
    return None, ""


def current_stage(facts: Mapping[str, Any]) -> str | None:
    """The most advanced stage the version is in (production before staging)."""
    aliases = section(facts, "version").get("aliases") or []
    return next((stage for stage in STAGES if stage in aliases), None)


def version_name(facts: Mapping[str, Any]) -> str:
    version = section(facts, "version")
    model = version.get("model") or section(facts, "model").get("name") or "?"
    return f"{model}@{version.get('number', '?')}"


def is_approval(approval: Mapping[str, Any]) -> bool:
    return str(approval.get("decision", "")).lower() in APPROVED


# the assessment ---------------------------------------------------------------------------


class _Lines:
    def __init__(self) -> None:
        self.met: list[str] = []
        self.missing: list[str] = []

    def either(self, ok: bool, met: str, missing: str) -> None:
        (self.met if ok else self.missing).append(met if ok else missing)

    def to_dict(self) -> dict[str, list[str]]:
        return {"met": self.met, "missing": self.missing}


def rmf_assessment(facts: Mapping[str, Any]) -> dict[str, dict[str, list[str]]]:
    """``{"GOVERN": {"met": [...], "missing": [...]}, "MAP": ..., "MEASURE": ...,
    "MANAGE": ...}`` for one version's card facts."""
    return {
        "GOVERN": _govern(facts).to_dict(),
        "MAP": _map(facts).to_dict(),
        "MEASURE": _measure(facts).to_dict(),
        "MANAGE": _manage(facts).to_dict(),
    }


def _govern(facts: Mapping[str, Any]) -> _Lines:
    lines = _Lines()
    policy = facts.get("policy")
    lines.either(
        isinstance(policy, Mapping),
        f"policy version {_get(policy, 'version')} in force ({_get(policy, 'digest')})",
        "no promotion policy in force",
    )
    _approvals(facts, lines)
    audit_ok = facts.get("audit_ok")
    if audit_ok is None:
        lines.missing.append("the audit chain was not verified for this report")
    else:
        lines.either(audit_ok is True, "audit chain verified", "the audit chain does NOT verify")
    count = len(items(facts, "attestations"))
    lines.either(
        count > 0, f"{count} signed promotion attestation(s)", "no signed promotion attestation"
    )
    return lines


def _approvals(facts: Mapping[str, Any], lines: _Lines) -> None:
    approvals = [a for a in items(facts, "approvals") if is_approval(a)]
    if not approvals:
        lines.missing.append("no recorded approval")
        return
    author = section(facts, "version").get("created_by")
    for approval in approvals:
        user, stage = approval.get("user"), approval.get("stage") or "a stage"
        lines.either(
            user != author,
            f"approved for {stage} by {user}, who did not create the version",
            f"approved for {stage} by {user}, who created the version: no separation of duties",
        )


def _map(facts: Mapping[str, Any]) -> _Lines:
    lines = _Lines()
    use, source = intended_use(facts)
    lines.either(bool(use), f"intended use stated (from {source})", "intended use not stated")
    lines.either(
        bool(stated(meta(facts).get("limitations"))),
        "limitations stated",
        "limitations not stated",
    )
    _datasets(facts, lines)
    _run_and_commit(facts, lines)
    return lines


def _datasets(facts: Mapping[str, Any], lines: _Lines) -> None:
    datasets = items(facts, "datasets")
    named = metadata(facts).get("datasets") or []
    if not datasets:
        lines.missing.append(
            f"datasets named ({', '.join(map(str, named))}) but none linked with provenance"
            if named
            else "no training dataset linked"
        )
        return
    for dataset in datasets:
        ref = dataset.get("ref", "?")
        lacking = [k for k in ("digest", "source") if not stated(dataset.get(k))]
        lines.either(
            not lacking,
            f"dataset {ref} with digest and source",
            f"dataset {ref} has no {' or '.join(lacking)} recorded",
        )


def _run_and_commit(facts: Mapping[str, Any], lines: _Lines) -> None:
    run = section(facts, "run")
    commit = stated(run.get("commit")) or stated(metadata(facts).get("commit"))
    lines.either(bool(commit), f"code commit {commit} recorded", "no code commit recorded")
    lines.either(bool(run), f"training run {run.get('id')} recorded", "no training run linked")
    if run.get("dirty"):
        lines.missing.append(f"run {run.get('id')} was trained from uncommitted changes")


def _measure(facts: Mapping[str, Any]) -> _Lines:
    lines = _Lines()
    checks = items(facts, "checks")
    kinds = list(REQUIRED_CHECK_KINDS)
    kinds += sorted({str(c.get("kind")) for c in checks} - set(kinds))
    for kind in kinds:
        _check_kind(kind, [c for c in checks if str(c.get("kind")) == kind], lines)
    metrics = section(metadata(facts), "metrics")
    lines.either(bool(metrics), f"{len(metrics)} metric(s) recorded", "no metrics recorded")
    return lines


def _check_kind(kind: str, checks: list[dict[str, Any]], lines: _Lines) -> None:
    if not checks:
        lines.missing.append(f"no {kind} check results")
        return
    for check in checks:
        suite = check.get("suite", "?")
        failures = "; ".join(str(f) for f in check.get("failures") or [])
        lines.either(
            check.get("passed") is True,
            f"{kind} check {suite} passed",
            f"{kind} check {suite} failed" + (f": {failures}" if failures else ""),
        )


def _manage(facts: Mapping[str, Any]) -> _Lines:
    lines = _Lines()
    history = items(facts, "stage_history")
    lines.either(
        bool(history), f"{len(history)} stage change(s) recorded", "no stage history recorded"
    )
    attested = [a for a in items(facts, "attestations") if a.get("stage") in STAGES]
    lines.either(
        bool(attested),
        "promotion to " + ", ".join(sorted({str(a["stage"]) for a in attested})) + " attested",
        "no attested promotion",
    )
    _rollback(facts, history, lines)
    _overrides(facts, lines)
    return lines


def _rollback(facts: Mapping[str, Any], history: list[dict[str, Any]], lines: _Lines) -> None:
    stage = current_stage(facts)
    if stage is None:
        lines.missing.append("the version is in no stage, so there is no rollback target")
        return
    moves = [h for h in history if h.get("alias") == stage]
    previous = moves[-1].get("old") if moves else None
    lines.either(
        previous is not None,
        f"rollback available: {stage} pointed to {previous} before",
        f"no previous {stage} target to roll back to",
    )


def _overrides(facts: Mapping[str, Any], lines: _Lines) -> None:
    overrides = [a for a in items(facts, "attestations") if a.get("override")]
    if not overrides:
        lines.met.append("no admin overrides")
        return
    for attestation in overrides:
        reason = stated(_get(attestation.get("override"), "reason"))
        stage = attestation.get("stage")
        lines.either(
            bool(reason),
            f"admin override of the {stage} policy, justified: {reason}",
            f"admin override of the {stage} policy without a reason",
        )


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, Mapping) else None


def missing_count(assessment: Mapping[str, Mapping[str, list[str]]], function: str) -> int:
    return len(assessment[function]["missing"])
