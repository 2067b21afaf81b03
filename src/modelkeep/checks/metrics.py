"""The metric names checks may produce, by kind, and the rule for command metric names.

The names are the policy language's (``domain/policy_rules.py``), so a policy can name
every metric a built-in check reports; a test checks that each one is among them.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any

from modelkeep.domain.policy_rules import (
    EVALUATION_METRICS,
    FAIRNESS_METRICS,
    ROBUSTNESS_METRICS,
)

METRIC_NAMES: tuple[str, ...] = tuple(
    dict.fromkeys(EVALUATION_METRICS + FAIRNESS_METRICS + ROBUSTNESS_METRICS)
)
METRICS_BY_KIND: dict[str, tuple[str, ...]] = {
    "evaluation": EVALUATION_METRICS,
    "fairness": FAIRNESS_METRICS,
    "robustness": ROBUSTNESS_METRICS,
}
COMMAND_METRIC_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,99}")
"""What a command check may call its metrics (and what any check may be named)."""

Metrics = dict[str, float | None]


def finite_or_none(value: object) -> float | None:
    """A metric as stored: a finite float, or None for NaN, infinity or nothing."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Measured:
    """What one check measured: its metrics and the details behind them."""

    metrics: Metrics
    report: dict[str, Any] = field(default_factory=dict)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON: numpy values unwrapped, NaN and infinity as None."""
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple) or type(value).__name__ == "ndarray":
        return [jsonable(item) for item in value]
    if hasattr(value, "item") and callable(value.item):  # a numpy scalar
        value = value.item()
    if isinstance(value, float):
        return finite_or_none(value)
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)
