"""Safe loading: only skops files of trusted types and ONNX graphs are ever loaded."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import joblib
import pytest
from sklearn.linear_model import LinearRegression

from modelkeep.checks import parse_suite
from modelkeep.errors import CheckFailed, InvalidPolicy, UnsafeModelFormat

from .conftest import Case, save_skops
from .support import run_one

EVALUATION = "checks:\n  - kind: evaluation\n"


class ShiftedRegression(LinearRegression):
    """A custom estimator: skops would have to import this module to load it."""


class Tripwire:
    """Unpickling this creates a file: proof that a pickle was (or was not) loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.marker,))


def test_pickle_is_never_unpickled(tmp_path: Path, classifier_case: Case) -> None:
    marker = tmp_path / "unpickled"
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "model.pkl").write_bytes(pickle.dumps(Tripwire(marker)))
    (model_dir / "config.json").write_text("{}")
    with pytest.raises(UnsafeModelFormat) as caught:
        run_one(model_dir, classifier_case.data_dir, EVALUATION)
    message = caught.value.message
    assert "config.json, model.pkl" in message
    assert "never unpickled" in message
    assert ".skops and .onnx" in message
    assert "command check" in caught.value.hint
    assert not marker.exists()
    pickle.loads((model_dir / "model.pkl").read_bytes())  # the tripwire works
    assert marker.exists()


def test_joblib_file_is_refused(tmp_path: Path, classifier_case: Case) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    joblib.dump(classifier_case.model, model_dir / "model.joblib")
    with pytest.raises(UnsafeModelFormat, match=r"model\.joblib.*never unpickled"):
        run_one(model_dir, classifier_case.data_dir, EVALUATION)


def test_naming_a_pickle_as_model_file_is_refused(tmp_path: Path, classifier_case: Case) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(classifier_case.model_dir, model_dir)
    (model_dir / "weights.pt").write_bytes(b"\x80\x04N.")
    suite = "model_file: weights.pt\n" + EVALUATION
    with pytest.raises(UnsafeModelFormat, match=r"model_file .weights\.pt. cannot be loaded"):
        run_one(model_dir, classifier_case.data_dir, suite)


def test_no_model_file_at_all(tmp_path: Path, classifier_case: Case) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "notes.txt").write_text("hello")
    with pytest.raises(UnsafeModelFormat, match=r"notes\.txt"):
        run_one(model_dir, classifier_case.data_dir, EVALUATION)


def test_skops_with_a_custom_type_is_refused(tmp_path: Path, regressor_case: Case) -> None:
    frame = regressor_case.frame
    model = ShiftedRegression().fit(frame[["x1", "x2"]].to_numpy(), frame["price"])
    model_dir = save_skops(model, tmp_path / "model")
    with pytest.raises(UnsafeModelFormat, match=r"ShiftedRegression") as caught:
        run_one(model_dir, regressor_case.data_dir, EVALUATION, target="price")
    assert "outside scikit-learn, numpy and scipy" in caught.value.message


def test_several_model_files_need_model_file(tmp_path: Path, classifier_case: Case) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(classifier_case.model_dir, model_dir)
    shutil.copy(model_dir / "model.skops", model_dir / "other.skops")
    with pytest.raises(InvalidPolicy, match=r"several model files \(model\.skops, other\.skops\)"):
        run_one(model_dir, classifier_case.data_dir, EVALUATION)
    chosen = run_one(model_dir, classifier_case.data_dir, "model_file: other.skops\n" + EVALUATION)
    assert chosen.report["model_file"] == "other.skops"


def test_model_file_must_be_one_of_the_files(classifier_case: Case) -> None:
    suite = parse_suite("model_file: gone.skops\n" + EVALUATION)
    with pytest.raises(InvalidPolicy, match=r"gone\.skops.*model\.skops"):
        run_one(classifier_case.model_dir, classifier_case.data_dir, suite)


def test_corrupt_skops_file(tmp_path: Path, classifier_case: Case) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.skops").write_bytes(b"not a zip file")
    with pytest.raises(CheckFailed, match=r"model\.skops is not a readable skops file"):
        run_one(tmp_path / "model", classifier_case.data_dir, EVALUATION)
