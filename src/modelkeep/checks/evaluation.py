"""The evaluation check: the model's quality metrics on the dataset, by task.

Classification: accuracy, balanced accuracy, precision, recall and F1 (binary: of the
greater label; multiclass: macro averages), AUC and log loss from the probabilities.
Regression: RMSE, MAE and R². All from ``sklearn.metrics``.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelkeep.checks.data import Array
from modelkeep.checks.deps import require
from modelkeep.checks.metrics import Measured, Metrics, finite_or_none
from modelkeep.checks.models import Model, Prediction
from modelkeep.errors import CheckFailed


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Metric functions warn on edge cases (one class, zero division) the result says."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def computed(metric: Callable[[], Any]) -> float | None:
    """The metric's value, or None when it cannot be computed on this data."""
    try:
        with quiet():
            return finite_or_none(metric())
    except (ValueError, TypeError, ZeroDivisionError, IndexError):
        return None


@dataclass(frozen=True)
class Labels:
    """The classes a classification is scored over, and the probabilities aligned to them."""

    labels: Array
    positive: Any
    proba: Array | None
    proba_classes: Array | None
    note: str | None = None

    @property
    def binary(self) -> bool:
        return len(self.labels) <= 2


def class_labels(model: Model, y_true: Array, prediction: Prediction) -> Labels:
    """Every class seen (the model's, the target's, the predictions'), sorted."""
    known = model.classes if model.classes is not None else np.asarray([], dtype=y_true.dtype)
    try:
        labels = np.union1d(known, np.union1d(y_true, prediction.labels))
    except TypeError:
        raise CheckFailed(
            "the target's values and the model's classes are of different types "
            f"({y_true.dtype} and {prediction.labels.dtype})",
            "check the target column the model was trained on",
        ) from None
    proba_classes = model.classes if model.classes is not None else labels
    proba = prediction.proba
    if proba is None:
        return Labels(labels, labels[-1], None, None)
    if proba.shape[1] != len(proba_classes):
        note = f"{proba.shape[1]} probabilities for {len(proba_classes)} classes"
        return Labels(labels, labels[-1], None, None, note)
    return Labels(labels, labels[-1], normalized(proba), proba_classes)


def normalized(proba: Array) -> Array:
    """Rows that sum to one (float32 ONNX outputs are a rounding error off)."""
    totals = proba.sum(axis=1, keepdims=True)
    return proba / np.where(totals > 0, totals, 1.0)


def evaluate(model: Model, y_true: Array, prediction: Prediction) -> Measured:
    """Classification or regression metrics, as the model's kind says."""
    if model.is_classifier:
        return classification(model, y_true, prediction)
    return regression(y_true, prediction.labels)


def classification(model: Model, y_true: Array, prediction: Prediction) -> Measured:
    sk = require("sklearn.metrics")
    y_pred = prediction.labels
    labels = class_labels(model, y_true, prediction)
    average: dict[str, Any] = (
        {"pos_label": labels.positive, "average": "binary"}
        if labels.binary
        else {"average": "macro", "labels": labels.labels}
    )
    metrics: Metrics = {
        "accuracy": computed(lambda: sk.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": computed(lambda: sk.balanced_accuracy_score(y_true, y_pred)),
        "precision": computed(
            lambda: sk.precision_score(y_true, y_pred, zero_division=0, **average)
        ),
        "recall": computed(lambda: sk.recall_score(y_true, y_pred, zero_division=0, **average)),
        "f1": computed(lambda: sk.f1_score(y_true, y_pred, zero_division=0, **average)),
        "auc": auc(sk, y_true, labels),
        "log_loss": computed(lambda: sk.log_loss(y_true, labels.proba, labels=labels.proba_classes))
        if labels.proba is not None
        else None,
        "rows": float(len(y_true)),
    }
    return Measured(metrics, classification_report(sk, y_true, y_pred, labels))


def auc(sk: Any, y_true: Array, labels: Labels) -> float | None:
    """Binary: on the positive class's probability; multiclass: one-vs-rest macro."""
    proba, classes = labels.proba, labels.proba_classes
    if proba is None or classes is None:
        return None
    if labels.binary:
        column = int(np.flatnonzero(classes == labels.positive)[0]) if len(classes) else 0
        return computed(lambda: sk.roc_auc_score(y_true == labels.positive, proba[:, column]))
    return computed(
        lambda: sk.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=classes)
    )


def classification_report(sk: Any, y_true: Array, y_pred: Array, labels: Labels) -> dict[str, Any]:
    matrix = sk.confusion_matrix(y_true, y_pred, labels=labels.labels)
    report: dict[str, Any] = {
        "task": "binary" if labels.binary else "multiclass",
        "labels": labels.labels,
        "positive_class": labels.positive if labels.binary else None,
        "confusion_matrix": matrix,
        "per_class": {
            str(label): {
                "true": int((y_true == label).sum()),
                "predicted": int((y_pred == label).sum()),
            }
            for label in labels.labels
        },
        "probabilities": labels.proba is not None,
    }
    if labels.note:
        report["note"] = f"probabilities not used: {labels.note}"
    return report


def regression(y_true: Array, y_pred: Array) -> Measured:
    sk = require("sklearn.metrics")
    if not np.issubdtype(y_true.dtype, np.number):
        raise CheckFailed(
            f"the target holds {y_true.dtype} values; a regression model needs numbers",
            "name the numeric target column the model was trained on",
        )
    truth, predicted = y_true.astype(np.float64), y_pred.astype(np.float64)
    mse = computed(lambda: sk.mean_squared_error(truth, predicted))
    metrics: Metrics = {
        "rmse": math.sqrt(mse) if mse is not None else None,
        "mae": computed(lambda: sk.mean_absolute_error(truth, predicted)),
        "r2": computed(lambda: sk.r2_score(truth, predicted)) if len(truth) > 1 else None,
        "rows": float(len(truth)),
    }
    return Measured(metrics, {"task": "regression", "target_std": float(np.std(truth))})
