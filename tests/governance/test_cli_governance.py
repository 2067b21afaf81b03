"""Governance through the CLI with real scikit-learn models trained here: checks, gates
with JUnit, refusals of bad input, attestation verification against tampering, cards."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path
from xml.etree import ElementTree

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelkeep.config import Settings
from tests.conftest import CliRunnerInProcess
from tests.e2e.support import (
    assert_error_line,
    blob_path,
    ok,
    ok_json,
    overwrite_blob,
    refused,
    store_unchanged,
)

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def training(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/ci/train.py run once: it is deterministic (the same seed, the same bytes)."""
    import subprocess
    import sys

    build = tmp_path_factory.mktemp("training")
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ci" / "train.py"), "--out", str(build)],
        check=True,
        capture_output=True,
    )
    return build


@pytest.fixture
def trained(cli: CliRunnerInProcess, training: Path, tmp_path: Path) -> Path:
    """fraud@1 (a skops model of examples/ci/train.py), dataset tx@1, the example policy;
    in a build directory of the test's own (a copy of the one training)."""
    build = shutil.copytree(training, tmp_path / "build")
    ok(cli("policy", "set", str(ROOT / "examples" / "policy.yaml"), "--json"))
    ok(cli("models", "create", "fraud", "--json"))
    ok(cli("datasets", "push", "tx", str(build / "data.csv"), "--json"))
    ok(cli("push", "fraud", str(build / "model.skops"), "--commit", "abc", "--json"))
    return build


def test_check_records_evidence_and_the_gate_reports_every_rule(
    cli: CliRunnerInProcess, trained: Path, tmp_path: Path
) -> None:
    results = ok_json(
        cli, "check", "fraud@1", "--dataset", "tx@1", "--target", "label", "--sensitive", "group"
    )
    assert [r["suite"] for r in results] == ["evaluation", "fairness", "robustness"]
    evaluation = results[0]
    assert 0.5 < evaluation["metrics"]["accuracy"] <= 1.0
    assert evaluation["dataset"] == "tx@1" and evaluation["passed"] is True
    junit = tmp_path / "gate.xml"
    gate = cli("gate", "fraud@1", "--to", "production", "--junit", str(junit), "--json")
    assert gate.code == 1 and "policy_not_met" in gate.err
    document = ok_json(cli, "policy", "test", "fraud@1", "--to", "production")
    assert document == json.loads(gate.out)
    rules = {r["rule"]: r["passed"] for r in document["rules"]}
    assert rules["accuracy >= 0.8"] is True
    assert rules["1 approval by approver"] is False
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None and suite.get("failures") == "1"
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == ["1 approval by approver"]
    assert ok(cli("gate", "fraud@1", "--to", "staging")).code == 0


def test_unsafe_models_and_missing_columns_are_refused_and_record_nothing(
    cli: CliRunnerInProcess, trained: Path, tmp_path: Path
) -> None:
    pickled = tmp_path / "model.pkl"
    pickled.write_bytes(pickle.dumps({"not": "a model"}))
    ok(cli("push", "fraud", str(pickled), "--commit", "abc", "--json"))
    with store_unchanged(cli):
        line = refused(
            cli, "check", "fraud@2", "--dataset", "tx@1", "--target", "label",
            code="unsafe_model_format",
        )  # fmt: skip
        assert ".skops" in line and ".onnx" in line
        refused(
            cli, "check", "fraud@1", "--dataset", "tx@1", "--target", "label",
            "--sensitive", "gender", code="column_not_found",
        )  # fmt: skip
        refused(cli, "policy", "set", str(tmp_path / "nope.yaml"), code="invalid_input")
        bad = tmp_path / "bad.yaml"
        bad.write_text("format: 1\nstages:\n  production:\n    aprovals: {count: 1}\n")
        assert "line 4" in refused(cli, "policy", "set", str(bad), code="invalid_policy")


def test_a_hanging_command_check_is_stopped(
    cli: CliRunnerInProcess, trained: Path, tmp_path: Path
) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        'checks:\n  - kind: command\n    name: slow\n    run: ["sleep", "30"]\n    timeout: 1\n'
    )
    with store_unchanged(cli):
        refused(
            cli, "check", "fraud@1", "--dataset", "tx@1", "--target", "label",
            "--suite", str(suite), code="check_timeout",
        )  # fmt: skip


def test_attestations_fail_on_a_wrong_key_and_on_changed_files(
    cli: CliRunnerInProcess, trained: Path, tmp_path: Path, settings: Settings
) -> None:
    ok(cli("promote", "fraud@1", "--to", "staging", "--json"))
    assert ok_json(cli, "attest", "verify", "fraud@1")["ok"] is True
    other = tmp_path / "other.pem"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    result = cli("attest", "verify", "fraud@1", "--public-key", str(other))
    assert "signature" in assert_error_line(result, "attestation_invalid", exit_code=3)

    bundle = tmp_path / "bundle"
    ok(cli("attest", "export", "fraud@1", str(bundle), "--json"))
    files = tmp_path / "files"
    ok(cli("pull", "fraud@1", str(files), "--json"))
    offline = ("attest", "verify", "--bundle", str(bundle), "--files", str(files))
    untrusted = cli(*offline)  # the bundle's own key proves nothing about who signed
    assert "no trusted key" in assert_error_line(untrusted, "attestation_invalid", exit_code=3)
    store_pem = tmp_path / "store.pem"
    store_pem.write_text(ok(cli("audit", "key")).out)
    trusted = (*offline, "--public-key", str(store_pem))
    assert ok_json(cli, *trusted)["ok"]
    assert "key the key you passed" in ok(cli(*trusted)).out
    swapped = files / "model.skops"
    shutil.copy(trained / "data.csv", swapped)  # another file under the model's name
    result = cli(*trusted)
    assert "model.skops" in assert_error_line(result, "attestation_invalid", exit_code=3)

    version = ok_json(cli, "show", "fraud@1")
    overwrite_blob(blob_path(Path(settings.uri), version["files"][0]["digest"]), b"tampered")
    result = cli("attest", "verify", "fraud@1")
    assert result.code == 3, result


def test_the_card_shows_facts_and_escapes_them(
    cli: CliRunnerInProcess, trained: Path, tmp_path: Path
) -> None:
    meta = "intended_use=<script>alert(1)</script>"
    files = (str(trained / "model.skops"), str(trained / "data.csv"))
    ok(cli("push", "fraud", *files, "--commit", "abc", "--meta", meta, "--json"))
    html = tmp_path / "card.html"
    ok(cli("card", "fraud@2", "--format", "html", "--output", str(html), "--json"))
    text = html.read_text()
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;" in text
    report = ok(cli("report", "governance")).out
    assert "fraud" in report and "MEASURE" in report
