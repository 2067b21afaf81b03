"""The rules of a promotion policy: what one stage requires, and the metric-rule grammar.

A metric rule is ``METRIC OP RHS`` with ``OP`` one of ``>= <= > < ==``. ``RHS`` is a
number (``0.8``, ``-1``, ``1e-3``), or ``STAGE.METRIC`` (that metric of the version now
in the stage), or ``STAGE`` alone (the same metric there); a stage reference may be
followed by ``+ NUMBER``, ``- NUMBER`` or ``* NUMBER``. ``STAGE`` is ``staging`` or
``production``. Parsing is separate from the YAML reader so the grammar can be tested
(and reused) on its own; the reader adds the line number to any refusal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from modelkeep.domain.names import STAGES
from modelkeep.domain.text import did_you_mean

EVALUATION_METRICS = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "auc",
    "log_loss",
    "rmse",
    "mae",
    "r2",
    "rows",
)
FAIRNESS_METRICS = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
    "rows",
)
ROBUSTNESS_METRICS = ("robustness_noise", "robustness_missing", "robustness_out_of_range", "rows")
BUILTIN_METRICS: frozenset[str] = frozenset(
    EVALUATION_METRICS + FAIRNESS_METRICS + ROBUSTNESS_METRICS
)
"""The metrics the built-in checks report; a policy may name them without declaring them."""

METRIC_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
"""What a declared metric may be called: no '.', '-' or spaces, which the grammar uses."""

COMPARISONS: Mapping[str, Callable[[float, float], bool]] = MappingProxyType(
    {
        ">=": lambda a, b: a >= b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        "<": lambda a, b: a < b,
        "==": lambda a, b: a == b,
    }
)
ADJUSTMENTS: Mapping[str, Callable[[float, float], float]] = MappingProxyType(
    {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}
)

_NUMBER = r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
_RULE = re.compile(
    rf"\s*(?P<metric>{_IDENT})\s*(?P<op>>=|<=|==|>|<)\s*"
    rf"(?:(?P<number>{_NUMBER})"
    rf"|(?P<stage>{_IDENT})(?:\.(?P<stage_metric>{_IDENT}))?"
    rf"(?:\s*(?P<adjust_op>[-+*])\s*(?P<adjust>{_NUMBER}))?)\s*"
)
RULE_HINT = (
    "write METRIC OP RHS with OP one of >= <= > < ==, and RHS a number, STAGE.METRIC or "
    "STAGE (optionally followed by + N, - N or * N), e.g. 'auc >= production.auc - 0.005'"
)


class RuleError(ValueError):
    """A rule or value the policy reader refuses; it adds the line and raises InvalidPolicy."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class MetricRule:
    """One ``METRIC OP RHS`` rule, optionally bound to the checks of one dataset.

    ``threshold`` is set for an absolute rule; ``stage`` (with ``stage_metric``, and
    optionally ``adjust_op``/``adjust``) for a rule relative to a stage's version."""

    text: str
    metric: str
    op: str
    threshold: float | None = None
    stage: str | None = None
    stage_metric: str | None = None
    adjust_op: str | None = None
    adjust: float | None = None
    dataset: str | None = None
    dataset_version: int | None = None
    """With ``dataset``: only results on that version of it (``NAME@N``)."""
    runner: tuple[str, ...] | None = None
    """None: any result counts. Else only results that ``modelkeep check`` recorded as a
    runner over a dataset (the rule's, if it names one): ``()`` any runner, else one of
    these runners by name."""

    @property
    def relative(self) -> bool:
        return self.stage is not None

    def bound(self, reference: float) -> float:
        """The threshold against a stage value (``reference``) for a relative rule."""
        if self.adjust_op is None or self.adjust is None:
            return reference
        return ADJUSTMENTS[self.adjust_op](reference, self.adjust)

    def holds(self, value: float, threshold: float) -> bool:
        return COMPARISONS[self.op](value, threshold)

    @property
    def label(self) -> str:
        """How outcomes name the rule: its text, the dataset and the runner it names."""
        label = f"{self.text} on {self.dataset_ref}" if self.dataset_ref else self.text
        return f"{label} by {self.runners_text}" if self.runner is not None else label

    @property
    def dataset_ref(self) -> str | None:
        """``NAME`` (any version) or ``NAME@N``: which results the rule reads."""
        if self.dataset is None or self.dataset_version is None:
            return self.dataset
        return f"{self.dataset}@{self.dataset_version}"

    @property
    def runners_text(self) -> str:
        """``runner ci``, ``runner ci or nightly``, ``a runner``."""
        if not self.runner:
            return "a runner"
        return f"runner {' or '.join(self.runner)}"

    def to_dict(self) -> dict[str, Any]:
        runner: bool | list[str] | None = None
        if self.runner is not None:
            runner = list(self.runner) or True
        return {
            "rule": self.text,
            "dataset": self.dataset,
            "dataset_version": self.dataset_version,
            "runner": runner,
        }


