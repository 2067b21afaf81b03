"""Governance through the SDK, in process and over HTTP (served in process), on
SQLite and PostgreSQL: the policy, evidence, gated promotion, overrides, attestations."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import modelkeep
from modelkeep.domain.governance import NewCheckResult
from modelkeep.errors import (
    Conflict,
    InvalidInput,
    InvalidPolicy,
    PolicyNotMet,
    SemverExists,
    SeparationOfDuties,
    VersionArchived,
)

# Also on the in-memory store (tests/conftest.py); a test that reaches into SQL says so.
pytestmark = pytest.mark.backends("sqlite", "postgresql", "memory")

ROOT = Path(__file__).resolve().parents[2]


EXAMPLE_POLICY = ROOT / "examples" / "policy.yaml"


def evaluation(accuracy: float) -> NewCheckResult:
    return NewCheckResult(
        suite="evaluation",
        kind="evaluation",
        metrics={"accuracy": accuracy, "rows": 100.0},
        passed=True,
        report={"task": "classification", "rows": 100},
    )


@pytest.fixture
def setup(mk: modelkeep.Client, tmp_path: Path) -> str:
    """Model ``fraud`` with version 1 (commit given), dataset ``tx@1``, the example policy."""
    data = tmp_path / "data.csv"
    data.write_text("a,label\n1,0\n2,1\n")
    mk.push_dataset("tx", [data])
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights v1")
    mk.create_model("fraud")
    mk.push("fraud", [model], commit="abc123")
    mk.set_policy(EXAMPLE_POLICY)
    return "fraud@1"


def test_a_policy_that_does_not_parse_is_refused_with_its_line(mk: modelkeep.Client) -> None:
    with pytest.raises(InvalidPolicy, match="line 5"):
        mk.set_policy("format: 1\nstages:\n  production:\n    checks:\n      - acuracy >= 0.8\n")
    assert mk.policy() is None
    first = mk.set_policy(EXAMPLE_POLICY)
    again = mk.set_policy(EXAMPLE_POLICY)
    assert (first.number, again.number) == (1, 1)  # the same document: no new version
    assert mk.policy() == first
    assert [p.number for p in mk.policy_history()] == [1]
    mk.create_model("fraud")
    rules = mk.model_policy("fraud")
    assert rules["policy"] == {"number": 1, "digest": first.digest}
    production = rules["rules"]["stages"]["production"]
    assert production["checks"] == [
        {"rule": "accuracy >= 0.8", "dataset": None, "dataset_version": None, "runner": None}
    ]


def test_promotion_waits_for_every_rule_and_then_is_attested(
    mk: modelkeep.Client, setup: str
) -> None:
    staged = mk.promotion(setup, to="staging", reason="commit recorded")
    assert staged.attestation is not None and staged.gate.passed
    with pytest.raises(PolicyNotMet) as refused:
        mk.promote(setup, to="production")
    assert "accuracy >= 0.8" in str(refused.value) and "approval" in str(refused.value)
    assert [e.alias for e in mk.alias_history("fraud")] == ["staging"]  # nothing moved

    low = mk.record_check(setup, dataset="tx@1", result=evaluation(0.7))
    gate = mk.gate(setup, to="production")
    unmet = {r.kind for r in gate.evaluation.unmet}
    assert unmet == {"check", "approval"}
    assert low.id in next(r.evidence for r in gate.evaluation.rules if r.kind == "check")

    high = mk.record_check(setup, dataset="tx@1", result=evaluation(0.9))
    assert high.dataset == "tx@1" and high.version_digest == mk.show(setup).digest
    assert {r.kind for r in mk.gate(setup, to="production").evaluation.unmet} == {"approval"}
    with pytest.raises(SeparationOfDuties):
        mk.approve(setup, to="production")  # the operator created fraud@1
    assert mk.checks(setup) == [low, high]


def test_an_override_needs_an_admin_and_a_reason_and_says_so(
    mk: modelkeep.Client, setup: str
) -> None:
    with pytest.raises(InvalidInput, match="reason"):
        mk.promote(setup, to="production", override=True)
    done = mk.promotion(setup, to="production", override=True, reason="incident 42 hotfix")
    assert done.attestation is not None
    assert done.attestation.override_reason == "incident 42 hotfix"
    events = mk.audit_log(model="fraud")
    override = [e for e in events if e.action == "policy.override"]
    assert len(override) == 1 and "accuracy >= 0.8" in override[0].details["unmet"]
    move = next(e for e in events if e.action == "alias.promote")
    assert move.details["attestation"] == done.attestation.envelope_digest
    assert move.details["override"]["reason"] == "incident 42 hotfix"
    card = mk.card(setup)
    assert "ADMIN OVERRIDE" in card and "incident 42 hotfix" in card


def test_the_attestation_verifies_and_names_its_evidence(
    mk: modelkeep.Client, setup: str, tmp_path: Path
) -> None:
    check = mk.record_check(setup, dataset="tx@1", result=evaluation(0.95))
    mk.promote(setup, to="production", override=True, reason="no approver on call")
    report = mk.verify_attestation(setup, stage="production")
    assert report.ok, report.problems
    predicate = report.statement["predicate"]
    assert [c["digest"] for c in predicate["checks"]] == [check.digest]
    assert predicate["override"]["reason"] == "no approver on call"
    assert report.statement["subject"][0]["digest"]["sha256"] == mk.show(setup).digest[7:]

    bundle = mk.export_attestation(setup, tmp_path / "bundle", stage="production")
    record = bundle / "checks" / f"{check.id}.json"
    edited = json.loads(record.read_text())
    edited["metrics"]["accuracy"] = 0.99
    record.write_text(json.dumps(edited))
    from modelkeep.attest.bundle import verify_bundle

    tampered = verify_bundle(bundle)
    assert not tampered.ok and any(f"checks/{check.id}.json" in p for p in tampered.problems)


def test_checks_and_approvals_refuse_what_they_cannot_bind_to(
    mk: modelkeep.Client, setup: str, tmp_path: Path
) -> None:
    version = mk.show(setup)
    with pytest.raises(Conflict):
        mk.approve(setup, to="production", digest="sha256:" + "0" * 64)
    other = tmp_path / "other.bin"
    other.write_bytes(b"weights v2")
    mk.push("fraud", [other], commit="def456", version="1.0.0")
    with pytest.raises(SemverExists):  # a semver never names two versions
        mk.push("fraud", [tmp_path / "model.bin"], commit="x", version="1.0.0")
    assert mk.show("fraud@1.0.0").number == 2 and version.number == 1
    mk.archive("fraud@2")
    with pytest.raises(VersionArchived):
        mk.record_check("fraud@2", dataset="tx@1", result=evaluation(0.9))
    with pytest.raises(VersionArchived):
        mk.approve("fraud@2", to="staging")


def test_governance_blobs_survive_gc(mk: modelkeep.Client, setup: str) -> None:
    mk.record_check(setup, dataset="tx@1", result=evaluation(0.9))
    mk.promote(setup, to="staging")
    mk.gc()
    assert mk.verify_attestation(setup, stage="staging").ok


def test_a_registry_without_policy_promotes_by_role_and_still_attests(
    mk: modelkeep.Client, tmp_path: Path
) -> None:
    model = tmp_path / "m.bin"
    model.write_bytes(b"free")
    mk.create_model("free")
    mk.push("free", [model])
    done = mk.promotion("free@1", to="production")
    assert done.gate.policy is None and done.gate.evaluation.rules == ()
    assert done.attestation is not None and mk.verify_attestation("free@1").ok
    with pytest.raises(InvalidInput):
        mk.approve("free@1", to="qa")
