"""Model cards, the NIST AI RMF assessment and the governance report, from card facts."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from modelkeep.domain.cards import rmf_assessment
from modelkeep.errors import InvalidInput
from modelkeep.render.cards import render_card, render_governance_report

VERSION_DIGEST = "sha256:" + "aa" * 32
FILE_DIGEST = "sha256:" + "bb" * 32
DATASET_DIGEST = "sha256:" + "cc" * 32
REPORT_DIGEST = "sha256:" + "dd" * 32
ENVELOPE_DIGEST = "sha256:" + "ee" * 32
POLICY_DIGEST = "sha256:" + "ff" * 32


def check(kind: str, suite: str, passed: bool = True, **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{suite}-1",
        "suite": suite,
        "kind": kind,
        "metrics": {f"{suite}_score": 0.91},
        "passed": passed,
        "failures": [] if passed else [f"{suite}_score < 0.95"],
        "dataset": "holdout@2",
        "dataset_digest": DATASET_DIGEST,
        "report_digest": REPORT_DIGEST,
        "digest": "sha256:" + "12" * 32,
        "created_by": "alice",
        "created_at": "2026-03-02T09:00:00+00:00",
        **extra,
    }


def full_facts() -> dict[str, Any]:
    """Facts that satisfy every RMF function."""
    return {
        "model": {
            "name": "fraud",
            "description": "Scores card transactions",
            "created_by": "alice",
            "created_at": "2026-01-01T00:00:00+00:00",
        },
        "version": {
            "model": "fraud",
            "number": 3,
            "semver": "1.2.0",
            "digest": VERSION_DIGEST,
            "status": "active",
            "created_at": "2026-03-01T08:00:00+00:00",
            "created_by": "alice",
            "files": [{"path": "model.onnx", "size": 1234, "digest": FILE_DIGEST}],
            "metadata": {
                "params": {"lr": 0.01, "depth": 6},
                "metrics": {"auc": 0.93},
                "datasets": ["transactions@3"],
                "commit": "0123abc",
                "seed": 7,
                "run": "run-42",
                "meta": {
                    "intended_use": "Flag card fraud for human review",
                    "limitations": "Not calibrated for merchants outside the EU",
                    "out_of_scope": "Credit decisions",
                },
            },
            "aliases": ["production", "champion"],
        },
        "run": {
            "id": "run-42",
            "experiment": "fraud-xgb",
            "status": "finished",
            "commit": "0123abc",
            "branch": "main",
            "dirty": False,
            "python": "3.11.7",
            "packages_digest": "sha256:" + "34" * 32,
            "params": {"epochs": 20},
            "metrics": {"loss": 0.12},
        },
        "datasets": [
            {
                "ref": "transactions@3",
                "digest": DATASET_DIGEST,
                "rows": 120000,
                "source": "s3://raw/tx/2026-02",
                "steps": ["dedup", "drop-pii"],
                "sampling": "stratified 10%",
                "columns": [{"name": "amount", "type": "float64"}],
            }
        ],
        "checks": [
            check("evaluation", "holdout-eval"),
            check("fairness", "demographic-parity"),
            check("robustness", "noise"),
        ],
        "approvals": [
            {
                "id": 9,
                "stage": "production",
                "decision": "approve",
                "user": "bob",
                "comment": "looks good",
                "created_at": "2026-03-02T10:00:00+00:00",
                "digest": "sha256:" + "56" * 32,
            }
        ],
        "stage_history": [
            {
                "alias": "production",
                "action": "promote",
                "old": 2,
                "new": 3,
                "actor": "carol",
                "at": "2026-03-02T11:00:00+00:00",
                "reason": "beats the baseline",
            }
        ],
        "attestations": [
            {
                "stage": "production",
                "digest": ENVELOPE_DIGEST,
                "actor": "carol",
                "at": "2026-03-02T11:00:00+00:00",
                "override": None,
            }
        ],
        "policy": {"version": 4, "digest": POLICY_DIGEST},
        "audit_ok": True,
    }


@pytest.fixture
def facts() -> dict[str, Any]:
    return full_facts()


def missing(facts: dict[str, Any], function: str) -> list[str]:
    return rmf_assessment(facts)[function]["missing"]


# the card ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_the_card_shows_the_facts(facts: dict[str, Any], fmt: str) -> None:
    card = render_card(facts, fmt)
    for fact in (
        "fraud@3",
        "1.2.0",
        VERSION_DIGEST,
        FILE_DIGEST,
        DATASET_DIGEST,
        REPORT_DIGEST,
        ENVELOPE_DIGEST,
        POLICY_DIGEST,
        "s3://raw/tx/2026-02",
        "dedup, drop-pii",
        "120000",
        "0123abc",
        "3.11.7",
        "Flag card fraud for human review",
        "Not calibrated for merchants outside the EU",
        "Credit decisions",
        "demographic-parity",
        "looks good",
        "beats the baseline",
        "lr",
        "0.01",
        "auc",
        "0.93",
        "loss",
        "production",
        "champion",
    ):
        assert fact in card, fact
    for title in ("Intended use", "Training data", "Hyperparameters", "Metrics", "Provenance"):
        assert title in card
    assert "ADMIN OVERRIDE" not in card


def test_markdown_tables_escape_pipes_and_newlines(facts: dict[str, Any]) -> None:
    facts["model"]["description"] = "a | b\nc"
    card = render_card(facts, "md")
    assert "| Description | a \\| b c |" in card


def test_html_is_a_standalone_document_with_every_value_escaped(facts: dict[str, Any]) -> None:
    facts["model"]["description"] = "<script>alert('x')</script>"
    facts["approvals"][0]["comment"] = '<img src=x onerror="steal()">'
    facts["version"]["metadata"]["meta"]["intended_use"] = "a & b"
    card = render_card(facts, "html")
    assert card.startswith("<!doctype html>")
    assert card.rstrip().endswith("</html>")
    assert "<style>" in card
    assert "<script>" not in card and "<img" not in card
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in card
    assert "a &amp; b" in card


def test_an_override_is_shown_loudly(facts: dict[str, Any]) -> None:
    facts["attestations"][0]["override"] = {"reason": "hotfix for outage INC-7"}
    for fmt in ("md", "html"):
        assert "ADMIN OVERRIDE: hotfix for outage INC-7" in render_card(facts, fmt)
    assert "> **ADMIN OVERRIDE: hotfix for outage INC-7" in render_card(facts, "md")
    assert 'class="alert">ADMIN OVERRIDE: hotfix' in render_card(facts, "html")


def test_a_card_without_evidence_says_what_is_missing() -> None:
    card = render_card({"version": {"model": "bare", "number": 1}}, "md")
    assert card.startswith("# Model card: bare@1")
    assert "Intended use: not stated (gap)" in card
    assert "Limitations: not stated (gap)" in card
    assert "no evaluation check (gap)" in card
    assert "No training run linked (gap)." in card
    assert "MEASURE: no fairness check results" in card
    assert "GOVERN: no promotion policy in force" in card


def test_a_failed_check_shows_fail_and_its_failures(facts: dict[str, Any]) -> None:
    facts["checks"][2] = check("robustness", "noise", passed=False)
    card = render_card(facts, "md")
    assert re.search(r"\| noise \| FAIL \| noise_score < 0\.95 \|", card)


def test_an_unknown_format_is_refused(facts: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="pdf"):
        render_card(facts, "pdf")


# the RMF assessment -----------------------------------------------------------------------


def test_full_evidence_meets_every_function(facts: dict[str, Any]) -> None:
    assessment = rmf_assessment(facts)
    assert set(assessment) == {"GOVERN", "MAP", "MEASURE", "MANAGE"}
    for function, lines in assessment.items():
        assert lines["missing"] == [], function
        assert lines["met"], function
    assert "rollback available: production pointed to 2 before" in assessment["MANAGE"]["met"]
    assert "no admin overrides" in assessment["MANAGE"]["met"]


def test_no_checks_means_measure_misses_evaluation(facts: dict[str, Any]) -> None:
    facts["checks"] = []
    assert missing(facts, "MEASURE") == [
        "no evaluation check results",
        "no fairness check results",
        "no robustness check results",
    ]


def test_a_failing_check_is_missing_evidence(facts: dict[str, Any]) -> None:
    facts["checks"][1] = check("fairness", "demographic-parity", passed=False)
    assert missing(facts, "MEASURE") == [
        "fairness check demographic-parity failed: demographic-parity_score < 0.95"
    ]


def test_intended_use_falls_back_to_the_description(facts: dict[str, Any]) -> None:
    del facts["version"]["metadata"]["meta"]["intended_use"]
    assert "intended use stated (from the model description)" in rmf_assessment(facts)["MAP"]["met"]
    facts["model"]["description"] = "  "
    assert "intended use not stated" in missing(facts, "MAP")
    assert "Intended use: not stated (gap)" in render_card(facts, "md")


def test_map_misses_lineage_without_datasets_run_or_commit(facts: dict[str, Any]) -> None:
    facts["datasets"] = []
    facts["run"] = None
    facts["version"]["metadata"]["commit"] = None
    facts["version"]["metadata"]["meta"] = {}
    gaps = missing(facts, "MAP")
    assert "datasets named (transactions@3) but none linked with provenance" in gaps
    assert "no training run linked" in gaps
    assert "no code commit recorded" in gaps
    assert "limitations not stated" in gaps


def test_a_dataset_without_source_and_a_dirty_run_are_gaps(facts: dict[str, Any]) -> None:
    facts["datasets"][0]["source"] = None
    facts["run"]["dirty"] = True
    gaps = missing(facts, "MAP")
    assert "dataset transactions@3 has no source recorded" in gaps
    assert "run run-42 was trained from uncommitted changes" in gaps


def test_self_approval_breaks_separation_of_duties(facts: dict[str, Any]) -> None:
    facts["approvals"][0]["user"] = "alice"
    assert missing(facts, "GOVERN") == [
        "approved for production by alice, who created the version: no separation of duties"
    ]


def test_govern_misses_policy_approvals_audit_and_attestations(facts: dict[str, Any]) -> None:
    facts.update(policy=None, approvals=[], audit_ok=None, attestations=[])
    assert missing(facts, "GOVERN") == [
        "no promotion policy in force",
        "no recorded approval",
        "the audit chain was not verified for this report",
        "no signed promotion attestation",
    ]
    facts["audit_ok"] = False
    assert "the audit chain does NOT verify" in missing(facts, "GOVERN")
    assert "AUDIT CHAIN BROKEN" in render_card(facts, "md")


def test_a_rejection_is_not_an_approval(facts: dict[str, Any]) -> None:
    facts["approvals"][0]["decision"] = "reject"
    assert missing(facts, "GOVERN") == ["no recorded approval"]


def test_manage_needs_history_attestation_and_a_rollback_target(facts: dict[str, Any]) -> None:
    facts["stage_history"][0]["old"] = None
    facts["attestations"] = []
    assert missing(facts, "MANAGE") == [
        "no attested promotion",
        "no previous production target to roll back to",
    ]
    facts["version"]["aliases"] = []
    facts["stage_history"] = []
    assert "the version is in no stage, so there is no rollback target" in missing(facts, "MANAGE")


def test_an_override_needs_a_reason(facts: dict[str, Any]) -> None:
    facts["attestations"][0]["override"] = {"reason": "hotfix"}
    manage = rmf_assessment(facts)["MANAGE"]
    assert "admin override of the production policy, justified: hotfix" in manage["met"]
    facts["attestations"][0]["override"] = {"reason": ""}
    assert missing(facts, "MANAGE") == ["admin override of the production policy without a reason"]
    assert "ADMIN OVERRIDE: no reason given" in render_card(facts, "md")


# the governance report --------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["md", "html"])
def test_the_governance_report_summarises_each_model(facts: dict[str, Any], fmt: str) -> None:
    weak = copy.deepcopy(facts)
    weak["model"]["name"] = weak["version"]["model"] = "churn"
    weak["version"]["number"] = 8
    weak["version"]["aliases"] = ["staging"]
    weak["checks"] = []
    weak["attestations"][0]["override"] = {"reason": "demo <tomorrow>"}
    report = render_governance_report([facts, weak], fmt, "2026-03-04T00:00:00+00:00")
    assert "2026-03-04T00:00:00+00:00" in report and "2 model(s)" in report
    assert "fraud@3" in report and "churn@8" in report
    assert "3 missing" in report
    assert "no fairness check results" in report
    if fmt == "md":
        assert "| fraud | 3 | production | ok | ok | ok | ok |" in report
        assert "| churn | 8 | staging | ok | ok | 3 missing |" in report
        assert "ADMIN OVERRIDE: demo <tomorrow>" in report
    else:
        assert report.startswith("<!doctype html>")
        assert "ADMIN OVERRIDE: demo &lt;tomorrow&gt;" in report


def test_an_empty_governance_report_still_renders() -> None:
    report = render_governance_report([], "md", "2026-03-04T00:00:00+00:00")
    assert "0 model(s)" in report and "_no models_" in report
