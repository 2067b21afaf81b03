"""``modelkeep show`` prints the signature a push recorded (human and ``--json``), on
SQLite and PostgreSQL; a malformed ``modelkeep.yaml`` refuses the push, nothing stored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.linear_model import LogisticRegression

from tests.conftest import CliRunnerInProcess
from tests.e2e.support import ok, ok_json, refused


def skops_model(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"amount": [1.0, 5.0, 2.0, 9.0], "hour": [1.0, 2.0, 3.0, 4.0]})
    sio.dump(LogisticRegression().fit(frame, np.array([0, 1, 0, 1])), folder / "model.skops")
    return folder


def test_show_prints_the_signature_recorded_at_push(
    cli: CliRunnerInProcess, model: str, tmp_path: Path
) -> None:
    folder = skops_model(tmp_path / "v")
    ok(cli("push", model, str(folder)))
    document = ok_json(cli, "show", f"{model}@1")
    expected = {
        "inputs": [{"name": "amount", "dtype": "float64"}, {"name": "hour", "dtype": "float64"}],
        "outputs": [{"name": "predictions", "dtype": "int64", "shape": [-1]}],
    }
    assert document["signature"] == expected
    assert document["metadata"]["signature"] == expected
    lines = [line.split() for line in ok(cli("show", f"{model}@1")).out.splitlines()]
    assert ["input", "amount:", "float64"] in lines and ["input", "hour:", "float64"] in lines
    assert ["output", "predictions:", "int64[-1]"] in lines


def test_a_version_without_a_model_shows_a_null_signature(
    cli: CliRunnerInProcess, model: str, tmp_path: Path
) -> None:
    (tmp_path / "weights.bin").write_bytes(b"weights")
    ok(cli("push", model, str(tmp_path / "weights.bin")))
    document = ok_json(cli, "show", f"{model}@1")
    assert document["signature"] is None and "signature" not in document["metadata"]
    lines = [line.split() for line in ok(cli("show", f"{model}@1")).out.splitlines()]
    assert not [line for line in lines if line[:1] in (["input"], ["output"])]


def test_a_malformed_modelkeep_yaml_refuses_the_push(
    cli: CliRunnerInProcess, model: str, tmp_path: Path
) -> None:
    folder = skops_model(tmp_path / "v")
    (folder / "modelkeep.yaml").write_text("predictor: not an entry point\n")
    message = refused(cli, "push", model, str(folder), code="invalid_metadata")
    assert "modelkeep.yaml: predictor 'not an entry point' is not MODULE:CLASS" in message
    assert ok_json(cli, "versions", model) == []
