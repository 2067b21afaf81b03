"""The check suite: which checks run on a model version, with which settings and asserts.

A suite file is YAML (see docs/governance.md)::

    model_file: model.skops
    checks:
      - kind: evaluation
        assert: ["accuracy >= 0.8"]
      - kind: command
        name: latency
        run: ["python", "bench_latency.py"]

It is read node by node, so that every refusal names the line it is about; unknown keys
are refused rather than ignored, because a misspelt threshold must not pass silently.
"""

from __future__ import annotations

import math
import operator
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from modelkeep.checks.deps import require
from modelkeep.checks.metrics import COMMAND_METRIC_NAME, METRICS_BY_KIND, Metrics
from modelkeep.errors import InvalidPolicy

KINDS = ("evaluation", "fairness", "robustness", "command")
DEFAULT_NOISE = 0.1
DEFAULT_MISSING = 0.1
DEFAULT_TIMEOUT = 600.0
HINT = "fix the suite file at that line (see docs/governance.md for the format)"
COMMON_KEYS = ("kind", "name", "assert")
KEYS_BY_KIND: dict[str, tuple[str, ...]] = {
    "evaluation": COMMON_KEYS,
    "fairness": (*COMMON_KEYS, "sensitive"),
    "robustness": (*COMMON_KEYS, "noise", "missing", "seed"),
    "command": (*COMMON_KEYS, "run", "timeout"),
}
TOP_KEYS = ("model_file", "checks")
OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": operator.eq,
}
ASSERTION = re.compile(r"\s*(?P<metric>\S+?)\s*(?P<op>>=|<=|==|>|<)\s*(?P<number>\S+)\s*")


@dataclass(frozen=True)
class Assertion:
    """An absolute rule ``METRIC OP NUMBER`` on one metric of a check."""

    metric: str
    op: str
    threshold: float

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.threshold:.15g}"

    def failure(self, metrics: Metrics) -> str | None:
        """None when the rule holds, else the rule with the value seen (``"auc >= 0.9: 0.87"``)."""
        value = metrics.get(self.metric)
        if value is None:
            seen = "not computed" if self.metric in metrics else "not reported"
            return f"{self}: {seen}"
        if OPERATORS[self.op](value, self.threshold):
            return None
        return f"{self}: {value:.6g}"


@dataclass(frozen=True)
class CheckSpec:
    """One check of a suite; only the fields of its kind are used."""

    kind: str
    name: str
    line: int = 0
    asserts: tuple[Assertion, ...] = ()
    sensitive: str | None = None
    noise: float = DEFAULT_NOISE
    missing: float = DEFAULT_MISSING
    seed: int = 0
    run: tuple[str, ...] = ()
    timeout: float = DEFAULT_TIMEOUT


@dataclass(frozen=True)
class Suite:
    checks: tuple[CheckSpec, ...]
    model_file: str | None = None

    @property
    def needs_model(self) -> bool:
        """Whether a check loads the model itself (command checks do not)."""
        return any(check.kind != "command" for check in self.checks)


def default_suite(sensitive: str | None) -> Suite:
    """Evaluation and robustness, plus fairness on ``sensitive`` when it is given."""
    checks = [CheckSpec("evaluation", "evaluation")]
    if sensitive is not None:
        checks.append(CheckSpec("fairness", "fairness", sensitive=sensitive))
    checks.append(CheckSpec("robustness", "robustness"))
    return Suite(tuple(checks))


def parse_suite(text: str) -> Suite:
    """The suite a YAML text describes; InvalidPolicy("suite line N: ...") on anything wrong."""
    reader = _Reader(text)
    fields = reader.mapping(reader.root, "the suite")
    unknown_key(fields, TOP_KEYS, "at the top of the suite")
    if "checks" not in fields:
        raise refusal(reader.root, "the suite has no 'checks:' list")
    model_file = reader.string(fields["model_file"]) if "model_file" in fields else None
    checks = tuple(reader.check(node) for node in reader.sequence(fields["checks"], "checks"))
    if not checks:
        raise refusal(fields["checks"], "'checks:' is empty; give at least one check")
    refuse_duplicate_names(checks)
    return Suite(checks, model_file)


def refuse_duplicate_names(checks: tuple[CheckSpec, ...]) -> None:
    """Results are stored by check name, so two checks may not share one."""
    seen: set[str] = set()
    for check in checks:
        if check.name in seen:
            raise InvalidPolicy(
                f"suite line {check.line}: a second check named '{check.name}'",
                "give each check its own 'name:'",
            )
        seen.add(check.name)


def line_of(node: Any) -> int:
    return int(node.start_mark.line) + 1


def refusal(node: Any, what: str) -> InvalidPolicy:
    return InvalidPolicy(f"suite line {line_of(node)}: {what}", HINT)


def unknown_key(fields: dict[str, Any], known: tuple[str, ...], where: str) -> None:
    for key, node in fields.items():
        if key not in known:
            raise refusal(node, f"unknown key '{key}' {where} (known: {', '.join(known)})")


