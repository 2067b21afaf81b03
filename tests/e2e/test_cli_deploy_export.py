"""``modelkeep deploy export NAME --env ENV --kserve --oci-repo REPO``: a KServe
InferenceService for the desired state, pinned to 'bundle export-oci''s manifest digest,
checked with the KServe SDK's own models when its venv is here (Makefile, .venv-kserve)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

import modelkeep
from tests.conftest import CliRunnerInProcess
from tests.e2e.conftest import Pusher
from tests.e2e.support import ok, ok_json, refused, store_unchanged

REPO = "registry.example.com/models/fraud"
EXPORT = ("deploy", "export", "fraud", "--env", "prod", "--kserve", "--oci-repo", REPO)
CHECKER = Path(__file__).with_name("kserve_check.py")


@pytest.fixture
def fraud(cli: CliRunnerInProcess, push: Pusher, tmp_path: Path) -> None:
    """fraud@1 a scikit-learn (skops) model, fraud@2 an ONNX one, fraud@3 a Python
    predictor its modelkeep.yaml declares, fraud@4 a pickle (the bytes need not load:
    the files name the format)."""
    ok(cli("models", "create", "fraud"))
    push("fraud", b"skops bytes", name="model.skops")
    push("fraud", b"onnx bytes", name="model.onnx")
    code = tmp_path / "code"
    code.mkdir()
    (code / "predictor.py").write_text("class Fraud: ...\n")
    (code / "modelkeep.yaml").write_text("predictor: predictor:Fraud\n")
    ok(cli("push", "fraud", str(code)))
    push("fraud", b"pickle bytes", name="model.pkl")


def oci_digest(cli: CliRunnerInProcess, ref: str, folder: Path) -> str:
    return str(ok_json(cli, "bundle", "export-oci", ref, str(folder))["manifest_digest"])


def kserve_python() -> Path | None:
    """The venv with the KServe SDK (``make test`` makes it: Makefile, .venv-kserve)."""
    named = os.environ.get("MODELKEEP_KSERVE_PYTHON")
    candidates = [Path(named)] if named else []
    candidates.append(Path(__file__).parents[2] / ".venv-kserve" / "bin" / "python")
    return next((c for c in candidates if c.is_file()), None)


def kserve_check(python: Path, document: Path) -> subprocess.CompletedProcess[str]:
    command = [str(python), str(CHECKER), str(document)]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_stable_then_canary_export_pinned_by_the_oci_digest(
    cli: CliRunnerInProcess, fraud: None, tmp_path: Path
) -> None:
    ok(cli("deploy", "fraud@1", "--env", "prod"))
    stable: dict[str, Any] = yaml.safe_load(ok(cli(*EXPORT)).out)
    first = oci_digest(cli, "fraud@1", tmp_path / "oci1")
    assert stable["spec"] == {
        "predictor": {
            "model": {"modelFormat": {"name": "sklearn"}, "storageUri": f"oci://{REPO}@{first}"}
        }
    }
    assert stable["metadata"]["name"] == "fraud"
    assert stable["metadata"]["labels"] == {
        "modelkeep.dev/model": "fraud",
        "modelkeep.dev/env": "prod",
    }

    ok(cli("deploy", "fraud@2", "--env", "prod", "--canary", "20"))
    canary = ok_json(cli, *EXPORT, "--namespace", "serving", "--runtime", "kserve-onnx")
    second = oci_digest(cli, "fraud@2", tmp_path / "oci2")
    assert canary["spec"]["predictor"] == {
        "model": {
            "modelFormat": {"name": "onnx"},
            "storageUri": f"oci://{REPO}@{second}",
            "runtime": "kserve-onnx",
        },
        "canaryTrafficPercent": 20,
    }
    notes = canary["metadata"]["annotations"]
    assert notes["modelkeep.dev/stable-version"] == "fraud@1"
    assert notes["modelkeep.dev/stable-storage-uri"] == f"oci://{REPO}@{first}"
    assert notes["modelkeep.dev/revision"] == "2"
    assert canary["metadata"]["namespace"] == "serving"

    out = tmp_path / "isvc.yaml"
    said = ok_json(cli, *EXPORT, "-o", str(out))
    assert said == {"path": str(out), "kind": "InferenceService", "name": "fraud"}
    assert out.read_text() == ok(cli(*EXPORT)).out
    assert yaml.safe_load(out.read_text())["spec"]["predictor"]["canaryTrafficPercent"] == 20
    assert ok(cli(*EXPORT, "-o", str(out))).out == f"wrote {out}\n"


def test_what_kserve_cannot_serve_is_refused_and_nothing_is_written(
    cli: CliRunnerInProcess, fraud: None, tmp_path: Path
) -> None:
    out = tmp_path / "isvc.yaml"
    refused(cli, *EXPORT, code="deployment_not_found")
    ok(cli("deploy", "fraud@1", "--env", "prod"))
    ok(cli("deploy", "fraud@2", "--env", "prod", "--shadow", "10"))
    with store_unchanged(cli):
        line = refused(cli, *EXPORT, "-o", str(out), code="invalid_input")
    assert "cannot mirror traffic (kserve/kserve#2978)" in line
    ok(cli("deploy", "rollback", "fraud", "--env", "prod"))
    ok(cli("deploy", "fraud@2", "--env", "prod", "--ab", "30", "--sticky", "header:x-user"))
    assert "no sticky key" in refused(cli, *EXPORT, "-o", str(out), code="invalid_input")
    ok(cli("deploy", "fraud@3", "--env", "prod"))
    assert "python model" in refused(cli, *EXPORT, code="invalid_input")
    ok(cli("deploy", "fraud@4", "--env", "prod"))
    assert "never unpickled" in refused(cli, *EXPORT, code="unsafe_model_format")
    assert not out.exists()
    bad_repo = [a if a != REPO else f"oci://{REPO}:1" for a in EXPORT]
    assert "not an OCI repository" in refused(cli, *bad_repo, code="invalid_input")
    line = refused(cli, *EXPORT, "--runtime", "Skops_Server", code="invalid_input")
    assert "not a ServingRuntime name" in line
    no_format = [a for a in EXPORT if a != "--kserve"]
    assert "--kserve" in refused(cli, *no_format, code="usage", exit_code=2)


def test_the_export_is_a_valid_inference_service_for_the_kserve_sdk(
    cli: CliRunnerInProcess, fraud: None, tmp_path: Path
) -> None:
    python = kserve_python()
    if python is None:
        pytest.skip(
            "the KServe SDK is not installed: run 'make test' (it makes .venv-kserve), "
            "or set MODELKEEP_KSERVE_PYTHON to a python with kserve"
        )
    ok(cli("deploy", "fraud@1", "--env", "prod"))
    stable = tmp_path / "stable.yaml"
    ok(cli(*EXPORT, "-o", str(stable)))
    ok(cli("deploy", "fraud@2", "--env", "prod", "--canary", "20"))
    canary = tmp_path / "canary.yaml"
    ok(cli(*EXPORT, "--namespace", "serving", "--runtime", "skops-server", "-o", str(canary)))
    for document in (stable, canary):
        result = kserve_check(python, document)
        assert result.returncode == 0, result.stdout + result.stderr

    # the checker itself fails a field KServe does not define (so the pass above means it)
    wrong = yaml.safe_load(canary.read_text())
    wrong["spec"]["predictor"]["canaryPercent"] = wrong["spec"]["predictor"].pop(
        "canaryTrafficPercent"
    )
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(wrong))
    result = kserve_check(python, bad)
    assert result.returncode == 1 and ".spec.predictor.canaryPercent" in result.stdout


def test_the_sdk_exports_over_every_transport_reading_modelkeep_yaml(
    mk: modelkeep.Client, tmp_path: Path
) -> None:
    """A version with two model files names its model in modelkeep.yaml; the export reads
    it (a blob, over HTTP too) to give the format, and pins the SDK's export_oci digest."""
    root = tmp_path / "model"
    root.mkdir()
    (root / "model.skops").write_bytes(b"skops bytes")
    (root / "model.onnx").write_bytes(b"onnx bytes")
    (root / "modelkeep.yaml").write_text("model_file: model.onnx\n")
    mk.create_model("fraud")
    mk.push("fraud", [str(root)])
    mk.deploy("fraud@1", env="staging")
    service = mk.kserve_inference_service("fraud", env="staging", oci_repo=REPO)
    digest = mk.export_oci("fraud@1", tmp_path / "oci")
    assert service["spec"]["predictor"]["model"] == {
        "modelFormat": {"name": "onnx"},
        "storageUri": f"oci://{REPO}@{digest}",
    }
