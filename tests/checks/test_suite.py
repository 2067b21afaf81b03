"""Suite files: what they say, and every refusal naming its line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from modelkeep.checks import Assertion, CheckSpec, default_suite, parse_suite
from modelkeep.errors import InvalidPolicy

FULL = """\
model_file: model.skops
checks:
  - kind: evaluation
    assert: ["accuracy >= 0.8", "auc>0.7"]
  - kind: fairness
    sensitive: gender
    assert: demographic_parity_difference <= 0.2
  - kind: robustness
    noise: 0.2
    missing: 0.05
    seed: 3
  - kind: command
    name: latency
    run: python bench_latency.py --rows 100
    timeout: 60
"""


def test_full_suite() -> None:
    suite = parse_suite(FULL)
    assert suite.model_file == "model.skops"
    evaluation, fairness, robustness, command = suite.checks
    assert evaluation == CheckSpec(
        "evaluation",
        "evaluation",
        line=3,
        asserts=(Assertion("accuracy", ">=", 0.8), Assertion("auc", ">", 0.7)),
    )
    assert fairness.sensitive == "gender"
    assert [str(a) for a in fairness.asserts] == ["demographic_parity_difference <= 0.2"]
    assert (robustness.noise, robustness.missing, robustness.seed) == (0.2, 0.05, 3)
    assert command.name == "latency"
    assert command.run == ("python", "bench_latency.py", "--rows", "100")
    assert command.timeout == 60.0
    assert suite.needs_model


def test_defaults() -> None:
    robustness = parse_suite("checks:\n  - kind: robustness\n").checks[0]
    assert (robustness.noise, robustness.missing, robustness.seed) == (0.1, 0.1, 0)
    command = parse_suite("checks:\n  - {kind: command, name: c, run: [x]}\n").checks[0]
    assert command.timeout == 600.0
    assert not parse_suite("checks:\n  - {kind: command, name: c, run: [x]}\n").needs_model


def test_default_suite() -> None:
    assert [c.kind for c in default_suite(None).checks] == ["evaluation", "robustness"]
    with_fairness = default_suite("gender")
    assert [c.kind for c in with_fairness.checks] == ["evaluation", "fairness", "robustness"]
    assert with_fairness.checks[1].sensitive == "gender"


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        ("checks:\n  - kind: evaluation\nmodel: x\n", 3, "unknown key 'model'"),
        ("checks:\n  - kind: robustness\n    noize: 0.1\n", 3, "unknown key 'noize'"),
        ("checks:\n  - kind: evaluation\n    noise: 0.1\n", 3, "unknown key 'noise'"),
        ("checks:\n  - kind: training\n", 2, "unknown kind 'training'"),
        ("checks:\n  - name: x\n", 2, "without 'kind:'"),
        ("checks:\n  - kind: evaluation\n    assert: ['accuracy 0.8']\n", 3, "METRIC OP NUMBER"),
        ("checks:\n  - kind: evaluation\n    assert: ['acc >= 0.8']\n", 3, "no metric 'acc'"),
        ("checks:\n  - kind: evaluation\n    assert: ['rows >= nan']\n", 3, "finite number"),
        ("checks:\n  - kind: fairness\n    assert: ['accuracy >= 1']\n", 3, "no metric"),
        ("checks:\n  - kind: robustness\n    noise: -1\n", 3, "'noise' must be at least 0"),
        ("checks:\n  - kind: robustness\n    missing: 2\n", 3, "between 0 and 1"),
        ("checks:\n  - kind: robustness\n    seed: 1.5\n", 3, "'seed' must be a whole"),
        ("checks:\n  - kind: robustness\n    noise: lots\n", 3, "'noise' must be a number"),
        ("checks:\n  - {kind: command, name: c}\n", 2, "needs 'run:'"),
        ("checks:\n  - {kind: command, name: c, run: []}\n", 2, "non-empty list"),
        ("checks:\n  - {kind: command, name: c, run: 'a \"b'}\n", 2, "cannot be split"),
        ("checks:\n  - {kind: command, name: c, run: [x], timeout: 0}\n", 2, "'timeout'"),
        ("checks:\n  - {kind: command, name: Bad Name, run: [x]}\n", 2, "the name 'Bad Name'"),
        ("checks:\n  - kind: evaluation\n  - kind: evaluation\n", 3, "a second check named"),
        ("checks:\n  - kind: evaluation\n    kind: fairness\n", 3, "given twice"),
        ("checks: []\n", 1, "'checks:' is empty"),
        ("checks: evaluation\n", 1, "'checks' must be a list"),
        ("model_file: m.skops\n", 1, "no 'checks:' list"),
        ("- kind: evaluation\n", 1, "must be a mapping"),
        ("\n", 1, "the suite is empty"),
        ("checks:\n  - kind: evaluation\n   bad: [\n", 3, "not valid YAML"),
        ("checks:\n  - kind: !!python/object:os.system evaluation\n", 2, "not valid YAML"),
        ("model_file: [a, b]\nchecks:\n  - kind: evaluation\n", 1, "expected a single value"),
    ],
)
def test_refusals_name_the_line(text: str, line: int, what: str) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        parse_suite(text)
    assert caught.value.message.startswith(f"suite line {line}: "), caught.value.message
    assert what in caught.value.message


def test_command_metric_names_are_free_but_well_formed() -> None:
    check = parse_suite(
        "checks:\n  - {kind: command, name: c, run: [x], assert: ['p99.latency_ms < 20']}\n"
    ).checks[0]
    assert check.asserts == (Assertion("p99.latency_ms", "<", 20.0),)
    with pytest.raises(InvalidPolicy, match="line 2: the metric name 'P99'"):
        parse_suite("checks:\n  - {kind: command, name: c, run: [x], assert: ['P99 < 2']}\n")


def test_assertion_failures() -> None:
    rule = Assertion("accuracy", ">=", 0.9)
    assert rule.failure({"accuracy": 0.95}) is None
    assert rule.failure({"accuracy": 0.87}) == "accuracy >= 0.9: 0.87"
    assert rule.failure({"accuracy": None}) == "accuracy >= 0.9: not computed"
    assert rule.failure({}) == "accuracy >= 0.9: not reported"
    assert Assertion("rows", "==", 300).failure({"rows": 300.0}) is None


def test_importing_the_engine_stays_light() -> None:
    """The CLI imports it for every command: the heavy libraries wait until a check runs."""
    heavy = ["sklearn", "skops", "onnxruntime", "fairlearn", "pandas", "pyarrow.csv"]
    code = f"import sys, modelkeep.checks\nprint([m for m in {heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_thresholds_are_shown_as_written() -> None:
    check = parse_suite("checks:\n  - {kind: evaluation, assert: ['auc >= 0.1234567']}\n").checks[0]
    assert str(check.asserts[0]) == "auc >= 0.1234567"
