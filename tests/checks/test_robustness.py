"""The robustness check: seeded perturbations, models that refuse NaN and models that do not."""

from __future__ import annotations

import numpy as np
import pytest

from modelkeep.checks import CheckInput, parse_suite, run_checks

from .conftest import FEATURES, Case
from .support import read_back, run_one

ROBUSTNESS = "checks:\n  - kind: robustness\n    noise: 0.2\n    missing: 0.1\n    seed: 7\n"


def test_model_refusing_nan_scores_one(classifier_case: Case) -> None:
    result = run_one(classifier_case.model_dir, classifier_case.data_dir, ROBUSTNESS)
    assert result.metrics["robustness_missing"] == 1.0
    assert "NaN" in result.report["robustness_missing"]["error"]
    noise = result.metrics["robustness_noise"]
    assert noise is not None
    assert 0.0 < noise < 0.5
    assert result.report["noise"] == 0.2
    assert result.report["seed"] == 7
    assert result.report["numeric_features"] == FEATURES


def test_model_handling_nan_scores_below_one(hist_case: Case) -> None:
    result = run_one(hist_case.model_dir, hist_case.data_dir, ROBUSTNESS)
    missing = result.metrics["robustness_missing"]
    assert missing is not None
    assert 0.0 < missing < 1.0
    assert "error" not in result.report["robustness_missing"]
    assert result.report["robustness_missing"]["changed_rows"] == round(missing * 300)


def test_out_of_range_rows_are_a_tenth(classifier_case: Case) -> None:
    result = run_one(classifier_case.model_dir, classifier_case.data_dir, ROBUSTNESS)
    out_of_range = result.metrics["robustness_out_of_range"]
    assert out_of_range is not None
    assert out_of_range <= 0.1  # only the disturbed rows can change


def test_seeded_and_deterministic(hist_case: Case) -> None:
    inp = CheckInput(hist_case.model_dir, hist_case.data_dir, "y")
    first = run_checks(inp, parse_suite(ROBUSTNESS))
    again = run_checks(inp, parse_suite(ROBUSTNESS))
    other_seed = run_checks(inp, parse_suite(ROBUSTNESS.replace("seed: 7", "seed: 8")))
    assert first[0].metrics == again[0].metrics
    assert first[0].metrics != other_seed[0].metrics


def test_no_noise_changes_nothing(classifier_case: Case) -> None:
    suite = "checks:\n  - kind: robustness\n    noise: 0\n    assert: ['robustness_noise == 0']\n"
    result = run_one(classifier_case.model_dir, classifier_case.data_dir, suite)
    assert result.passed


def test_regression_change_is_scaled_by_the_target_std(regressor_case: Case) -> None:
    result = run_one(regressor_case.model_dir, regressor_case.data_dir, ROBUSTNESS, target="price")
    frame = read_back(regressor_case.data_dir)
    noise = result.metrics["robustness_noise"]
    assert noise is not None
    scaled = result.report["robustness_noise"]["mean_absolute_change"] / np.std(frame["price"])
    assert noise == pytest.approx(scaled)
    assert 0.0 < noise < 1.0
    out_of_range = result.metrics["robustness_out_of_range"]
    assert out_of_range is not None
    assert noise < out_of_range <= 1.0
