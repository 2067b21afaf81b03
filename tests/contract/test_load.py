"""``mk.load(REF)``: a version loaded for inference, through the SDK in process and over
HTTP, on SQLite and PostgreSQL. Real scikit-learn (skops) and ONNX models."""

from __future__ import annotations

import contextlib
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import skops.io as sio
from skl2onnx import to_onnx
from sklearn.linear_model import LinearRegression, LogisticRegression

import modelkeep
from modelkeep.config import Settings
from modelkeep.errors import (
    DigestMismatch,
    IntegrityError,
    InvalidInferenceInput,
    InvalidMetadata,
    UnsafeModelFormat,
)
from tests.conftest import live_server

FEATURES = ["amount", "age", "hour"]


@dataclass(frozen=True)
class Models:
    frame: pd.DataFrame
    classifier: Any
    skops_dir: Path
    onnx_dir: Path
    regressor: Any
    plain_dir: Path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    """A classifier fitted on named columns, as skops and as ONNX; a regressor fitted on
    a bare array (its signature is one tensor)."""
    root = tmp_path_factory.mktemp("models")
    rng = np.random.default_rng(7)
    frame = pd.DataFrame(rng.normal(size=(80, 3)), columns=FEATURES)
    labels = (frame["amount"] + 0.5 * frame["age"] > 0).astype(np.int64)
    classifier = LogisticRegression().fit(frame, labels)
    (root / "skops").mkdir()
    sio.dump(classifier, root / "skops" / "model.skops")
    exported = to_onnx(
        classifier,
        frame.to_numpy()[:1].astype(np.float32),
        options={id(classifier): {"zipmap": False}},
    )
    (root / "onnx").mkdir()
    (root / "onnx" / "model.onnx").write_bytes(exported.SerializeToString())
    regressor = LinearRegression().fit(frame.to_numpy(), frame["amount"] * 2)
    (root / "plain").mkdir()
    sio.dump(regressor, root / "plain" / "model.skops")
    return Models(frame, classifier, root / "skops", root / "onnx", regressor, root / "plain")


def blob_path(settings: Settings, digest: str) -> Path:
    hexpart = digest.removeprefix("sha256:")
    return Path(settings.uri) / "blobs" / "sha256" / hexpart[:2] / hexpart[2:]


def test_a_skops_model_loads_by_stage_and_predicts_as_scikit_learn_does(
    mk: modelkeep.Client, models: Models, tmp_path: Path
) -> None:
    mk.create_model("fraud")
    version = mk.push("fraud", [models.skops_dir])
    mk.promote(version.ref, to="production")
    predictor = mk.load("fraud@production", cache_dir=tmp_path / "cache")
    assert (predictor.ref, predictor.digest, predictor.format) == (
        version.ref,
        version.digest,
        "sklearn",
    )
    assert predictor.model_file == "model.skops"
    assert predictor.path == tmp_path / "cache" / "models" / version.digest.replace(":", "-")
    expected = models.classifier.predict(models.frame)
    assert np.array_equal(predictor.predict(models.frame), expected)
    columns = {name: models.frame[name].tolist() for name in reversed(FEATURES)}
    assert np.array_equal(predictor.predict(columns), expected)  # by name, any order
    rows = models.frame.head(2).to_dict(orient="records")
    assert np.array_equal(predictor.predict(rows), expected[:2])
    recorded = {
        "inputs": [{"name": n, "dtype": "float64"} for n in FEATURES],
        "outputs": [{"name": "predictions", "dtype": "int64", "shape": [-1]}],
    }
    assert predictor.signature.to_dict() == recorded
    assert mk.show(version.ref).metadata.signature == recorded  # recorded at push
    report = mk.verify()  # the signature is covered by the version's metadata digest
    assert report.ok and not report.damaged


def test_an_onnx_model_loads_with_the_graphs_signature(
    mk: modelkeep.Client, models: Models, tmp_path: Path
) -> None:
    mk.create_model("fraud")
    version = mk.push("fraud", [models.onnx_dir])
    predictor = mk.load(version.ref, cache_dir=tmp_path)
    assert predictor.format == "onnx"
    assert predictor.signature.to_dict() == {
        "inputs": [{"name": "X", "dtype": "float32", "shape": [-1, 3]}],
        "outputs": [
            {"name": "label", "dtype": "int64", "shape": [-1]},
            {"name": "probabilities", "dtype": "float32", "shape": [-1, 2]},
        ],
    }
    expected = models.classifier.predict(models.frame)
    assert np.array_equal(predictor.predict(models.frame), expected)  # columns, in order
    assert np.array_equal(predictor.predict(models.frame.to_numpy()), expected)
    outputs = predictor.predict_outputs(models.frame.to_numpy()[:5])
    assert np.allclose(
        outputs["probabilities"], models.classifier.predict_proba(models.frame[:5]), atol=1e-5
    )


