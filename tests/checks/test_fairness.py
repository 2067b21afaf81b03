"""The fairness check against fairlearn computed directly on the same predictions."""

from __future__ import annotations

from pathlib import Path

import pytest
from fairlearn.metrics import (
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
)

from modelkeep.errors import InvalidPolicy

from .conftest import FEATURES, Case, write_dataset
from .support import read_back, run_one

FAIRNESS = "checks:\n  - kind: fairness\n    assert: ['demographic_parity_difference <= 0.2']\n"


def expected(case: Case) -> dict[str, float]:
    frame = read_back(case.data_dir)
    predicted = case.model.predict(frame[FEATURES])
    groups = {"sensitive_features": frame["gender"]}
    return {
        "demographic_parity_difference": demographic_parity_difference(
            frame["y"], predicted, **groups
        ),
        "demographic_parity_ratio": demographic_parity_ratio(frame["y"], predicted, **groups),
        "equalized_odds_difference": equalized_odds_difference(frame["y"], predicted, **groups),
        "rows": float(len(frame)),
    }


def test_biased_model_fails_demographic_parity(biased_case: Case) -> None:
    result = run_one(biased_case.model_dir, biased_case.data_dir, FAIRNESS, sensitive="gender")
    assert result.metrics == pytest.approx(expected(biased_case))
    difference = result.metrics["demographic_parity_difference"]
    assert difference is not None
    assert difference > 0.5
    assert not result.passed
    assert result.failures == [f"demographic_parity_difference <= 0.2: {difference:.6g}"]
    groups = result.report["groups"]
    assert set(groups) == {"f", "m"}
    assert groups["m"]["selection_rate"] - groups["f"]["selection_rate"] == pytest.approx(
        difference
    )
    assert groups["f"]["count"] + groups["m"]["count"] == len(biased_case.frame)
    assert result.report["positive_class"] == 1


def test_fair_enough_model_passes(classifier_case: Case) -> None:
    result = run_one(
        classifier_case.model_dir, classifier_case.data_dir, FAIRNESS, sensitive="gender"
    )
    assert result.metrics == pytest.approx(expected(classifier_case))
    assert result.passed


def test_sensitive_from_the_suite(biased_case: Case) -> None:
    suite = "checks:\n  - kind: fairness\n    sensitive: gender\n"
    result = run_one(biased_case.model_dir, biased_case.data_dir, suite)
    assert result.report["sensitive"] == "gender"


def test_no_sensitive_column_anywhere(biased_case: Case) -> None:
    with pytest.raises(InvalidPolicy, match=r"line 2.*no sensitive column") as caught:
        run_one(biased_case.model_dir, biased_case.data_dir, "checks:\n  - kind: fairness\n")
    assert "--sensitive" in caught.value.hint


def test_regressor_has_no_fairness_metrics(tmp_path: Path, regressor_case: Case) -> None:
    frame = regressor_case.frame.assign(
        region=["north", "south"] * (len(regressor_case.frame) // 2)
    )
    data_dir = write_dataset(frame, tmp_path / "data")
    suite = "checks:\n  - kind: fairness\n    sensitive: region\n"
    result = run_one(regressor_case.model_dir, data_dir, suite, target="price")
    assert result.metrics["demographic_parity_difference"] is None
    assert "regressor" in result.report["note"]
