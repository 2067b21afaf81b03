"""The fairness check: how the model's positive predictions differ between the groups of a
sensitive column (fairlearn): demographic parity difference and ratio, equalized odds
difference, and per group the selection rate, true and false positive rates and count.

The positive class is the greater label; a multiclass model is scored one class against the
rest. A regressor has no fairness metrics here: they are None and the report says why.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from modelkeep.checks.data import Array
from modelkeep.checks.deps import require
from modelkeep.checks.evaluation import computed, quiet
from modelkeep.checks.metrics import Measured, Metrics, jsonable

MISSING_GROUP = "(missing)"


def fairness(
    y_true: Array, y_pred: Array, sensitive: Array, column: str, positive: Any | None
) -> Measured:
    """Fairness metrics of the predictions across the groups of ``sensitive``; ``positive``
    is the positive class, None for a regressor."""
    rows = float(len(y_true))
    if positive is None:
        metrics: Metrics = dict.fromkeys(
            ("demographic_parity_difference", "demographic_parity_ratio"), None
        )
        metrics |= {"equalized_odds_difference": None, "rows": rows}
        note = "fairness metrics need a classifier; this model is a regressor"
        return Measured(metrics, {"sensitive": column, "note": note})
    fm = require("fairlearn.metrics")
    truth = (y_true == positive).astype(int)
    predicted = (y_pred == positive).astype(int)
    groups = group_names(sensitive)
    by_group = {"sensitive_features": groups}
    metrics = {
        "demographic_parity_difference": computed(
            lambda: fm.demographic_parity_difference(truth, predicted, **by_group)
        ),
        "demographic_parity_ratio": computed(
            lambda: fm.demographic_parity_ratio(truth, predicted, **by_group)
        ),
        "equalized_odds_difference": computed(
            lambda: fm.equalized_odds_difference(truth, predicted, **by_group)
        ),
        "rows": rows,
    }
    report = {
        "sensitive": column,
        "positive_class": positive,
        "groups": group_rates(fm, truth, predicted, groups),
    }
    return Measured(metrics, report)


def group_names(sensitive: Array) -> Array:
    """Each row's group as text, missing values in a group of their own."""
    names = [
        MISSING_GROUP if value is None or value != value else str(value) for value in sensitive
    ]
    return np.asarray(names, dtype=object)


def group_rates(fm: Any, truth: Array, predicted: Array, groups: Array) -> dict[str, Any]:
    """Per group: selection rate, true and false positive rates, and row count."""
    with quiet():
        frame = fm.MetricFrame(
            metrics={
                "selection_rate": fm.selection_rate,
                "true_positive_rate": fm.true_positive_rate,
                "false_positive_rate": fm.false_positive_rate,
                "count": fm.count,
            },
            y_true=truth,
            y_pred=predicted,
            sensitive_features=groups,
        )
        table = frame.by_group.to_dict(orient="index")
    return {str(group): jsonable(values) for group, values in table.items()}