def test_a_model_fitted_on_an_array_takes_one_tensor_of_its_width(
    mk: modelkeep.Client, models: Models, tmp_path: Path
) -> None:
    mk.create_model("price")
    version = mk.push("price", [models.plain_dir])
    predictor = mk.load(version.ref, cache_dir=tmp_path)
    assert predictor.signature.to_dict()["inputs"] == [
        {"name": "input", "dtype": "float64", "shape": [-1, 3]}
    ]
    matrix = models.frame.to_numpy()
    assert np.allclose(predictor.predict(matrix), models.regressor.predict(matrix))
    with pytest.raises(InvalidInferenceInput, match=r"has shape \[80, 2\]; price@1 takes"):
        predictor.predict(matrix[:, :2])


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"amount": [1.0], "age": [2.0]}, r"the inputs lack column 'hour'; fraud@1 takes"),
        ({"amount": ["a lot"], "age": [1], "hour": [3]}, r"'amount' holds text; .* float64"),
        (np.zeros((2, 3)), r"takes named columns \(amount, age, hour\), not an array"),
        ({"amount": [1.0, 2.0], "age": [1.0], "hour": [1.0]}, r"different lengths \(1, 2\)"),
        ("amount=1", r"cannot read inputs of type str"),
    ],
)
def test_inputs_that_do_not_match_the_signature_are_refused_with_a_stable_code(
    mk: modelkeep.Client, models: Models, tmp_path: Path, inputs: Any, message: str
) -> None:
    mk.create_model("fraud")
    predictor = mk.load(mk.push("fraud", [models.skops_dir]).ref, cache_dir=tmp_path)
    with pytest.raises(InvalidInferenceInput, match=message) as caught:
        predictor.predict(inputs)
    assert caught.value.code == "invalid_inference_input"
    assert caught.value.http_status == 422


@pytest.mark.parametrize("transport", ["local", "live"])
def test_a_tampered_blob_is_refused_at_load_and_nothing_is_cached(
    transport: str, models: Models, settings: Settings, tmp_path: Path
) -> None:
    """In process, and over a real server (the in-process test client re-raises the
    server's refusal instead of cutting the stream, as a server does)."""
    with contextlib.ExitStack() as stack:
        if transport == "local":
            mk = stack.enter_context(modelkeep.connect(settings=settings))
        else:
            url, token = stack.enter_context(live_server(settings))
            mk = stack.enter_context(modelkeep.connect(url, token=token))
        mk.create_model("fraud")
        version = mk.push("fraud", [models.skops_dir])
        blob = blob_path(settings, version.files[0].digest)
        blob.chmod(0o644)
        original = blob.read_bytes()
        blob.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # same size, one bit
        with pytest.raises(IntegrityError) as caught:
            mk.load(version.ref, cache_dir=tmp_path)
        assert caught.value.code == DigestMismatch.code
        assert caught.value.exit_code == 3
        assert not list((tmp_path / "models").iterdir())


def test_a_cached_file_changed_on_disk_is_pulled_again_and_verified(
    mk: modelkeep.Client, models: Models, tmp_path: Path
) -> None:
    mk.create_model("fraud")
    version = mk.push("fraud", [models.skops_dir])
    first = mk.load(version.ref, cache_dir=tmp_path)
    cached = first.path / "model.skops"
    good = cached.read_bytes()
    cached.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    again = mk.load(version.ref, cache_dir=tmp_path)
    assert again.path == first.path and cached.read_bytes() == good
    assert np.array_equal(again.predict(models.frame), models.classifier.predict(models.frame))


class _Trap:
    """Unpickling this touches the marker file: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


def test_pickle_is_never_loaded(mk: modelkeep.Client, tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "model.pkl").write_bytes(pickle.dumps(_Trap(marker)))
    mk.create_model("fraud")
    version = mk.push("fraud", [tmp_path / "v"])
    assert version.metadata.signature is None
    with pytest.raises(UnsafeModelFormat, match=r"pickle-based files \(model.pkl\) are never"):
        mk.load(version.ref, cache_dir=tmp_path / "cache")
    assert not marker.exists()


PREDICTOR = """
from pathlib import Path