class _Reader:
    """Reads YAML nodes (which know their line) into plain values, refusing bad ones."""

    def __init__(self, text: str) -> None:
        self.yaml = require("yaml")
        self.loader = self.yaml.SafeLoader(text)
        try:
            root = self.loader.get_single_node()
        except self.yaml.YAMLError as exc:
            raise self.yaml_refusal(exc) from None
        if root is None:
            raise InvalidPolicy("suite line 1: the suite is empty", HINT)
        self.root: Any = root

    def yaml_refusal(self, exc: Any) -> InvalidPolicy:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark is not None else 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        return InvalidPolicy(f"suite line {line}: not valid YAML: {problem}", HINT)

    def mapping(self, node: Any, what: str) -> dict[str, Any]:
        """Key -> value node, refusing non-mappings, non-text keys and repeated keys."""
        if not isinstance(node, self.yaml.MappingNode):
            raise refusal(node, f"{what} must be a mapping of 'key: value'")
        fields: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = self.scalar(key_node)
            if not isinstance(key, str):
                raise refusal(key_node, f"the key {key!r} is not text")
            if key in fields:
                raise refusal(key_node, f"the key '{key}' is given twice")
            fields[key] = value_node
        return fields

    def sequence(self, node: Any, key: str) -> list[Any]:
        if not isinstance(node, self.yaml.SequenceNode):
            raise refusal(node, f"'{key}' must be a list")
        return list(node.value)

    def scalar(self, node: Any) -> object:
        if not isinstance(node, self.yaml.ScalarNode):
            raise refusal(node, "expected a single value, found a list or a mapping")
        try:
            value: object = self.loader.construct_object(node, deep=True)
            return value
        except self.yaml.YAMLError as exc:
            raise self.yaml_refusal(exc) from None

    def string(self, node: Any, key: str = "model_file") -> str:
        value = self.scalar(node)
        if not isinstance(value, str) or not value.strip():
            raise refusal(node, f"'{key}' must be non-empty text")
        return value

    def number(self, node: Any, key: str, low: float, high: float = math.inf) -> float:
        value = self.scalar(node)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise refusal(node, f"'{key}' must be a number")
        if not (low <= value <= high) or math.isnan(value):
            bounds = f"between {low:g} and {high:g}" if high < math.inf else f"at least {low:g}"
            raise refusal(node, f"'{key}' must be {bounds}, not {value}")
        return float(value)

    def integer(self, node: Any, key: str) -> int:
        value = self.scalar(node)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise refusal(node, f"'{key}' must be a whole number of at least 0")
        return value

    def check(self, node: Any) -> CheckSpec:
        fields = self.mapping(node, "each check")
        if "kind" not in fields:
            raise refusal(node, f"a check without 'kind:' (one of {', '.join(KINDS)})")
        kind = self.scalar(fields["kind"])
        if kind not in KINDS:
            raise refusal(fields["kind"], f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
        assert isinstance(kind, str)
        unknown_key(fields, KEYS_BY_KIND[kind], f"in a {kind} check")
        name = self.check_name(fields, kind, node)
        asserts = self.asserts(fields["assert"], kind) if "assert" in fields else ()
        spec = CheckSpec(kind, name, line_of(node), asserts)
        return self.with_settings(spec, fields)

    def check_name(self, fields: dict[str, Any], kind: str, node: Any) -> str:
        if "name" not in fields:
            if kind == "command":
                raise refusal(node, "a command check needs a 'name:'")
            return kind
        name = self.string(fields["name"], "name")
        if not COMMAND_METRIC_NAME.fullmatch(name):
            raise refusal(fields["name"], f"the name {name!r} is not [a-z][a-z0-9_.-]{{0,99}}")
        return name

    def with_settings(self, spec: CheckSpec, fields: dict[str, Any]) -> CheckSpec:
        """The check with the settings of its kind read from ``fields``."""
        settings: dict[str, Any] = {}
        if "sensitive" in fields:
            settings["sensitive"] = self.string(fields["sensitive"], "sensitive")
        if "noise" in fields:
            settings["noise"] = self.number(fields["noise"], "noise", 0.0)
        if "missing" in fields:
            settings["missing"] = self.number(fields["missing"], "missing", 0.0, 1.0)
        if "seed" in fields:
            settings["seed"] = self.integer(fields["seed"], "seed")
        if "timeout" in fields:
            settings["timeout"] = self.number(fields["timeout"], "timeout", 0.001)
        if spec.kind == "command":
            if "run" not in fields:
                raise InvalidPolicy(
                    f"suite line {spec.line}: a command check needs 'run:' (the command)", HINT
                )
            settings["run"] = self.command(fields["run"])
        return replace(spec, **settings)

    def command(self, node: Any) -> tuple[str, ...]:
        """A list of arguments, or a string split like a shell would (never run by one)."""
        if isinstance(node, self.yaml.SequenceNode):
            words = [self.scalar(item) for item in node.value]
            if not words or not all(isinstance(w, str | int | float) for w in words):
                raise refusal(node, "'run' must be a non-empty list of arguments")
            return tuple(str(word) for word in words)
        text = self.string(node, "run")
        try:
            return tuple(shlex.split(text))
        except ValueError as exc:
            raise refusal(node, f"'run' cannot be split into arguments: {exc}") from None

    def asserts(self, node: Any, kind: str) -> tuple[Assertion, ...]:
        items = node.value if isinstance(node, self.yaml.SequenceNode) else [node]
        return tuple(self.assertion(item, kind) for item in items)

    def assertion(self, node: Any, kind: str) -> Assertion:
        text = self.scalar(node)
        match = ASSERTION.fullmatch(text) if isinstance(text, str) else None
        if match is None:
            raise refusal(node, f"the assert {text!r} is not 'METRIC OP NUMBER' (OP: >= <= > < ==)")
        metric, number = match["metric"], match["number"]
        known = METRICS_BY_KIND.get(kind)
        if known is not None and metric not in known:
            raise refusal(node, f"a {kind} check has no metric '{metric}' ({', '.join(known)})")
        if known is None and not COMMAND_METRIC_NAME.fullmatch(metric):
            raise refusal(node, f"the metric name '{metric}' is not [a-z][a-z0-9_.-]{{0,99}}")
        try:
            threshold = float(number)
        except ValueError:
            threshold = math.nan
        if not math.isfinite(threshold):
            raise refusal(node, f"the assert {text!r} needs a finite number, not '{number}'")
        return Assertion(metric, match["op"], threshold)
