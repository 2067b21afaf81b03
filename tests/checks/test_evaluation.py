"""The evaluation check against sklearn.metrics computed directly on the same data."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from skl2onnx import to_onnx
from sklearn import metrics as sk
from sklearn.linear_model import LogisticRegression

from modelkeep.checks import METRIC_NAMES, CheckInput, default_suite, parse_suite, run_checks
from modelkeep.errors import CheckFailed, ColumnNotFound

from .conftest import FEATURES, Case, save_skops, write_dataset
from .support import read_back, run_one

EVALUATION = "checks:\n  - kind: evaluation\n"


def expected_classification(model: Any, data_dir: Path) -> dict[str, float]:
    frame = read_back(data_dir)
    truth = frame["y"]
    predicted = model.predict(frame[FEATURES])
    proba = model.predict_proba(frame[FEATURES])[:, 1]
    return {
        "accuracy": sk.accuracy_score(truth, predicted),
        "balanced_accuracy": sk.balanced_accuracy_score(truth, predicted),
        "precision": sk.precision_score(truth, predicted),
        "recall": sk.recall_score(truth, predicted),
        "f1": sk.f1_score(truth, predicted),
        "auc": sk.roc_auc_score(truth, proba),
        "log_loss": sk.log_loss(truth, model.predict_proba(frame[FEATURES])),
        "rows": float(len(frame)),
    }


def test_binary_classifier_metrics_match_sklearn(classifier_case: Case) -> None:
    result = run_one(classifier_case.model_dir, classifier_case.data_dir, EVALUATION)
    expected = expected_classification(classifier_case.model, classifier_case.data_dir)
    assert result.kind == "evaluation"
    assert result.suite == "evaluation"
    assert result.metrics == pytest.approx(expected)
    assert result.passed
    assert result.failures == []
    assert result.report["task"] == "binary"
    assert result.report["model_file"] == "model.skops"
    assert result.report["model_sha256"].startswith("sha256:")
    assert result.report["features"] == FEATURES
    assert result.report["dataset_files"] == ["a.csv", "b.parquet"]
    matrix = np.asarray(result.report["confusion_matrix"])
    assert matrix.sum() == len(classifier_case.frame)


def test_multiclass_uses_macro_averages(tmp_path: Path, classifier_case: Case) -> None:
    frame = classifier_case.frame.copy()
    frame["y"] = np.digitize(frame["x1"] + frame["x2"], [-0.7, 0.7])
    model = LogisticRegression().fit(frame[FEATURES], frame["y"])
    data_dir = write_dataset(frame, tmp_path / "data")
    result = run_one(save_skops(model, tmp_path / "model"), data_dir, EVALUATION)
    back = read_back(data_dir)
    predicted = model.predict(back[FEATURES])
    proba = model.predict_proba(back[FEATURES])
    assert result.report["task"] == "multiclass"
    assert result.metrics["f1"] == pytest.approx(sk.f1_score(back["y"], predicted, average="macro"))
    assert result.metrics["precision"] == pytest.approx(
        sk.precision_score(back["y"], predicted, average="macro")
    )
    assert result.metrics["auc"] == pytest.approx(
        sk.roc_auc_score(back["y"], proba, multi_class="ovr", average="macro")
    )


def test_regressor_metrics_match_sklearn(regressor_case: Case) -> None:
    result = run_one(regressor_case.model_dir, regressor_case.data_dir, EVALUATION, target="price")
    frame = read_back(regressor_case.data_dir)
    predicted = regressor_case.model.predict(frame[["x1", "x2"]].to_numpy())
    assert result.report["task"] == "regression"
    assert result.report["features"] == ["x1", "x2"]
    assert result.metrics == pytest.approx(
        {
            "rmse": sk.root_mean_squared_error(frame["price"], predicted),
            "mae": sk.mean_absolute_error(frame["price"], predicted),
            "r2": sk.r2_score(frame["price"], predicted),
            "rows": float(len(frame)),
        }
    )


@pytest.mark.parametrize("zipmap", [True, False])
def test_onnx_classifier_matches_sklearn(
    tmp_path: Path, classifier_case: Case, zipmap: bool
) -> None:
    frame = classifier_case.frame
    x = frame[FEATURES].to_numpy(np.float32)
    model = LogisticRegression().fit(x, frame["y"])
    exported = to_onnx(model, x[:1], options={id(model): {"zipmap": zipmap}})
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.onnx").write_bytes(exported.SerializeToString())
    (tmp_path / "model" / "README.md").write_text("not a model")
    result = run_one(
        tmp_path / "model", classifier_case.data_dir, EVALUATION, sensitive="gender"
    )  # gender is not a feature: the sensitive column is left out
    back = read_back(classifier_case.data_dir)[FEATURES].to_numpy(np.float32)
    predicted = model.predict(back)
    truth = read_back(classifier_case.data_dir)["y"]
    assert result.report["model_format"] == "onnx"
    assert result.metrics["accuracy"] == pytest.approx(sk.accuracy_score(truth, predicted))
    assert result.metrics["auc"] == pytest.approx(
        sk.roc_auc_score(truth, model.predict_proba(back)[:, 1]), abs=1e-4
    )


def test_asserts_pass_and_fail_with_the_value_seen(classifier_case: Case) -> None:
    suite = (
        "checks:\n"
        "  - kind: evaluation\n"
        "    assert: ['accuracy >= 0.5', 'auc > 0.99', 'rows == 300', 'rmse <= 1']\n"
    )
    result = run_one(classifier_case.model_dir, classifier_case.data_dir, suite)
    auc = result.metrics["auc"]
    assert auc is not None
    assert auc < 0.99
    assert not result.passed
    assert result.failures == [f"auc > 0.99: {auc:.6g}", "rmse <= 1: not reported"]
    assert result.report["asserts"] == ["accuracy >= 0.5", "auc > 0.99", "rows == 300", "rmse <= 1"]


def test_every_metric_produced_is_a_known_name(classifier_case: Case, regressor_case: Case) -> None:
    produced: set[str] = set()
    for case, target, sensitive in [
        (classifier_case, "y", "gender"),
        (regressor_case, "price", None),
    ]:
        inp = CheckInput(case.model_dir, case.data_dir, target, sensitive)
        for outcome in run_checks(inp, default_suite(sensitive)):
            produced |= set(outcome.metrics)
            json.dumps(outcome.report, allow_nan=False)
    assert produced <= set(METRIC_NAMES)
    assert {"accuracy", "rmse", "demographic_parity_difference", "robustness_noise"} <= produced


def test_missing_target_names_the_columns(classifier_case: Case) -> None:
    with pytest.raises(ColumnNotFound, match=r"'label'.*x1, x2, x3, gender, y"):
        run_one(classifier_case.model_dir, classifier_case.data_dir, EVALUATION, target="label")


def test_missing_sensitive_column(classifier_case: Case) -> None:
    with pytest.raises(ColumnNotFound, match="'race'"):
        run_one(classifier_case.model_dir, classifier_case.data_dir, EVALUATION, sensitive="race")


def test_missing_feature_of_the_model(tmp_path: Path, classifier_case: Case) -> None:
    data_dir = write_dataset(classifier_case.frame.drop(columns=["x3"]), tmp_path / "data")
    with pytest.raises(ColumnNotFound, match=r"feature column 'x3'"):
        run_one(classifier_case.model_dir, data_dir, EVALUATION)


def test_prediction_failure_is_one_line(tmp_path: Path, classifier_case: Case) -> None:
    frame = classifier_case.frame.assign(extra=1.0)
    x = frame[FEATURES].to_numpy(np.float32)
    model = LogisticRegression().fit(x, frame["y"])
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "m.onnx").write_bytes(to_onnx(model, x[:1]).SerializeToString())
    data_dir = write_dataset(frame, tmp_path / "data")
    with pytest.raises(CheckFailed) as caught:
        run_one(tmp_path / "model", data_dir, EVALUATION, sensitive="gender")
    assert "expects 3 features, the dataset gives 4" in caught.value.message
    assert "\n" not in caught.value.message


def test_rows_without_target_are_left_out(tmp_path: Path, classifier_case: Case) -> None:
    frame = classifier_case.frame.astype({"y": float})
    frame.loc[:9, "y"] = np.nan
    data_dir = write_dataset(frame, tmp_path / "data")
    result = run_one(classifier_case.model_dir, data_dir, EVALUATION)
    assert result.metrics["rows"] == len(frame) - 10
    assert result.report["rows_without_target"] == 10


def test_missing_scikit_learn_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, classifier_case: Case
) -> None:
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(CheckFailed, match="scikit-learn is not installed") as caught:
        run_one(classifier_case.model_dir, classifier_case.data_dir, EVALUATION)
    assert "modelkeep[checks]" in caught.value.hint


def test_suite_parse_is_reused(classifier_case: Case) -> None:
    suite = parse_suite("checks:\n  - kind: evaluation\n    name: holdout\n")
    result = run_one(classifier_case.model_dir, classifier_case.data_dir, suite)
    assert result.suite == "holdout"


def test_dataset_without_data_files(tmp_path: Path, classifier_case: Case) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_text("no rows here")
    with pytest.raises(CheckFailed, match=r"no CSV or Parquet file \(files seen: notes\.txt\)"):
        run_one(classifier_case.model_dir, tmp_path / "data", EVALUATION)


def test_dataset_files_must_share_a_schema(tmp_path: Path, classifier_case: Case) -> None:
    data_dir = write_dataset(classifier_case.frame, tmp_path / "data")
    (data_dir / "c.csv").write_text("x1,when\n1,2020-01-01\n")
    with pytest.raises(CheckFailed, match="do not share one schema"):
        run_one(classifier_case.model_dir, data_dir, EVALUATION)
