"""``load_predictor`` on a directory of (already verified) files: which file it loads,
what it refuses before running any code, and a model that raises."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from modelkeep.errors import ModelNotLoadable, PredictionFailed, UnsafeModelFormat
from modelkeep.serving.predictor import Predictor, load_predictor

FRAME = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})


def double(x: np.ndarray) -> np.ndarray:
    return x * 2


def load(directory: Path, allow_code: bool = False) -> Predictor:
    files = sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())
    return load_predictor(
        directory,
        files,
        ref="m@1",
        digest="sha256:" + "0" * 64,
        recorded=None,
        code_allowed=lambda: allow_code,
    )


def test_a_version_with_several_model_files_names_the_one_to_load(tmp_path: Path) -> None:
    model = LogisticRegression().fit(FRAME, [0, 1, 0, 1])
    sio.dump(model, tmp_path / "a.skops")
    sio.dump(model, tmp_path / "b.skops")
    with pytest.raises(ModelNotLoadable, match=r"several model files \(a.skops, b.skops\)"):
        load(tmp_path)
    (tmp_path / "modelkeep.yaml").write_text("model_file: b.skops\n")
    assert load(tmp_path).model_file == "b.skops"
    (tmp_path / "modelkeep.yaml").write_text("model_file: c.skops\n")
    with pytest.raises(ModelNotLoadable, match=r"names model_file 'c\.skops'"):
        load(tmp_path)


def test_a_file_that_is_not_what_its_suffix_says_is_not_loadable(tmp_path: Path) -> None:
    (tmp_path / "model.skops").write_bytes(b"not a zip")
    with pytest.raises(ModelNotLoadable, match=r"model\.skops is not a readable skops file"):
        load(tmp_path)
    (tmp_path / "model.skops").unlink()
    (tmp_path / "model.onnx").write_bytes(b"not a graph")
    with pytest.raises(ModelNotLoadable, match=r"model\.onnx is not a loadable ONNX model"):
        load(tmp_path)


def test_a_skops_file_naming_an_untrusted_type_is_refused_before_loading(tmp_path: Path) -> None:
    pipeline = make_pipeline(FunctionTransformer(double), LogisticRegression())
    sio.dump(pipeline.fit(FRAME, [0, 1, 0, 1]), tmp_path / "model.skops")
    with pytest.raises(UnsafeModelFormat, match=r"names types outside scikit-learn.*double"):
        load(tmp_path)


def test_a_model_that_raises_is_prediction_failed_not_a_stack_trace(tmp_path: Path) -> None:
    (tmp_path / "boom.py").write_text(
        "class Boom:\n"
        "    def __init__(self, directory):\n"
        "        pass\n"
        "    def predict(self, frame):\n"
        "        raise ZeroDivisionError('division by zero in the model')\n"
    )
    (tmp_path / "modelkeep.yaml").write_text(
        "predictor: boom:Boom\nsignature: {inputs: [{name: a, dtype: float64}]}\n"
    )
    predictor = load(tmp_path, allow_code=True)
    with pytest.raises(PredictionFailed, match=r"m@1 \(boom.py\) raised ZeroDivisionError"):
        predictor.predict({"a": [1.0]})
    assert not (tmp_path / "__pycache__").exists()  # compiled from the file, nothing written


def test_a_python_predictor_without_a_signature_or_its_class_is_not_loadable(
    tmp_path: Path,
) -> None:
    (tmp_path / "p.py").write_text("class P:\n    def __init__(self, d): pass\n")
    (tmp_path / "modelkeep.yaml").write_text("predictor: p:Missing\n")
    with pytest.raises(ModelNotLoadable, match=r"p\.py has no class Missing with a predict method"):
        load(tmp_path, allow_code=True)
    (tmp_path / "p.py").write_text(
        "class P:\n    def __init__(self, d): pass\n    def predict(self, x): return x\n"
    )
    (tmp_path / "modelkeep.yaml").write_text("predictor: p:P\n")
    with pytest.raises(ModelNotLoadable, match="m@1 has no signature"):
        load(tmp_path, allow_code=True)
    (tmp_path / "modelkeep.yaml").write_text("predictor: q:P\n")
    with pytest.raises(ModelNotLoadable, match=r"has no file q\.py"):
        load(tmp_path, allow_code=True)
