"""Model cards and governance reports: what they say, as a document, and its Markdown.

Pure documents from *card facts*, a plain dict the services build for one version. Every
key but ``version`` may be absent (or None); what is missing is shown as a gap, never
invented::

    {"model": {"name", "description", "created_by", "created_at"},
     "version": {"model", "number", "semver", "digest", "status", "created_at",
                 "created_by", "files": [{"path", "size", "digest"}],
                 "metadata": {"params": {}, "metrics": {}, "datasets": [], "commit",
                              "seed", "run", "meta": {}},
                 "aliases": []},
     "run": None | {"id", "experiment", "status", "commit", "branch", "dirty", "python",
                    "packages_digest", "params": {}, "metrics": {name: final value}},
     "datasets": [{"ref": "transactions@3", "digest", "rows", "source", "steps": [],
                   "sampling", "columns": [{"name", "type"}]}],
     "checks": [{"id", "suite", "kind", "metrics": {}, "passed", "failures": [],
                 "dataset", "dataset_digest", "report_digest", "digest", "created_by",
                 "created_at", "producer"}],
     "approvals": [{"id", "stage", "decision", "user", "comment", "created_at", "digest"}],
     "stage_history": [{"alias", "action", "old", "new", "actor", "at", "reason"}],
                      (oldest first)
     "attestations": [{"stage", "digest" (or "envelope_digest"), "actor", "at",
                       "override": None | {"reason"}}],
     "policy": None | {"version", "digest"},
     "audit_ok": bool | None}

Intended use, limitations and out-of-scope uses come from ``version.metadata.meta``
(``intended_use``, ``limitations``, ``out_of_scope``); intended use falls back to the
model description. The NIST AI RMF mapping is ``modelkeep.domain.rmf``.

Every format is built from one document model (sections of paragraphs, lists, tables and
alerts) so that they always say the same thing: ``to_markdown`` here, HTML (with its
CSS) in ``modelkeep.render.cards``, which also picks the format. Markdown escapes ``|``
in table cells and keeps cells on one line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from modelkeep.domain.provenance import Producer
from modelkeep.domain.rmf import (
    FUNCTIONS,
    REQUIRED_CHECK_KINDS,
    current_stage,
    intended_use,
    items,
    meta,
    metadata,
    missing_count,
    rmf_assessment,
    section,
    stated,
    version_name,
)

__all__ = ["Document", "card_document", "governance_report_document", "rmf_assessment"]

NOT_STATED = "not stated"
NONE = "—"
APPROVAL_FIELDS = ("stage", "decision", "user", "comment", "created_at", "digest")


# the document model -----------------------------------------------------------------------


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Bullets:
    lines: Sequence[str]


@dataclass(frozen=True)
class Table:
    headers: Sequence[str]
    rows: Sequence[Sequence[str]]
    empty: str = "none recorded"


@dataclass(frozen=True)
class Alert:
    """Something a reader must not miss (an admin override, a failed audit)."""

    text: str


Block = Para | Heading | Bullets | Table | Alert


@dataclass
class Section:
    title: str
    blocks: list[Block] = field(default_factory=list)


@dataclass(frozen=True)
class Document:
    """A card or a report: a title and its sections, ready for a renderer."""

    title: str
    sections: Sequence[Section]


def text(value: Any) -> str:
    """One fact as display text: None as a dash, booleans as yes/no, JSON for the rest."""
    if value is None or value == "":
        return NONE
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


# Markdown ---------------------------------------------------------------------------------


def to_markdown(title: str, sections: Sequence[Section]) -> str:
    out = [f"# {_md_line(title)}", ""]
    for part in sections:
        out += [f"## {_md_line(part.title)}", ""]
        for block in part.blocks:
            out += [*_md_block(block), ""]
    return "\n".join(out).rstrip("\n") + "\n"


def _md_block(block: Block) -> list[str]:
    if isinstance(block, Para):
        return [block.text]
    if isinstance(block, Heading):
        return [f"### {_md_line(block.text)}"]
    if isinstance(block, Bullets):
        return [f"- {_md_line(line)}" for line in block.lines]
    if isinstance(block, Alert):
        return [f"> **{_md_line(block.text)}**"]
    if not block.rows:
        return [f"_{block.empty}_"]
    lines = [_md_row(block.headers), "|" + "---|" * len(block.headers)]
    return lines + [_md_row(row) for row in block.rows]


def _md_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_md_cell(c) for c in cells) + " |"


def _md_cell(cell: str) -> str:
    return _md_line(cell).replace("\\", "\\\\").replace("|", "\\|")


def _md_line(value: str) -> str:
    return " ".join(value.splitlines())


# the model card ---------------------------------------------------------------------------


def card_document(facts: Mapping[str, Any]) -> Document:
    """The model card of one version."""
    return Document(f"Model card: {version_name(facts)}", card_sections(facts))


def card_sections(facts: Mapping[str, Any]) -> list[Section]:
    return [
        _header(facts),
        _intended_use(facts),
        _lineage(facts),
        _hyperparameters(facts),
        _metrics(facts),
        _evaluation(facts),
        _approvals(facts),
        _stage_history(facts),
        _attestations(facts),
        _provenance(facts),
        _gaps(facts),
    ]


def _header(facts: Mapping[str, Any]) -> Section:
    model, version = section(facts, "model"), section(facts, "version")
    aliases = [str(a) for a in version.get("aliases") or []]
    rows = [
        ("Model", text(version.get("model") or model.get("name"))),
        ("Version", text(version.get("number"))),
        ("Semver", text(version.get("semver"))),
        ("Digest", text(version.get("digest"))),
        ("Status", text(version.get("status"))),
        ("Stage", text(current_stage(facts) or "none")),
        ("Aliases", ", ".join(aliases) or NONE),
        ("Created", f"{text(version.get('created_at'))} by {text(version.get('created_by'))}"),
        ("Description", text(model.get("description"))),
    ]
    return Section("Summary", [Table(("Field", "Value"), rows)])


def _intended_use(facts: Mapping[str, Any]) -> Section:
    use, source = intended_use(facts)
    own = meta(facts)
    lines = [
        f"Intended use: {use} (from {source})" if use else f"Intended use: {NOT_STATED} (gap)",
        _stated_line("Limitations", own.get("limitations")),
        _stated_line("Out of scope", own.get("out_of_scope")),
    ]
    return Section("Intended use & limitations", [Bullets(lines)])


def _stated_line(label: str, value: Any) -> str:
    said = stated(value if isinstance(value, str) or value is None else text(value))
    return f"{label}: {said}" if said else f"{label}: {NOT_STATED} (gap)"


def _lineage(facts: Mapping[str, Any]) -> Section:
    rows = [
        (
            text(d.get("ref")),
            text(d.get("digest")),
            text(d.get("rows")),
            text(d.get("source")),
            ", ".join(str(s) for s in d.get("steps") or []) or NONE,
            text(d.get("sampling")),
            _columns(d.get("columns")),
        )
        for d in items(facts, "datasets")
    ]
    headers = ("Dataset", "Digest", "Rows", "Source", "Steps", "Sampling", "Columns")
    named = ", ".join(str(d) for d in metadata(facts).get("datasets") or [])
    empty = f"datasets named but not linked: {named}" if named else "no dataset linked (gap)"
    blocks: list[Block] = [Table(headers, rows, empty), Heading("Training run")]
    blocks.append(_run_block(section(facts, "run")))
    return Section("Training data & lineage", blocks)


def _columns(columns: Any) -> str:
    if not isinstance(columns, list) or not columns:
        return NONE
    return ", ".join(
        f"{c.get('name')}: {c.get('type')}" if isinstance(c, Mapping) else str(c) for c in columns
    )


def _run_block(run: Mapping[str, Any]) -> Block:
    if not run:
        return Para("No training run linked (gap).")
    fields = ("id", "experiment", "status", "commit", "branch", "dirty", "python")
    lines = [f"{name}: {text(run.get(name))}" for name in fields]
    lines.append(f"packages lock digest: {text(run.get('packages_digest'))}")
    return Bullets(lines)


def _hyperparameters(facts: Mapping[str, Any]) -> Section:
    rows = _named_values(section(metadata(facts), "params"), "version")
    rows += _named_values(section(section(facts, "run"), "params"), "run")
    return Section("Hyperparameters", [Table(("Name", "Value", "Recorded on"), rows)])


def _named_values(values: Mapping[str, Any], where: str) -> list[tuple[str, str, str]]:
    """Rows of (name, value, where it was recorded), by name."""
    return [(str(k), text(v), where) for k, v in sorted(values.items())]


def _metrics(facts: Mapping[str, Any]) -> Section:
    rows = _named_values(section(metadata(facts), "metrics"), "version")
    rows += _named_values(section(section(facts, "run"), "metrics"), "run (final)")
    for check in items(facts, "checks"):
        rows += _named_values(section(check, "metrics"), f"check {text(check.get('suite'))}")
    return Section("Metrics", [Table(("Metric", "Value", "Source"), rows)])


def _evaluation(facts: Mapping[str, Any]) -> Section:
    checks = items(facts, "checks")
    kinds = list(REQUIRED_CHECK_KINDS)
    kinds += sorted({str(c.get("kind")) for c in checks} - set(kinds))
    headers = (
        "Suite",
        "Result",
        "Failures",
        "Dataset",
        "Dataset digest",
        "Produced by",
        "Report",
        "Record",
    )
    blocks: list[Block] = []
    for kind in kinds:
        rows = [_check_row(c) for c in checks if str(c.get("kind")) == kind]
        blocks += [Heading(kind.capitalize()), Table(headers, rows, f"no {kind} check (gap)")]
    return Section("Evaluation, fairness & robustness", blocks)


def _check_row(check: Mapping[str, Any]) -> tuple[str, ...]:
    passed = check.get("passed")
    return (
        text(check.get("suite")),
        "PASS" if passed is True else "FAIL",
        "; ".join(str(f) for f in check.get("failures") or []) or NONE,
        text(check.get("dataset")),
        text(check.get("dataset_digest")),
        _producer(check.get("producer")),
        text(check.get("report_digest")),
        text(check.get("digest")),
    )


def _producer(producer: Any) -> str:
    """``runner ci via modelkeep check``; unknown for results older than producers."""
    if not isinstance(producer, Mapping):
        return NONE
    return Producer.from_dict(producer).describe()


def _approvals(facts: Mapping[str, Any]) -> Section:
    rows = [tuple(text(a.get(k)) for k in APPROVAL_FIELDS) for a in items(facts, "approvals")]
    headers = ("Stage", "Decision", "User", "Comment", "At", "Record")
    return Section("Approvals", [Table(headers, rows, "no approval recorded")])


def _stage_history(facts: Mapping[str, Any]) -> Section:
    rows = [
        (
            text(h.get("alias")),
            text(h.get("action")),
            f"{text(h.get('old'))} → {text(h.get('new'))}",
            text(h.get("actor")),
            text(h.get("at")),
            text(h.get("reason")),
        )
        for h in items(facts, "stage_history")
    ]
    headers = ("Stage", "Action", "Move", "Actor", "At", "Reason")
    return Section("Stage history", [Table(headers, rows, "no stage change recorded")])


def _attestations(facts: Mapping[str, Any]) -> Section:
    attestations = items(facts, "attestations")
    blocks: list[Block] = [
        Alert(f"ADMIN OVERRIDE: {_override_reason(a)} ({text(a.get('stage'))}, {a.get('actor')})")
        for a in attestations
        if a.get("override")
    ]
    rows = [
        (
            text(a.get("stage")),
            text(a.get("actor")),
            text(a.get("at")),
            text(a.get("digest") or a.get("envelope_digest")),
            f"OVERRIDE: {_override_reason(a)}" if a.get("override") else "no",
        )
        for a in attestations
    ]
    headers = ("Stage", "Actor", "At", "Envelope", "Override")
    blocks.append(Table(headers, rows, "no signed attestation"))
    return Section("Attestations", blocks)


def _override_reason(attestation: Mapping[str, Any]) -> str:
    override = attestation.get("override")
    reason = override.get("reason") if isinstance(override, Mapping) else None
    return stated(reason) or "no reason given"


def _provenance(facts: Mapping[str, Any]) -> Section:
    version, data = section(facts, "version"), metadata(facts)
    policy = facts.get("policy")
    audit = facts.get("audit_ok")
    lines = [
        f"Version digest: {text(version.get('digest'))}",
        f"Code commit: {text(data.get('commit') or section(facts, 'run').get('commit'))}",
        f"Seed: {text(data.get('seed'))}",
        f"Run: {text(data.get('run'))}",
        _policy_line(policy),
        _audit_line(audit),
    ]
    blocks: list[Block] = [Bullets(lines)]
    if audit is False:
        blocks.insert(0, Alert("AUDIT CHAIN BROKEN: the registry's history does not verify"))
    files = [
        (text(f.get("path")), text(f.get("size")), text(f.get("digest")))
        for f in items(version, "files")
    ]
    blocks.append(Table(("File", "Size (B)", "Digest"), files, "no files listed"))
    return Section("Provenance", blocks)


def _policy_line(policy: Any) -> str:
    if not isinstance(policy, Mapping):
        return "Policy in force: none"
    return f"Policy in force: version {text(policy.get('version'))}, {text(policy.get('digest'))}"


def _audit_line(audit: Any) -> str:
    if audit is None:
        return "Audit chain: not verified"
    return "Audit chain: " + ("verified" if audit is True else "DOES NOT VERIFY")


def _gaps(facts: Mapping[str, Any]) -> Section:
    assessment = rmf_assessment(facts)
    lines = [f"{name}: {line}" for name in FUNCTIONS for line in assessment[name]["missing"]]
    block: Block = Bullets(lines) if lines else Para("No gaps found.")
    return Section("Governance gaps (NIST AI RMF)", [block])


# the governance report --------------------------------------------------------------------


def governance_report_document(models: Sequence[Mapping[str, Any]], generated_at: str) -> Document:
    """One report over many models: a summary table, then each model's met and missing
    evidence per NIST AI RMF function."""
    assessed = [(facts, rmf_assessment(facts)) for facts in models]
    summary = Section(
        "Summary",
        [
            Para(f"Generated at {generated_at} for {len(assessed)} model(s)."),
            Table(
                ("Model", "Version", "Stage", *FUNCTIONS),
                [_summary_row(f, a) for f, a in assessed],
                "no models",
            ),
        ],
    )
    details = [_model_section(f, a) for f, a in assessed]
    return Document("AI governance report (NIST AI RMF)", [summary, *details])


def _summary_row(
    facts: Mapping[str, Any], assessment: Mapping[str, Mapping[str, list[str]]]
) -> tuple[str, ...]:
    version = section(facts, "version")
    model = version.get("model") or section(facts, "model").get("name")
    cells = [text(model), text(version.get("number")), current_stage(facts) or "none"]
    for name in FUNCTIONS:
        missing = missing_count(assessment, name)
        cells.append(f"{missing} missing" if missing else "ok")
    return tuple(cells)


def _model_section(
    facts: Mapping[str, Any], assessment: Mapping[str, Mapping[str, list[str]]]
) -> Section:
    blocks: list[Block] = []
    for name in FUNCTIONS:
        lines = [f"met: {line}" for line in assessment[name]["met"]]
        lines += [f"MISSING: {line}" for line in assessment[name]["missing"]]
        blocks += [Heading(name), Bullets(lines)]
    overrides = [a for a in items(facts, "attestations") if a.get("override")]
    alerts: list[Block] = [Alert(f"ADMIN OVERRIDE: {_override_reason(a)}") for a in overrides]
    return Section(version_name(facts), alerts + blocks)
