"""Running a suite: each check on a model version's files and a dataset version's files,
both already in local directories. Knows nothing of the registry: the caller stores the
outcomes as evidence.

The heavy libraries are imported only here, when a check that needs them runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkeep.checks.deps import require
from modelkeep.checks.metrics import Measured, Metrics, jsonable
from modelkeep.checks.suite import CheckSpec, Suite
from modelkeep.errors import CheckFailed, InvalidPolicy

if TYPE_CHECKING:
    from modelkeep.checks.data import Array, Dataset, Features
    from modelkeep.checks.models import LoadedModel, Prediction

PREDICT_HINT = "check that the dataset has the columns the model was trained on, as numbers"


@dataclass(frozen=True)
class CheckInput:
    model_dir: Path
    dataset_dir: Path
    target: str
    sensitive: str | None = None
    workdir: Path | None = None
    """Where command checks run (the suite file's directory); None: the current one."""


@dataclass(frozen=True)
class CheckOutcome:
    suite: str
    """The check's name: its kind for built-in checks, unless the suite names it."""
    kind: str
    metrics: Metrics
    passed: bool
    failures: list[str]
    report: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """What the built-in checks share: the model, the data and the clean predictions."""

    loaded: LoadedModel
    dataset: Dataset
    features: Features
    y_true: Array
    clean: Prediction


def run_checks(inp: CheckInput, suite: Suite) -> list[CheckOutcome]:
    """Every check of the suite, in order; raises on the first that cannot run to its end."""
    checks = tuple(with_sensitive(check, inp.sensitive) for check in suite.checks)
    context = prepare(inp, replace(suite, checks=checks)) if suite.needs_model else None
    return [outcome(check, measure(check, inp, context)) for check in checks]


def with_sensitive(check: CheckSpec, sensitive: str | None) -> CheckSpec:
    """A fairness check's column: its own, else --sensitive; InvalidPolicy without either."""
    if check.kind != "fairness" or check.sensitive is not None:
        return check
    if sensitive is None:
        where = f"suite line {check.line}: " if check.line else ""
        raise InvalidPolicy(
            f"{where}the fairness check '{check.name}' has no sensitive column",
            "give --sensitive COLUMN, or 'sensitive: COLUMN' in the fairness check",
        )
    return replace(check, sensitive=sensitive)


def sensitive_columns(inp: CheckInput, suite: Suite) -> list[str]:
    named = [inp.sensitive] + [c.sensitive for c in suite.checks if c.kind == "fairness"]
    return list(dict.fromkeys(name for name in named if name is not None))


def prepare(inp: CheckInput, suite: Suite) -> Context:
    """Load the model safely and the dataset, and predict once on the clean data."""
    require("sklearn")
    from modelkeep.checks.data import load_dataset, select_features
    from modelkeep.checks.models import load_model

    loaded = load_model(inp.model_dir, suite.model_file)
    dataset = load_dataset(inp.dataset_dir, inp.target)
    sensitive = sensitive_columns(inp, suite)
    dataset.require(sensitive, "sensitive")
    excluded = [inp.target, *sensitive]
    features = select_features(dataset, loaded.model.feature_names, excluded)
    try:
        clean = loaded.model.predict(features, proba=True)
    except Exception as exc:
        raise CheckFailed(prediction_failure(loaded, exc), PREDICT_HINT) from None
    return Context(loaded, dataset, features, dataset.values(inp.target), clean)


def prediction_failure(loaded: LoadedModel, exc: Exception) -> str:
    from modelkeep.checks.data import one_line

    return f"the model {loaded.file} could not predict on the dataset: {one_line(exc)}"


def measure(check: CheckSpec, inp: CheckInput, context: Context | None) -> Measured:
    if check.kind == "command":
        from modelkeep.checks.command import run_command

        return run_command(check, command_variables(inp), inp.workdir)
    assert context is not None
    measured = measure_model(check, context)
    return Measured(measured.metrics, {**model_report(context), **measured.report})


def measure_model(check: CheckSpec, context: Context) -> Measured:
    """One built-in check on the shared context."""
    from modelkeep.checks.evaluation import class_labels, evaluate
    from modelkeep.checks.fairness import fairness
    from modelkeep.checks.robustness import robustness

    model, y_true, clean = context.loaded.model, context.y_true, context.clean
    if check.kind == "evaluation":
        return evaluate(model, y_true, clean)
    if check.kind == "fairness":
        assert check.sensitive is not None
        positive = class_labels(model, y_true, clean).positive if model.is_classifier else None
        sensitive = context.dataset.values(check.sensitive)
        return fairness(y_true, clean.labels, sensitive, check.sensitive, positive)
    return robustness(model, context.features, y_true, clean.labels, check)


def model_report(context: Context) -> dict[str, Any]:
    """What every built-in check's report says of the model and the data it ran on."""
    return {
        "model_file": context.loaded.file,
        "model_sha256": context.loaded.digest,
        "model_format": context.loaded.format,
        "features": list(context.features.names),
        "dataset_files": list(context.dataset.files),
        "rows": context.dataset.rows,
        "rows_without_target": context.dataset.dropped_rows,
    }


def command_variables(inp: CheckInput) -> dict[str, str]:
    """The ``MODELKEEP_*`` variables that tell a command check where everything is."""
    variables = {
        "MODELKEEP_MODEL_DIR": str(inp.model_dir.resolve()),
        "MODELKEEP_DATASET_DIR": str(inp.dataset_dir.resolve()),
        "MODELKEEP_TARGET": inp.target,
    }
    if inp.sensitive is not None:
        variables["MODELKEEP_SENSITIVE"] = inp.sensitive
    return variables


def outcome(check: CheckSpec, measured: Measured) -> CheckOutcome:
    """The check's result: its metrics, and which of its asserts do not hold."""
    failures = [f for f in (a.failure(measured.metrics) for a in check.asserts) if f is not None]
    report = {**measured.report, "asserts": [str(a) for a in check.asserts]}
    return CheckOutcome(
        suite=check.name,
        kind=check.kind,
        metrics=measured.metrics,
        passed=not failures,
        failures=failures,
        report=jsonable(report),
    )