def parse_rule(
    text: str,
    known_metrics: frozenset[str],
    dataset: str | None = None,
    runner: tuple[str, ...] | None = None,
) -> MetricRule:
    """Parse one rule; RuleError says what is wrong (the caller adds the line)."""
    match = _RULE.fullmatch(text)
    if match is None:
        raise RuleError(f"cannot read the rule {text!r}", RULE_HINT)
    metric, stage = match["metric"], match["stage"]
    _check_metric(metric, text, known_metrics)
    if stage is not None and stage not in STAGES:
        raise RuleError(
            f"unknown stage {stage!r} in {text!r}",
            f"compare with one of {', '.join(STAGES)}, or with a number",
        )
    stage_metric = match["stage_metric"] or (metric if stage else None)
    if stage_metric is not None:
        _check_metric(stage_metric, text, known_metrics)
    return MetricRule(
        text=" ".join(text.split()),
        metric=metric,
        op=match["op"],
        threshold=float(match["number"]) if match["number"] is not None else None,
        stage=stage,
        stage_metric=stage_metric,
        adjust_op=match["adjust_op"],
        adjust=float(match["adjust"]) if match["adjust"] is not None else None,
        dataset=dataset,
        runner=runner,
    )


def _check_metric(metric: str, text: str, known_metrics: frozenset[str]) -> None:
    if metric not in known_metrics:
        suggestion = did_you_mean(metric, sorted(known_metrics))
        raise RuleError(
            f"unknown metric {metric!r} in {text!r}",
            f"{suggestion}use one of {', '.join(sorted(known_metrics))} "
            "or declare it under 'metrics:'",
        )


@dataclass(frozen=True)
class ApprovalRule:
    """``count`` people holding one of ``roles`` (or admin) must approve."""

    count: int = 1
    roles: tuple[str, ...] = ("approver",)

    @property
    def label(self) -> str:
        plural = "" if self.count == 1 else "s"
        return f"{self.count} approval{plural} by {' or '.join(self.roles) or 'admin'}"

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "roles": list(self.roles)}


@dataclass(frozen=True)
class StagePolicy:
    """What a version needs to enter one stage."""

    require: tuple[str, ...] = ()
    checks: tuple[MetricRule, ...] = ()
    approvals: ApprovalRule | None = None
    separation_of_duties: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "require": list(self.require),
            "checks": [rule.to_dict() for rule in self.checks],
            "approvals": self.approvals.to_dict() if self.approvals else None,
            "separation_of_duties": self.separation_of_duties,
        }


def _frozen_mapping(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@dataclass(frozen=True)
class ModelPolicy:
    """The policy in force for one model: the document's rules with its overrides applied."""

    register_require: tuple[str, ...] = ()
    stages: Mapping[str, StagePolicy] = field(default_factory=dict)
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    allow_code: bool = False
    """``serving: {allow_code: true}``: ``load`` may run a version's Python predictor."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", _frozen_mapping(self.stages))
        object.__setattr__(self, "aliases", _frozen_mapping(self.aliases))

    def stage(self, stage: str) -> StagePolicy | None:
        return self.stages.get(stage)

    def alias_roles(self, alias: str) -> tuple[str, ...] | None:
        """The roles that may move ``alias`` (admin always may); None: not governed here."""
        return self.aliases.get(alias)

    def to_dict(self) -> dict[str, Any]:
        return {
            "register": {"require": list(self.register_require)},
            "stages": {name: policy.to_dict() for name, policy in self.stages.items()},
            "aliases": {name: list(roles) for name, roles in self.aliases.items()},
            "serving": {"allow_code": self.allow_code},
        }


EMPTY_MODEL_POLICY = ModelPolicy()
