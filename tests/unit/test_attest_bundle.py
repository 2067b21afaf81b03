"""Offline verification of an exported bundle, built here by hand: real files, a real
manifest, a real Ed25519 signature; each kind of tampering must be named."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelkeep.attest.bundle import raise_if_bad, verify_bundle
from modelkeep.domain.attestation import (
    key_id,
    promotion_statement,
    record_digest,
    sign_envelope,
)
from modelkeep.domain.audit import canonical_json
from modelkeep.domain.digest import sha256_digest
from modelkeep.domain.manifest import FileEntry, Manifest
from modelkeep.errors import AttestationInvalid

MODEL_FILES = {"model.onnx": b"\x08\x07onnx-bytes" * 100, "config/config.json": b'{"lr": 0.1}'}
POLICY = b"stages:\n  production:\n    approvals: 1\n"


def pem_of(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def raw_of(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass
class Bundle:
    root: Path
    files: Path
    key: Ed25519PrivateKey

    def write_envelope(self, key: Ed25519PrivateKey, statement: dict[str, Any]) -> None:
        envelope = sign_envelope(statement, key.sign, key_id(raw_of(key)))
        (self.root / "attestation.dsse.json").write_bytes(envelope)


def write_model_files(files: Path) -> Manifest:
    entries = []
    for path, data in MODEL_FILES.items():
        (files / path).parent.mkdir(parents=True, exist_ok=True)
        (files / path).write_bytes(data)
        entries.append(FileEntry(path, len(data), sha256_digest(data)))
    return Manifest.of(entries)


def write_check(root: Path, manifest: Manifest) -> dict[str, Any]:
    report = canonical_json({"auc": 0.93, "rows": 1000})
    (root / "reports").mkdir()
    (root / "reports" / f"{sha256_digest(report)[7:]}.json").write_bytes(report)
    record = {
        "model": "fraud",
        "number": 3,
        "version_digest": manifest.digest,
        "suite": "eval",
        "kind": "evaluation",
        "metrics": {"auc": 0.93},
        "passed": True,
        "failures": [],
        "dataset": "holdout@2",
        "dataset_digest": "sha256:" + "44" * 32,
        "report_digest": sha256_digest(report),
        "created_at": "2026-03-03T10:00:00+00:00",
        "created_by": "alice",
    }
    (root / "checks").mkdir()
    (root / "checks" / "7.json").write_bytes(canonical_json(record))
    return {
        "id": "7",
        "suite": "eval",
        "digest": record_digest(record),
        "report_digest": record["report_digest"],
        "passed": True,
    }


def write_approval(root: Path, manifest: Manifest) -> dict[str, Any]:
    record = {
        "model": "fraud",
        "number": 3,
        "version_digest": manifest.digest,
        "stage": "production",
        "decision": "approve",
        "user": "bob",
        "roles": ["approver"],
        "comment": "looks good",
        "check_ids": [7],
        "policy_digest": sha256_digest(POLICY),
        "created_at": "2026-03-03T10:30:00+00:00",
    }
    (root / "approvals").mkdir()
    (root / "approvals" / "9.json").write_bytes(canonical_json(record))
    return {
        "id": "9",
        "user": "bob",
        "decision": "approve",
        "comment": "looks good",
        "at": record["created_at"],
        "digest": record_digest(record),
    }


def make_statement(manifest: Manifest, check: dict[str, Any], approval: dict[str, Any]) -> Any:
    return promotion_statement(
        store_id="store-1",
        model="fraud",
        number=3,
        version_digest=manifest.digest,
        stage="production",
        previous={"number": 2, "digest": "sha256:" + "55" * 32},
        policy={"version": 1, "digest": sha256_digest(POLICY)},
        checks=[check],
        approvals=[approval],
        evaluation=[{"kind": "approvals", "rule": "approvals >= 1", "passed": True, "detail": ""}],
        actor="carol",
        at="2026-03-03T11:00:00+00:00",
        override=None,
    )


@pytest.fixture
def bundle(tmp_path: Path) -> Bundle:
    root, files = tmp_path / "bundle", tmp_path / "files"
    root.mkdir()
    files.mkdir()
    key = Ed25519PrivateKey.generate()
    manifest = write_model_files(files)
    (root / "manifest.json").write_bytes(manifest.canonical_bytes())
    (root / "policy.yaml").write_bytes(POLICY)
    (root / "public_key.pem").write_bytes(pem_of(key))
    statement = make_statement(
        manifest, write_check(root, manifest), write_approval(root, manifest)
    )
    made = Bundle(root, files, key)
    made.write_envelope(key, statement)
    return made


def statement_of(bundle: Bundle) -> dict[str, Any]:
    report = verify_bundle(bundle.root, None, pem_of(bundle.key))
    return report.statement


def test_an_intact_bundle_verifies(bundle: Bundle) -> None:
    report = verify_bundle(bundle.root, bundle.files, pem_of(bundle.key))
    assert report.ok, report.problems
    assert report.problems == [] and report.warnings == []
    assert "the key you passed" in report.key and key_id(raw_of(bundle.key)) in report.key
    text = "\n".join(report.checked)
    for piece in ("signature verified", "manifest.json", "policy.yaml", "checks/7.json"):
        assert piece in text
    assert "approvals/9.json" in text and "reports/" in text and "all 2 file(s)" in text
    assert report.statement["subject"][0]["name"] == "fraud@3"
    assert report.to_dict()["ok"] is True
    raise_if_bad(report)


def test_without_a_trusted_key_a_bundle_is_not_verified(bundle: Bundle) -> None:
    report = verify_bundle(bundle.root, bundle.files)
    assert not report.ok
    assert len(report.problems) == 1 and "no trusted key" in report.problems[0]
    assert "bundle's own public_key.pem" in report.key
    assert any("signature verified" in line for line in report.checked)  # the rest is checked
    with pytest.raises(AttestationInvalid, match="no trusted key"):
        raise_if_bad(report)


def test_a_swapped_model_file_is_a_problem(bundle: Bundle) -> None:
    original = (bundle.files / "model.onnx").read_bytes()
    (bundle.files / "model.onnx").write_bytes(bytes(reversed(original)))
    report = verify_bundle(bundle.root, bundle.files, pem_of(bundle.key))
    assert not report.ok
    assert any("model.onnx" in p and "sha256" in p for p in report.problems)


def test_a_missing_or_resized_model_file_is_a_problem(bundle: Bundle) -> None:
    (bundle.files / "config" / "config.json").unlink()
    (bundle.files / "model.onnx").write_bytes(b"short")
    problems = verify_bundle(bundle.root, bundle.files, pem_of(bundle.key)).problems
    assert any("config.json: missing" in p for p in problems)
    assert any("model.onnx: 5 B" in p for p in problems)


def test_an_extra_model_file_only_warns(bundle: Bundle) -> None:
    (bundle.files / "notes.txt").write_text("hello")
    report = verify_bundle(bundle.root, bundle.files, pem_of(bundle.key))
    assert report.ok, report.problems
    assert any("notes.txt" in w for w in report.warnings)


def test_an_edited_check_record_is_a_problem(bundle: Bundle) -> None:
    path = bundle.root / "checks" / "7.json"
    record = json.loads(path.read_bytes())
    record["passed"] = False
    path.write_bytes(canonical_json(record))
    report = verify_bundle(bundle.root, None, pem_of(bundle.key))
    assert not report.ok
    assert any("checks/7.json" in p and "changed" in p for p in report.problems)
    with pytest.raises(AttestationInvalid, match=r"checks/7\.json"):
        raise_if_bad(report)


def test_a_record_exported_with_its_id_and_digest_still_verifies(bundle: Bundle) -> None:
    path = bundle.root / "checks" / "7.json"
    record = json.loads(path.read_bytes())
    path.write_bytes(canonical_json({"id": 7, **record, "digest": record_digest(record)}))
    assert verify_bundle(bundle.root, None, pem_of(bundle.key)).ok


def test_an_edited_report_is_a_problem(bundle: Bundle) -> None:
    [report_file] = (bundle.root / "reports").iterdir()
    report_file.write_bytes(canonical_json({"auc": 0.99, "rows": 1000}))
    report = verify_bundle(bundle.root, None, pem_of(bundle.key))
    assert not report.ok
    assert any(report_file.name in p and "changed" in p for p in report.problems)


def test_an_edited_approval_is_a_problem(bundle: Bundle) -> None:
    path = bundle.root / "approvals" / "9.json"
    path.write_bytes(path.read_bytes().replace(b'"bob"', b'"mallory"'))
    problems = verify_bundle(bundle.root, None, pem_of(bundle.key)).problems
    assert any("approvals/9.json" in p for p in problems)


def test_an_envelope_signed_by_another_key_is_a_problem(bundle: Bundle) -> None:
    statement = statement_of(bundle)
    bundle.write_envelope(Ed25519PrivateKey.generate(), statement)
    report = verify_bundle(bundle.root, public_key_pem=pem_of(bundle.key))
    assert not report.ok
    assert any("signature does not verify" in p for p in report.problems)
    assert report.statement == statement


def test_the_bundle_key_does_not_protect_against_a_replaced_key(bundle: Bundle) -> None:
    """A forger who replaces the envelope and public_key.pem fails with the trusted key, and
    without one the bundle is not verified either (it used to pass: the hole of issue 12)."""
    forger = Ed25519PrivateKey.generate()
    bundle.write_envelope(forger, statement_of(bundle))
    (bundle.root / "public_key.pem").write_bytes(pem_of(forger))
    untrusted = verify_bundle(bundle.root)
    assert not untrusted.ok and untrusted.problems[0].startswith("no trusted key")
    assert not verify_bundle(bundle.root, public_key_pem=pem_of(bundle.key)).ok


def test_an_edited_policy_is_a_problem(bundle: Bundle) -> None:
    (bundle.root / "policy.yaml").write_bytes(POLICY.replace(b"1", b"0"))
    report = verify_bundle(bundle.root, None, pem_of(bundle.key))
    assert not report.ok
    assert any("policy.yaml" in p for p in report.problems)


def test_a_manifest_of_another_version_is_a_problem(bundle: Bundle) -> None:
    other = Manifest.of([FileEntry("x.bin", 1, sha256_digest(b"x"))])
    (bundle.root / "manifest.json").write_bytes(other.canonical_bytes())
    problems = verify_bundle(bundle.root, None, pem_of(bundle.key)).problems
    assert any("manifest.json" in p and "version digest" in p for p in problems)


def test_every_problem_is_reported_not_only_the_first(bundle: Bundle) -> None:
    (bundle.root / "policy.yaml").unlink()
    (bundle.root / "approvals" / "9.json").unlink()
    (bundle.files / "model.onnx").write_bytes(b"other")
    problems = verify_bundle(bundle.root, bundle.files, pem_of(bundle.key)).problems
    assert len(problems) == 3, problems
    with pytest.raises(AttestationInvalid, match=r"policy\.yaml: missing"):
        raise_if_bad(verify_bundle(bundle.root, bundle.files, pem_of(bundle.key)))


def test_a_missing_or_garbled_envelope_is_a_problem(bundle: Bundle) -> None:
    (bundle.root / "attestation.dsse.json").write_bytes(b"not json")
    garbled = verify_bundle(bundle.root, None, pem_of(bundle.key))
    assert any("not JSON" in p for p in garbled.problems)
    (bundle.root / "attestation.dsse.json").unlink()
    report = verify_bundle(bundle.root, None, pem_of(bundle.key))
    assert report.problems == ["attestation.dsse.json: missing from the bundle"]


def test_an_unsafe_record_id_is_refused(bundle: Bundle) -> None:
    statement = statement_of(bundle)
    statement["predicate"]["checks"][0]["id"] = "../../outside"
    bundle.write_envelope(bundle.key, statement)
    problems = verify_bundle(bundle.root, None, pem_of(bundle.key)).problems
    assert any("'../../outside'" in p for p in problems)
