"""The robustness check: how much the model's predictions move when its numeric inputs are
disturbed, three ways: Gaussian noise, missing values, and values far out of range.

Each metric is 0 (nothing moved) to 1: the share of rows whose predicted class changed
(classification), or the mean absolute change of the prediction divided by the target's
standard deviation (regression), clipped. A model that refuses the disturbed input (most
scikit-learn models refuse NaN) scores 1.0, and the report records why. Every draw comes
from a numpy Generator seeded by the check's ``seed``: the same inputs give the same result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from modelkeep.checks.data import Array, Features, one_line
from modelkeep.checks.metrics import Measured, Metrics
from modelkeep.checks.models import Model
from modelkeep.checks.suite import CheckSpec

OUT_OF_RANGE_SHARE = 0.1
OUT_OF_RANGE_SPANS = 3.0
Perturbation = Callable[[Features, CheckSpec, np.random.Generator], Features]


def noisy(features: Features, spec: CheckSpec, rng: np.random.Generator) -> Features:
    """Each numeric column plus Gaussian noise of ``noise`` times the column's std."""
    replaced: dict[str, Array] = {}
    for name in features.numeric:
        values = features.columns[name].astype(np.float64)
        std = float(np.nanstd(values)) if np.isfinite(values).any() else 0.0
        replaced[name] = values + rng.normal(0.0, spec.noise * std, size=len(values))
    return features.with_columns(replaced)


def with_missing(features: Features, spec: CheckSpec, rng: np.random.Generator) -> Features:
    """A ``missing`` share of the numeric values (drawn per value) set to NaN."""
    replaced: dict[str, Array] = {}
    for name in features.numeric:
        values = features.columns[name].astype(np.float64)
        values[rng.random(len(values)) < spec.missing] = np.nan
        replaced[name] = values
    return features.with_columns(replaced)


def out_of_range(features: Features, spec: CheckSpec, rng: np.random.Generator) -> Features:
    """In a random tenth of the rows, every numeric value set to its column's max plus three
    times its range."""
    rows = features.rows
    chosen = rng.choice(rows, size=max(1, round(rows * OUT_OF_RANGE_SHARE)), replace=False)
    replaced: dict[str, Array] = {}
    for name in features.numeric:
        values = features.columns[name].astype(np.float64)
        finite = values[np.isfinite(values)]
        if finite.size:
            top, span = float(finite.max()), float(finite.max() - finite.min())
            values[chosen] = top + OUT_OF_RANGE_SPANS * (span or max(abs(top), 1.0))
        replaced[name] = values
    return features.with_columns(replaced)


PERTURBATIONS: dict[str, Perturbation] = {
    "robustness_noise": noisy,
    "robustness_missing": with_missing,
    "robustness_out_of_range": out_of_range,
}


def robustness(
    model: Model, features: Features, y_true: Array, clean: Array, spec: CheckSpec
) -> Measured:
    """The three robustness metrics, each from its own generator seeded by ``spec.seed``."""
    report: dict[str, Any] = {
        "noise": spec.noise,
        "missing": spec.missing,
        "out_of_range_share": OUT_OF_RANGE_SHARE,
        "seed": spec.seed,
        "numeric_features": list(features.numeric),
    }
    metrics: Metrics = dict.fromkeys(PERTURBATIONS, None)
    metrics["rows"] = float(features.rows)
    if not features.numeric or features.rows == 0:
        report["note"] = "no numeric feature (or no row) to disturb"
        return Measured(metrics, report)
    scale = change_scale(model, y_true)
    for index, (metric, perturb) in enumerate(PERTURBATIONS.items()):
        rng = np.random.default_rng([spec.seed, index])
        metrics[metric], report[metric] = moved(model, perturb(features, spec, rng), clean, scale)
    return Measured(metrics, report)


def change_scale(model: Model, y_true: Array) -> float | None:
    """What a regression change is divided by (the target's std); None for a classifier."""
    if model.is_classifier:
        return None
    return float(np.std(y_true.astype(np.float64)))


def moved(
    model: Model, disturbed: Features, clean: Array, scale: float | None
) -> tuple[float | None, dict[str, Any]]:
    """How far predictions on ``disturbed`` moved from ``clean``, with what was seen."""
    try:
        predicted = model.predict(disturbed).labels
    except Exception as exc:
        return 1.0, {"error": one_line(exc)}
    if scale is None:
        changed = predicted != clean
        return float(changed.mean()), {"changed_rows": int(changed.sum())}
    change = np.abs(predicted.astype(np.float64) - clean.astype(np.float64))
    change[~np.isfinite(change)] = np.inf
    if not scale > 0:
        return None, {"note": "the target has no spread to scale changes by"}
    mean_change = float(change.mean())
    return min(1.0, mean_change / scale), {"mean_absolute_change": mean_change}