Path({marker!r}).touch()  # runs when the module is imported


class Doubler:
    def __init__(self, directory):
        self.factor = float((directory / "factor.txt").read_text())

    def predict(self, frame):
        return (frame["x"] * self.factor).to_numpy()
"""
DECLARATION = """\
predictor: predictor:Doubler
signature:
  inputs: [{name: x, dtype: float64}]
  outputs: [{name: doubled, dtype: float64}]
"""


def test_a_python_predictor_loads_only_where_the_policy_allows_code(
    mk: modelkeep.Client, tmp_path: Path
) -> None:
    marker = tmp_path / "imported"
    folder = tmp_path / "v"
    folder.mkdir()
    (folder / "predictor.py").write_text(PREDICTOR.format(marker=str(marker)))
    (folder / "factor.txt").write_text("2")
    (folder / "modelkeep.yaml").write_text(DECLARATION)
    mk.create_model("fraud")
    version = mk.push("fraud", [folder])
    assert version.metadata.signature == {
        "inputs": [{"name": "x", "dtype": "float64"}],
        "outputs": [{"name": "doubled", "dtype": "float64"}],
    }
    with pytest.raises(UnsafeModelFormat, match=r"the policy does not allow code models"):
        mk.load(version.ref, cache_dir=tmp_path / "cache")
    mk.set_policy("format: 1\nmodels: {other: {serving: {allow_code: true}}}\n")
    with pytest.raises(UnsafeModelFormat):  # allowed for another model only
        mk.load(version.ref, cache_dir=tmp_path / "cache")
    assert not marker.exists()  # refused before any of its code ran
    mk.set_policy("format: 1\nserving: {allow_code: true}\n")
    predictor = mk.load(version.ref, cache_dir=tmp_path / "cache")
    assert predictor.format == "python" and marker.exists()
    assert predictor.predict({"x": [1, 2.5]}).tolist() == [2.0, 5.0]
    with pytest.raises(InvalidInferenceInput, match="lack column 'x'"):
        predictor.predict({"y": [1]})


def test_a_declared_signature_wins_and_a_malformed_declaration_refuses_the_push(
    mk: modelkeep.Client, models: Models, tmp_path: Path
) -> None:
    folder = tmp_path / "v"
    folder.mkdir()
    (folder / "model.skops").write_bytes((models.skops_dir / "model.skops").read_bytes())
    (folder / "modelkeep.yaml").write_text(
        "signature:\n  inputs: [{name: amount, dtype: float64}, {name: age, dtype: int64},"
        " {name: hour, dtype: float64}]\n"
    )
    mk.create_model("fraud")
    version = mk.push("fraud", [folder])
    predictor = mk.load(version.ref, cache_dir=tmp_path / "cache")
    assert predictor.signature.inputs[1].dtype == "int64"
    with pytest.raises(InvalidInferenceInput, match=r"'age' holds numbers; fraud@1 takes int64"):
        predictor.predict({"amount": [1.0], "age": [2.5], "hour": [3.0]})
    (folder / "modelkeep.yaml").write_text("signature: {inputs: [{name: a, dtype: complex}]}\n")
    with pytest.raises(InvalidMetadata, match=r"dtype 'complex'"):
        mk.push("fraud", [folder])
    assert [v.number for v in mk.versions("fraud")] == [1]


def test_a_version_pushed_without_a_signature_gets_one_when_loaded(
    mk: modelkeep.Client, models: Models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelkeep.serving import inspect

    monkeypatch.setattr(inspect, "signature_of", lambda sources: None)  # as before issue 13
    mk.create_model("fraud")
    version = mk.push("fraud", [models.skops_dir])
    assert version.metadata.signature is None
    assert "signature" not in version.to_dict()["metadata"]  # older versions' digests hold
    predictor = mk.load(version.ref, cache_dir=tmp_path)
    assert predictor.signature.input_names == tuple(FEATURES)


def test_with_the_cache_off_a_load_uses_a_directory_removed_with_the_predictor(
    mk: modelkeep.Client, models: Models
) -> None:
    import gc

    assert mk.settings.hash_cache_dir is None  # MODELKEEP_CACHE_DIR=off in the tests
    mk.create_model("fraud")
    predictor = mk.load(mk.push("fraud", [models.skops_dir]).ref)
    directory = predictor.path
    assert (directory / "model.skops").is_file()
    assert np.array_equal(predictor.predict(models.frame), models.classifier.predict(models.frame))
    del predictor
    gc.collect()
    assert not directory.exists()
