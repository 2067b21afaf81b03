"""The check engine: evaluation, fairness, robustness and command checks of a model version
on a dataset version, each giving metrics, pass/fail on its asserts and a JSON report.

Importing this package is cheap: scikit-learn, skops, onnxruntime, fairlearn, PyYAML (and
numpy) are imported only when a check needs them.
"""

from __future__ import annotations

from modelkeep.checks.metrics import METRIC_NAMES
from modelkeep.checks.runner import CheckInput, CheckOutcome, run_checks
from modelkeep.checks.suite import Assertion, CheckSpec, Suite, default_suite, parse_suite

__all__ = [
    "METRIC_NAMES",
    "Assertion",
    "CheckInput",
    "CheckOutcome",
    "CheckSpec",
    "Suite",
    "default_suite",
    "parse_suite",
    "run_checks",
]
