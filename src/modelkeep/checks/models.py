"""Loading a model version's model without running code from its bytes.

Only two formats are loaded: scikit-learn models saved with skops (``.skops``), whose
types are checked before loading, and ONNX graphs (``.onnx``) run by onnxruntime on the
CPU. Pickle-based files (``.pkl``, ``.joblib``, ``.pt`` …) are never unpickled: unpickling
runs whatever code the file names.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from modelkeep.checks.data import Array, Features, name_list
from modelkeep.domain.digest import digest_of
from modelkeep.errors import CheckFailed, InvalidPolicy, ModelNotLoadable, UnsafeModelFormat
from modelkeep.serving.loading import (
    PICKLE_SUFFIXES,
    SAFE_HINT,
    SAFE_SUFFIXES,
    open_onnx,
    open_skops,
)

ONNX_DTYPES = {"tensor(float)": np.float32, "tensor(double)": np.float64}


@dataclass(frozen=True)
class Prediction:
    labels: Array
    """One prediction per row: a class label, or a number for regression."""
    proba: Array | None = None
    """[rows, classes] probabilities in the order of ``Model.classes``, when known."""


class Model(Protocol):
    """What the checks need of a loaded model, whatever its format."""

    @property
    def is_classifier(self) -> bool: ...

    @property
    def classes(self) -> Array | None: ...

    @property
    def feature_names(self) -> tuple[str, ...] | None: ...

    def predict(self, features: Features, *, proba: bool = False) -> Prediction: ...


@dataclass(frozen=True)
class LoadedModel:
    model: Model
    file: str
    digest: str
    format: str


def load_model(model_dir: Path, model_file: str | None) -> LoadedModel:
    """The version's model, loaded safely; UnsafeModelFormat when no file can be."""
    path = model_path(model_dir, model_file)
    name = path.relative_to(model_dir).as_posix()
    suffix = path.suffix.lower()
    model: Model = load_skops(path, name) if suffix == ".skops" else load_onnx(path, name)
    return LoadedModel(model, name, file_digest(path), suffix.lstrip("."))


def model_path(model_dir: Path, model_file: str | None) -> Path:
    """The one model file to load: the one named, or the only safe one among the files."""
    files = sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file())
    if model_file is not None:
        if model_file not in files:
            raise InvalidPolicy(
                f"model_file '{model_file}' is not one of the version's files ({name_list(files)})",
                "name one of the version's files in the suite's model_file",
            )
        chosen = [model_file]
    else:
        chosen = [f for f in files if Path(f).suffix.lower() in SAFE_SUFFIXES]
    if len(chosen) > 1:
        raise InvalidPolicy(
            f"the version has several model files ({name_list(chosen)})",
            "name the one to check with 'model_file:' in a suite file (--suite)",
        )
    if not chosen or Path(chosen[0]).suffix.lower() not in SAFE_SUFFIXES:
        raise unsafe(files, model_file)
    return model_dir / chosen[0]


def unsafe(files: list[str], named: str | None) -> UnsafeModelFormat:
    """The refusal, listing the files seen and the formats that are loaded."""
    pickled = [f for f in files if Path(f).suffix.lower() in PICKLE_SUFFIXES]
    said = f"; pickle-based files ({name_list(pickled)}) are never unpickled" if pickled else ""
    what = (
        f"the model_file {named!r} cannot be loaded safely"
        if named is not None
        else f"no model file among the version's files ({name_list(files) or 'none'}) "
        "can be loaded safely"
    )
    return UnsafeModelFormat(
        f"{what}{said}: only {' and '.join(SAFE_SUFFIXES)} models are loaded", SAFE_HINT
    )


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest_of(digest)


def load_skops(path: Path, name: str) -> SklearnModel:
    """A skops file, loaded only when every type it names is scikit-learn, numpy or scipy."""
    try:
        return SklearnModel(open_skops(path, name))
    except ModelNotLoadable as exc:
        raise CheckFailed(exc.message) from None  # what a check reports: it could not run


class SklearnModel:
    """A scikit-learn estimator: a classifier when it has ``classes_``."""

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    @property
    def is_classifier(self) -> bool:
        return hasattr(self.estimator, "classes_")

    @property
    def classes(self) -> Array | None:
        return np.asarray(self.estimator.classes_) if self.is_classifier else None

    @property
    def feature_names(self) -> tuple[str, ...] | None:
        names = getattr(self.estimator, "feature_names_in_", None)
        return None if names is None else tuple(str(n) for n in names)

    def predict(self, features: Features, *, proba: bool = False) -> Prediction:
        rows = self.model_input(features)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            labels = np.asarray(self.estimator.predict(rows))
            probabilities = None
            if proba and self.is_classifier and hasattr(self.estimator, "predict_proba"):
                probabilities = np.asarray(self.estimator.predict_proba(rows), dtype=np.float64)
        return Prediction(labels, probabilities)

    def model_input(self, features: Features) -> Any:
        """A DataFrame for a model fitted on one (its names), else a plain matrix."""
        if self.feature_names is not None:
            return features.frame()
        if features.numeric == features.names:
            return features.matrix(np.float64)
        return features.matrix(object)


def load_onnx(path: Path, name: str) -> OnnxModel:
    try:
        session = open_onnx(path, name)
    except ModelNotLoadable as exc:
        raise CheckFailed(exc.message) from None
    inputs = session.get_inputs()
    if len(inputs) != 1 or inputs[0].type not in ONNX_DTYPES:
        found = ", ".join(f"{i.name}: {i.type}" for i in inputs)
        raise CheckFailed(
            f"{name} takes inputs ({found}); checks feed one float tensor [rows, features]",
            "export the model with one float input, or check it with a command check",
        )
    return OnnxModel(session, name)


class OnnxModel:
    """An ONNX graph: a classifier when it has two outputs (labels, then probabilities),
    as skl2onnx exports them; a regressor when it has one."""

    def __init__(self, session: Any, name: str) -> None:
        self.session = session
        self.name = name
        self.input = session.get_inputs()[0]
        self.found_classes: Array | None = None

    @property
    def is_classifier(self) -> bool:
        return len(self.session.get_outputs()) >= 2

    @property
    def classes(self) -> Array | None:
        return self.found_classes

    @property
    def feature_names(self) -> tuple[str, ...] | None:
        return None

    @property
    def width(self) -> int | None:
        shape = self.input.shape
        return shape[1] if len(shape) == 2 and isinstance(shape[1], int) else None

    def predict(self, features: Features, *, proba: bool = False) -> Prediction:
        if self.width is not None and self.width != len(features.names):
            raise ValueError(
                f"{self.name} expects {self.width} features, the dataset gives "
                f"{len(features.names)} ({name_list(features.names)})"
            )
        matrix = features.matrix(ONNX_DTYPES[self.input.type])
        outputs = self.session.run(None, {self.input.name: matrix})
        labels = np.asarray(outputs[0]).reshape(len(matrix), -1)
        if not self.is_classifier:
            return Prediction(labels[:, 0].astype(np.float64))
        return Prediction(labels[:, 0], self.probabilities(outputs[1]) if proba else None)

    def probabilities(self, output: Any) -> Array:
        """Probabilities as an array, from a tensor or from ZipMap's list of dicts."""
        if isinstance(output, list):
            keys = sorted(output[0]) if output else []
            self.found_classes = np.asarray(keys)
            return np.asarray([[row[k] for k in keys] for row in output], dtype=np.float64)
        return np.asarray(output, dtype=np.float64)
