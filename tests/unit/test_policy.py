"""The promotion policy: its YAML format, override merging and evaluation (domain/policy*.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from textwrap import dedent
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelkeep.domain.policy import (
    BUILTIN_METRICS,
    EMPTY_POLICY,
    ApprovalFact,
    CheckFact,
    ModelPolicy,
    PromotionFacts,
    StageOccupant,
    evaluate,
    may_approve,
    parse_policy,
)
from modelkeep.domain.policy_rules import RuleError, parse_rule
from modelkeep.domain.versions import VersionMetadata
from modelkeep.errors import InvalidPolicy

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy.yaml"


def doc(text: str) -> str:
    return dedent(text).lstrip("\n")


def stage_policy(text: str, model: str = "fraud") -> ModelPolicy:
    """The rules for ``model`` of a policy whose body (after ``format: 1``) is ``text``."""
    return parse_policy("format: 1\n" + dedent(text)).for_model(model)


def check(
    id: int, minutes: int = 0, dataset: str | None = None, **metrics: float | None
) -> CheckFact:
    return CheckFact(id, "suite", metrics, True, dataset, NOW + timedelta(minutes=minutes))


def approval(
    id: int,
    user: str,
    decision: str = "approve",
    *,
    roles: tuple[str, ...] = ("approver",),
    stage: str = "production",
    minutes: int = 0,
    check_ids: tuple[int, ...] = (),
    policy_digest: str | None = "sha256:p1",
    comment: str | None = None,
) -> ApprovalFact:
    at = NOW + timedelta(minutes=minutes)
    return ApprovalFact(id, user, roles, decision, stage, comment, at, check_ids, policy_digest)


def facts(**changes: Any) -> PromotionFacts:
    values: dict[str, Any] = {
        "model": "fraud",
        "number": 2,
        "digest": "sha256:" + "ab" * 32,
        "created_by": "alice",
        "metadata": VersionMetadata(commit="0123abc"),
        "message": None,
        "checks": (),
        "approvals": (),
        "occupants": {"staging": None, "production": None},
        "promoter": "rita",
        "policy_digest": "sha256:p1",
    }
    values.update(changes)
    return PromotionFacts(**values)


# --- parsing: valid documents ------------------------------------------------------------

FULL = doc(
    """
    format: 1
    metrics: [latency_p95]
    register:
      require: [commit]
    stages:
      staging:
        require: [commit]
      production:
        require: [commit]
        checks:
          - rule: accuracy >= 0.8
            dataset: transactions
          - auc >= production.auc - 0.005
          - latency_p95 <= production * 1.1
        approvals:
          count: 1
          roles: [approver]
        separation_of_duties: true
    aliases:
      champion: [releaser]
      candidate: [contributor, releaser]
    models:
      fraud:
        stages:
          production:
            checks: ["auc >= 0.9"]
    """
)


def test_the_documented_example_parses_into_its_rules() -> None:
    policy = parse_policy(FULL)
    assert policy.metrics == {"latency_p95"}
    production = policy.base.stages["production"]
    assert [r.text for r in production.checks] == [
        "accuracy >= 0.8",
        "auc >= production.auc - 0.005",
        "latency_p95 <= production * 1.1",
    ]
    assert production.checks[0].dataset == "transactions"
    assert production.approvals is not None
    assert (production.approvals.count, production.approvals.roles) == (1, ("approver",))
    assert policy.base.register_require == ("commit",)
    assert policy.base.alias_roles("champion") == ("releaser",)
    assert policy.base.alias_roles("other") is None
    fraud = policy.for_model("fraud").stages["production"]
    assert [r.text for r in fraud.checks] == ["auc >= 0.9"]
    assert fraud.approvals == production.approvals


@pytest.mark.parametrize(
    ("body", "path", "expected"),
    [
        ("", ("stages",), {}),
        ("stages:\n  staging:\n", ("stages", "staging", "require"), []),
        ("stages:\n  staging:\n", ("stages", "staging", "separation_of_duties"), True),
        (
            "stages:\n  production:\n    approvals: {}\n",
            ("stages", "production", "approvals"),
            {"count": 1, "roles": ["approver"]},
        ),
        (
            "stages:\n  production:\n    approvals: {count: 2, roles: [approver, releaser]}\n",
            ("stages", "production", "approvals"),
            {"count": 2, "roles": ["approver", "releaser"]},
        ),
        (
            "stages:\n  production:\n    approvals: {count: 0, roles: []}\n",
            ("stages", "production", "approvals"),
            {"count": 0, "roles": []},
        ),
        (
            "stages:\n  production:\n    approvals: null\n",
            ("stages", "production", "approvals"),
            None,
        ),
        (
            "stages:\n  production:\n    separation_of_duties: false\n",
            ("stages", "production", "separation_of_duties"),
            False,
        ),
        (
            "stages:\n  production:\n    require: [commit, params.lr, meta.owner, commit]\n",
            ("stages", "production", "require"),
            ["commit", "params.lr", "meta.owner"],
        ),
        (
            "metrics: [p95]\nstages:\n  staging:\n    checks: ['p95  <=   staging']\n",
            ("stages", "staging", "checks"),
            [{"rule": "p95 <= staging", "dataset": None, "dataset_version": None, "runner": None}],
        ),
        ("metrics: [b, a]\n", ("metrics",), ["a", "b"]),
        ("register: {require: [seed]}\n", ("register", "require"), ["seed"]),
        ("aliases: {champion: []}\n", ("aliases", "champion"), []),
        ("models: {fraud: {}}\n", ("models", "fraud", "stages"), {}),
    ],
)
def test_valid_documents_normalise(body: str, path: tuple[str, ...], expected: object) -> None:
    found: Any = parse_policy("format: 1\n" + body).to_dict()
    for key in path:
        found = found[key]
    assert found == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("accuracy >= 0.8", ("accuracy", ">=", 0.8, None, None, None, None)),
        ("rmse<=1e-3", ("rmse", "<=", 0.001, None, None, None, None)),
        ("r2 > -0.5", ("r2", ">", -0.5, None, None, None, None)),
        ("mae < .5", ("mae", "<", 0.5, None, None, None, None)),
        ("f1 == 1", ("f1", "==", 1.0, None, None, None, None)),
        (
            "auc >= production.auc - 0.005",
            ("auc", ">=", None, "production", "auc", "-", 0.005),
        ),
        ("auc >= production", ("auc", ">=", None, "production", "auc", None, None)),
        ("log_loss <= staging * 1.1", ("log_loss", "<=", None, "staging", "log_loss", "*", 1.1)),
        (
            "auc >= production.accuracy + 1E-2",
            ("auc", ">=", None, "production", "accuracy", "+", 0.01),
        ),
        ("auc >= production - -0.5", ("auc", ">=", None, "production", "auc", "-", -0.5)),
    ],
)
def test_the_rule_grammar(text: str, expected: tuple[object, ...]) -> None:
    rule = parse_rule(text, BUILTIN_METRICS)
    found = (
        rule.metric,
        rule.op,
        rule.threshold,
        rule.stage,
        rule.stage_metric,
        rule.adjust_op,
        rule.adjust,
    )
    assert found == expected


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_any_written_number_is_the_threshold(number: float) -> None:
    assert parse_rule(f"auc >= {number!r}", BUILTIN_METRICS).threshold == number


@pytest.mark.parametrize(
    "text",
    [
        "auc is high",
        "auc >= 0.8 + 0.1",
        "auc >= 0.8 0.9",
        "auc >> 1",
        "auc >=",
        ">= 0.8",
        "auc >= production.",
        "auc >= production / 2",
        "auc >= nan",
    ],
)
def test_the_rule_grammar_refuses(text: str) -> None:
    with pytest.raises(RuleError):
        parse_rule(text, BUILTIN_METRICS)


# --- parsing: refusals name the line -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("format: 2\n", 1, "policy format 2 is not known"),
        ("format: '1'\n", 1, "policy format '1' is not known"),
        ("stages: {}\n", 1, "has no 'format'"),
        ("format: 1\nstages: [\n", 3, "not valid YAML"),
        ("format: 1\n---\nformat: 1\n", 2, "not valid YAML"),
        ("- format\n- 1\n", 1, "must be a mapping"),
        ("format: 1\nstage: {}\n", 2, "unknown key 'stage' in the policy"),
        ("format: 1\nformat: 1\n", 2, "'format' appears twice"),
        ("format: 1\nstages:\n  prod: {}\n", 3, "unknown stage 'prod'"),
        ("format: 1\nstages:\n  production:\n    aprovals: {}\n", 4, "unknown key 'aprovals'"),
        ("format: 1\nstages:\n  production: [a]\n", 3, "must be a mapping"),
        ("format: 1\nstages:\n  production:\n    require: commit\n", 4, "must be a list"),
        ("format: 1\nstages:\n  staging:\n    require: [commit, bogus]\n", 4, "'bogus' cannot"),
        ("format: 1\nregister:\n  require:\n    - seed\n    - meta.\n", 5, "'meta.' cannot"),
        ("format: 1\nregister:\n  requires: [seed]\n", 3, "unknown key 'requires'"),
        (
            "format: 1\nstages:\n  production:\n    checks:\n      - acuracy >= 0.8\n",
            5,
            "unknown metric 'acuracy' in 'acuracy >= 0.8'",
        ),
        (
            "format: 1\nstages:\n  production:\n    checks:\n      - auc >= production.auk\n",
            5,
            "unknown metric 'auk'",
        ),
        (
            "format: 1\nstages:\n  production:\n    checks:\n      - auc >= prod.auc\n",
            5,
            "unknown stage 'prod'",
        ),
        (
            "format: 1\nstages:\n  production:\n    checks:\n\n      - {rule: auc is good}\n",
            6,
            "cannot read the rule 'auc is good'",
        ),
        (
            "format: 1\nstages:\n  production:\n    checks:\n      - {dataset: tx}\n",
            5,
            "a check needs a 'rule'",
        ),
        (
            "format: 1\nstages:\n  production:\n    checks:\n      - rule: auc >= 0.9\n"
            "        dataset: tx@3\n",
            6,
            "names a version",
        ),
        (
            "format: 1\nstages:\n  production:\n    checks:\n      - {rule: auc > 0, data: tx}\n",
            5,
            "unknown key 'data'",
        ),
        ("format: 1\nstages:\n  production:\n    checks:\n      - 0.8\n", 5, "must be text"),
        (
            "format: 1\nstages:\n  production:\n    approvals:\n      count: -1\n",
            5,
            "count -1 is not a whole number",
        ),
        (
            "format: 1\nstages:\n  production:\n    approvals:\n      count: 1.5\n",
            5,
            "not a whole number",
        ),
        (
            "format: 1\nstages:\n  production:\n    approvals:\n      count: true\n",
            5,
            "not a whole number",
        ),
        (
            "format: 1\nstages:\n  production:\n    approvals:\n      count: [1]\n",
            5,
            "not a whole number",
        ),
        (
            "format: 1\nstages:\n  production:\n    approvals:\n      roles: [approver, boss]\n",
            5,
            "unknown role 'boss'",
        ),
        (
            "format: 1\nstages:\n  production:\n    separation_of_duties: sometimes\n",
            4,
            "not true or false",
        ),
        ("format: 1\naliases:\n  champion: [releasers]\n", 3, "unknown role 'releasers'"),
        ("format: 1\naliases:\n  production: [releaser]\n", 3, "'production' is a stage"),
        ("format: 1\naliases:\n  Champion: [releaser]\n", 3, "not a valid alias name"),
        ("format: 1\naliases:\n  latest: [releaser]\n", 3, "'latest' is reserved"),
        ("format: 1\nmetrics: [p-95]\n", 2, "'p-95' cannot be a metric name"),
        ("format: 1\nmodels:\n  Fraud: {}\n", 3, "not a valid model name"),
        ("format: 1\nmodels:\n  fraud:\n    format: 1\n", 4, "unknown key 'format'"),
        ("format: 1\nmodels:\n  fraud:\n    models: {}\n", 4, "unknown key 'models'"),
        (
            "format: 1\nmodels:\n  fraud:\n    stages:\n      production:\n"
            "        checks: [lat <= 1]\n",
            6,
            "unknown metric 'lat'",
        ),
    ],
)
def test_refusals_name_the_line(text: str, line: int, fragment: str) -> None:
    with pytest.raises(InvalidPolicy) as caught:
        parse_policy(text)
    assert caught.value.message.startswith(f"policy line {line}: "), caught.value.message
    assert fragment in caught.value.message


@pytest.mark.parametrize("text", ["", "   \n", "# only a comment\n"])
def test_an_empty_document_is_refused(text: str) -> None:
    with pytest.raises(InvalidPolicy, match="empty"):
        parse_policy(text)


def test_an_unknown_metric_refusal_says_how_to_fix_it() -> None:
    with pytest.raises(InvalidPolicy) as caught:
        parse_policy("format: 1\nstages:\n  production:\n    checks: [acuracy >= 0.8]\n")
    assert "did you mean 'accuracy'?" in caught.value.hint
    assert "declare it under 'metrics:'" in caught.value.hint


def test_a_typo_in_a_key_suggests_the_key() -> None:
    with pytest.raises(InvalidPolicy) as caught:
        parse_policy("format: 1\nstages:\n  production:\n    aprovals: {}\n")
    assert "did you mean 'approvals'?" in caught.value.hint


# --- per-model overrides -----------------------------------------------------------------

BASE = """\
register: {require: [commit]}
stages:
  production:
    require: [commit]
    checks: [accuracy >= 0.8]
    approvals: {count: 1}
aliases: {champion: [releaser]}
"""


@pytest.mark.parametrize(
    ("override", "path", "expected"),
    [
        (
            "{}",
            ("stages", "production", "checks"),
            [{"rule": "accuracy >= 0.8", "dataset": None, "dataset_version": None, "runner": None}],
        ),
        (
            "{stages: {production: {checks: ['auc >= 0.9']}}}",
            ("stages", "production", "checks"),
            [{"rule": "auc >= 0.9", "dataset": None, "dataset_version": None, "runner": None}],
        ),
        (
            "{stages: {production: {checks: ['auc >= 0.9']}}}",
            ("stages", "production", "approvals"),
            {"count": 1, "roles": ["approver"]},
        ),
        (
            "{stages: {production: {checks: ['auc >= 0.9']}}}",
            ("stages", "production", "require"),
            ["commit"],
        ),
        ("{stages: {production: {checks: []}}}", ("stages", "production", "checks"), []),
        ("{stages: {production: {approvals: null}}}", ("stages", "production", "approvals"), None),
        (
            "{stages: {production: {approvals: null}}}",
            ("stages", "production", "checks"),
            [{"rule": "accuracy >= 0.8", "dataset": None, "dataset_version": None, "runner": None}],
        ),
        (
            "{stages: {production: {separation_of_duties: false}}}",
            ("stages", "production", "separation_of_duties"),
            False,
        ),
        (
            "{stages: {staging: {require: [seed]}}}",
            ("stages", "staging"),
            {"require": ["seed"], "checks": [], "approvals": None, "separation_of_duties": True},
        ),
        ("{register: {require: []}}", ("register", "require"), []),
        ("{register: {}}", ("register", "require"), ["commit"]),
        ("{aliases: {champion: [contributor]}}", ("aliases",), {"champion": ["contributor"]}),
        (
            "{aliases: {candidate: [contributor]}}",
            ("aliases",),
            {"champion": ["releaser"], "candidate": ["contributor"]},
        ),
        (
            "{metrics: [lat], stages: {production: {checks: ['lat <= 2']}}}",
            ("stages", "production", "checks"),
            [{"rule": "lat <= 2", "dataset": None, "dataset_version": None, "runner": None}],
        ),
    ],
)
def test_an_override_replaces_only_the_keys_it_names(
    override: str, path: tuple[str, ...], expected: object
) -> None:
    policy = parse_policy(f"format: 1\n{BASE}models:\n  fraud: {override}\n")
    found: Any = policy.for_model("fraud").to_dict()
    for key in path:
        found = found[key]
    assert found == expected
    assert policy.for_model("other") == policy.base


def test_top_level_metrics_may_be_used_by_overrides() -> None:
    policy = parse_policy(
        "format: 1\nmetrics: [lat]\nmodels:\n  fraud: {stages: {staging: {checks: [lat < 3]}}}\n"
    )
    assert [r.metric for r in policy.for_model("fraud").stages["staging"].checks] == ["lat"]
    assert policy.to_dict()["models"]["fraud"]["stages"]["staging"]["checks"][0]["rule"] == (
        "lat < 3"
    )


def test_the_empty_policy_has_no_rules() -> None:
    for stage in ("staging", "production"):
        evaluation = evaluate(
            EMPTY_POLICY.for_model("fraud"), stage, facts(metadata=VersionMetadata())
        )
        assert evaluation.passed
        assert evaluation.rules == ()
    assert EMPTY_POLICY.for_model("fraud").alias_roles("champion") is None
    assert EMPTY_POLICY.to_dict() == {
        "format": 1,
        "metrics": [],
        "register": {"require": []},
        "stages": {},
        "aliases": {},
        "serving": {"allow_code": False},
        "models": {},
    }


def test_the_example_policy_parses_and_says_what_its_comments_say() -> None:
    policy = parse_policy(EXAMPLE.read_text())
    rules = policy.for_model("any-model")
    assert rules.stages["staging"].require == ("commit",)
    assert rules.stages["staging"].checks == ()
    production = rules.stages["production"]
    assert [(r.text, r.dataset) for r in production.checks] == [("accuracy >= 0.8", None)]
    assert production.approvals is not None
    assert (production.approvals.count, production.approvals.roles) == (1, ("approver",))
    assert production.separation_of_duties
    assert rules.alias_roles("champion") == ("releaser",)
    assert rules.alias_roles("candidate") == ("contributor", "releaser")


# --- evaluation: metadata and stages -----------------------------------------------------


@pytest.mark.parametrize(
    ("metadata", "message", "passed", "detail"),
    [
        (VersionMetadata(commit="abc"), None, [True, False], ["commit is set", "has no message"]),
        (VersionMetadata(), "why", [False, True], ["fraud@2 has no commit", "message is set"]),
        (VersionMetadata(commit="abc"), "why", [True, True], ["commit is set", "message is set"]),
    ],
)
def test_metadata_rules(
    metadata: VersionMetadata, message: str | None, passed: list[bool], detail: list[str]
) -> None:
    policy = stage_policy("stages:\n  staging:\n    require: [commit, message]\n")
    evaluation = evaluate(policy, "staging", facts(metadata=metadata, message=message))
    assert [r.kind for r in evaluation.rules] == ["metadata", "metadata"]
    assert [r.rule for r in evaluation.rules] == ["require commit", "require message"]
    assert [r.passed for r in evaluation.rules] == passed
    assert all(d in r.detail for d, r in zip(detail, evaluation.rules, strict=True))
    assert evaluation.passed == all(passed)


def test_a_stage_the_policy_does_not_name_passes() -> None:
    policy = stage_policy("stages:\n  production:\n    require: [commit]\n")
    evaluation = evaluate(policy, "staging", facts(metadata=VersionMetadata()))
    assert evaluation.passed
    assert evaluation.explain() == ["ok  the policy sets no rules for staging"]
    assert not evaluate(policy, "production", facts(metadata=VersionMetadata())).passed


# --- evaluation: metric rules ------------------------------------------------------------

OCCUPIED = StageOccupant("fraud@1", (check(1, -60, auc=0.91, accuracy=0.85, latency_p95=100),))


@pytest.mark.parametrize(
    ("rule", "checks", "occupant", "passed", "evidence", "detail"),
    [
        ("accuracy >= 0.8", (check(4, accuracy=0.91),), None, True, (4,), "0.91 (check #4)"),
        ("accuracy >= 0.8", (check(4, accuracy=0.8),), None, True, (4,), "0.8 (check #4)"),
        ("accuracy > 0.8", (check(4, accuracy=0.8),), None, False, (4,), "not > 0.8"),
        ("accuracy >= 0.8", (check(4, accuracy=0.79),), None, False, (4,), "not >= 0.8"),
        ("rmse <= 1e-3", (check(4, rmse=0.002),), None, False, (4,), "0.002 (check #4)"),
        ("f1 == 1", (check(4, f1=1.0),), None, True, (4,), "1 (check #4)"),
        # the newest result wins, by time and then by id
        (
            "accuracy >= 0.8",
            (check(3, 0, accuracy=0.9), check(4, 5, accuracy=0.7)),
            None,
            False,
            (4,),
            "0.7",
        ),
        (
            "accuracy >= 0.8",
            (check(5, 0, accuracy=0.7), check(3, 5, accuracy=0.9)),
            None,
            True,
            (3,),
            "0.9",
        ),
        (
            "accuracy >= 0.8",
            (check(3, 0, accuracy=0.9), check(2, 0, accuracy=0.7)),
            None,
            True,
            (3,),
            "0.9",
        ),
        # a newer result not reporting the metric does not hide the one that does
        (
            "accuracy >= 0.8",
            (check(3, 0, accuracy=0.9), check(4, 5, rows=10)),
            None,
            True,
            (3,),
            "0.9",
        ),
        ("accuracy >= 0.8", (check(4, auc=0.9),), None, False, (), "no check result reports"),
        ("accuracy >= 0.8", (), None, False, (), "run 'modelkeep check'"),
        ("accuracy >= 0.8", (check(4, accuracy=None),), None, False, (4,), "NaN"),
        # relative rules
        ("auc >= production", (check(4, auc=0.5),), None, True, (4,), "no version in production"),
        ("auc >= production", (check(4, auc=0.92),), OCCUPIED, True, (4, 1), "0.91 of fraud@1"),
        ("auc >= production", (check(4, auc=0.9),), OCCUPIED, False, (4, 1), "not >= 0.91"),
        (
            "auc >= production.auc - 0.005",
            (check(4, auc=0.906),),
            OCCUPIED,
            True,
            (4, 1),
            "- 0.005",
        ),
        ("auc >= production.auc - 0.005", (check(4, auc=0.9),), OCCUPIED, False, (4, 1), "0.905"),
        ("auc >= production.auc + 0.01", (check(4, auc=0.915),), OCCUPIED, False, (4, 1), "0.92"),
        (
            "latency_p95 <= production * 1.1",
            (check(4, latency_p95=109),),
            OCCUPIED,
            True,
            (4, 1),
            "110",
        ),
        (
            "latency_p95 <= production * 1.1",
            (check(4, latency_p95=111),),
            OCCUPIED,
            False,
            (4, 1),
            "110",
        ),
        (
            "auc >= production.accuracy",
            (check(4, auc=0.86),),
            OCCUPIED,
            True,
            (4, 1),
            "accuracy 0.85",
        ),
        (
            "rows >= production",
            (check(4, rows=10),),
            OCCUPIED,
            False,
            (4,),
            "fraud@1 in production has no",
        ),
        (
            "auc >= production",
            (check(4, auc=0.95),),
            StageOccupant("fraud@1", (check(1, auc=None),)),
            False,
            (4, 1),
            "auc of fraud@1 is not a number",
        ),
        ("auc >= production", (check(4, auc=None),), OCCUPIED, False, (4,), "NaN"),
    ],
)
def test_metric_rules(
    rule: str,
    checks: tuple[CheckFact, ...],
    occupant: StageOccupant | None,
    passed: bool,
    evidence: tuple[int, ...],
    detail: str,
) -> None:
    policy = stage_policy(
        f"metrics: [latency_p95]\nstages:\n  production:\n    checks: ['{rule}']\n"
    )
    occupants = {"staging": None, "production": occupant}
    [outcome] = evaluate(policy, "production", facts(checks=checks, occupants=occupants)).rules
    assert (outcome.kind, outcome.rule, outcome.passed) == ("check", rule, passed)
    assert outcome.evidence == evidence
    assert detail in outcome.detail


@pytest.mark.parametrize(
    ("dataset", "checks", "passed", "evidence"),
    [
        (
            "tx",
            (check(4, 0, "tx@3", accuracy=0.9), check(5, 5, "other@1", accuracy=0.1)),
            True,
            (4,),
        ),
        ("tx", (check(4, 0, "tx@3", accuracy=0.1), check(5, 5, "tx@4", accuracy=0.9)), True, (5,)),
        ("tx", (check(4, 0, "txn@1", accuracy=0.9),), False, ()),
        ("tx", (check(4, 0, None, accuracy=0.9),), False, ()),
        (None, (check(4, 0, "tx@3", accuracy=0.1), check(5, 5, "b@1", accuracy=0.9)), True, (5,)),
    ],
)
def test_a_rule_naming_a_dataset_reads_only_its_results(
    dataset: str | None, checks: tuple[CheckFact, ...], passed: bool, evidence: tuple[int, ...]
) -> None:
    entry = f"{{rule: accuracy >= 0.8, dataset: {dataset}}}" if dataset else "accuracy >= 0.8"
    policy = stage_policy(f"stages:\n  production:\n    checks: [{entry}]\n")
    [outcome] = evaluate(policy, "production", facts(checks=checks)).rules
    assert (outcome.passed, outcome.evidence) == (passed, evidence)
    if dataset:
        assert outcome.rule == f"accuracy >= 0.8 on {dataset}"


def test_a_relative_rule_compares_on_the_same_dataset() -> None:
    policy = stage_policy(
        "stages:\n  production:\n    checks: [{rule: auc >= production, dataset: tx}]\n"
    )
    occupant = StageOccupant(
        "fraud@1", (check(1, 0, "tx@2", auc=0.8), check(2, 5, "other@1", auc=0.99))
    )
    checks = (check(4, 0, "tx@3", auc=0.85),)
    occupants = {"production": occupant}
    [outcome] = evaluate(policy, "production", facts(checks=checks, occupants=occupants)).rules
    assert outcome.passed
    assert outcome.evidence == (4, 1)


def test_a_rule_may_compare_with_another_stage() -> None:
    policy = stage_policy("stages:\n  production:\n    checks: [auc >= staging.auc]\n")
    occupants = {"staging": StageOccupant("fraud@3", (check(9, auc=0.95),)), "production": None}
    [outcome] = evaluate(
        policy, "production", facts(checks=(check(4, auc=0.9),), occupants=occupants)
    ).rules
    assert not outcome.passed
    assert "fraud@3" in outcome.detail


@given(
    st.lists(
        st.tuples(st.integers(0, 50), st.floats(-10, 10, allow_nan=False)), min_size=1, max_size=8
    ),
    st.floats(-10, 10, allow_nan=False),
)
def test_an_absolute_rule_passes_iff_the_newest_value_meets_it(
    results: list[tuple[int, float]], threshold: float
) -> None:
    checks = tuple(check(i + 1, minutes, m=value) for i, (minutes, value) in enumerate(results))
    newest = max(checks, key=lambda c: (c.at, c.id))
    policy = parse_policy(
        f"format: 1\nmetrics: [m]\nstages:\n  production:\n    checks: ['m >= {threshold!r}']\n"
    ).base
    [outcome] = evaluate(policy, "production", facts(checks=checks)).rules
    value = newest.metrics["m"]
    assert value is not None
    assert outcome.passed == (value >= threshold)
    assert outcome.evidence == (newest.id,)


@given(
    st.floats(-10, 10, allow_nan=False),
    st.floats(-10, 10, allow_nan=False),
    st.sampled_from(["+", "-", "*"]),
    st.floats(0, 5, allow_nan=False),
)
def test_a_relative_rule_passes_iff_the_value_meets_the_adjusted_reference(
    value: float, reference: float, op: str, operand: float
) -> None:
    policy = stage_policy(
        f"stages:\n  production:\n    checks: ['auc <= production {op} {operand!r}']\n"
    )
    occupants = {"production": StageOccupant("fraud@1", (check(1, auc=reference),))}
    [outcome] = evaluate(
        policy, "production", facts(checks=(check(2, auc=value),), occupants=occupants)
    ).rules
    bound = {"+": reference + operand, "-": reference - operand, "*": reference * operand}[op]
    assert outcome.passed == (value <= bound)


# --- evaluation: approvals and separation of duties --------------------------------------

APPROVALS = "stages:\n  production:\n    approvals: {count: %d, roles: [%s]}\n"


@pytest.mark.parametrize(
    ("count", "roles", "approvals", "promoter", "expected"),
    [
        # expected: (approval passed, its evidence, separation passed, separation evidence)
        (1, "approver", (), "rita", (False, (), True, ())),
        (1, "approver", (approval(3, "carol"),), "rita", (True, (3,), True, (3,))),
        (1, "approver", (approval(3, "vic", roles=("viewer",)),), "rita", (False, (), True, ())),
        (1, "approver", (approval(3, "ada", roles=("admin",)),), "rita", (True, (3,), True, (3,))),
        (1, "releaser", (approval(3, "carol"),), "rita", (False, (), True, ())),
        (
            1,
            "releaser",
            (approval(3, "rob", roles=("releaser",)),),
            "rita",
            (True, (3,), True, (3,)),
        ),
        (1, "", (approval(3, "carol"),), "rita", (False, (), True, ())),
        # the creator's and the promoter's approvals do not count
        (1, "approver", (approval(3, "alice"),), "rita", (True, (3,), False, ())),
        (
            1,
            "approver",
            (approval(3, "rita", roles=("approver", "releaser")),),
            "rita",
            (True, (3,), False, ()),
        ),
        (
            1,
            "approver",
            (approval(3, "alice"), approval(4, "carol", minutes=1)),
            "rita",
            (True, (3, 4), True, (4,)),
        ),
        # a later decision of the same user replaces the earlier one
        (
            1,
            "approver",
            (approval(3, "bob", "reject"), approval(4, "bob", minutes=1)),
            "rita",
            (True, (4,), True, (4,)),
        ),
        (
            1,
            "approver",
            (approval(3, "bob"), approval(4, "bob", "reject", minutes=1, comment="too slow")),
            "rita",
            (False, (4,), True, ()),
        ),
        # a standing rejection by anyone is a veto
        (
            1,
            "approver",
            (approval(3, "carol"), approval(4, "bob", "reject", minutes=1)),
            "rita",
            (False, (3, 4), True, (3,)),
        ),
        # two people
        (
            2,
            "approver",
            (approval(3, "carol"), approval(4, "dave", minutes=1)),
            "rita",
            (True, (3, 4), True, (3, 4)),
        ),
        (
            2,
            "approver",
            (approval(3, "carol"), approval(4, "carol", minutes=1)),
            "rita",
            (False, (4,), True, (4,)),
        ),
        # approvals for another stage do not count
        (1, "approver", (approval(3, "carol", stage="staging"),), "rita", (False, (), True, ())),
        # nobody promoting yet (policy test): only the creator is left out
        (1, "approver", (approval(3, "carol"),), None, (True, (3,), True, (3,))),
    ],
)
def test_approvals(
    count: int,
    roles: str,
    approvals: tuple[ApprovalFact, ...],
    promoter: str | None,
    expected: tuple[bool, tuple[int, ...], bool, tuple[int, ...]],
) -> None:
    policy = stage_policy(APPROVALS % (count, roles))
    evaluation = evaluate(policy, "production", facts(approvals=approvals, promoter=promoter))
    approval_outcome, separation = evaluation.rules
    assert (approval_outcome.kind, separation.kind) == ("approval", "separation")
    found = (
        approval_outcome.passed,
        approval_outcome.evidence,
        separation.passed,
        separation.evidence,
    )
    assert found == expected
    assert evaluation.passed == (expected[0] and expected[2])


@pytest.mark.parametrize(
    ("approvals", "promoter", "kind", "fragment"),
    [
        ((), "rita", "approval", "0 of 1"),
        ((approval(3, "vic", roles=("viewer",)),), "rita", "approval", "vic holds none of"),
        (
            (approval(4, "bob", "reject", comment="too slow"),),
            "rita",
            "approval",
            "rejected by bob (#4): too slow",
        ),
        ((approval(3, "alice"),), "rita", "separation", "#3 does not count: alice created fraud@2"),
        ((approval(3, "rita"),), "rita", "separation", "rita is promoting fraud@2"),
    ],
)
def test_an_unmet_approval_says_why(
    approvals: tuple[ApprovalFact, ...], promoter: str, kind: str, fragment: str
) -> None:
    policy = stage_policy(APPROVALS % (1, "approver"))
    evaluation = evaluate(policy, "production", facts(approvals=approvals, promoter=promoter))
    [unmet] = evaluation.unmet
    assert unmet.kind == kind
    assert fragment in unmet.detail


def test_without_separation_of_duties_the_creator_and_promoter_count() -> None:
    policy = stage_policy(
        "stages:\n  production:\n    approvals: {count: 2}\n    separation_of_duties: false\n"
    )
    approvals = (approval(3, "alice"), approval(4, "rita", minutes=1))
    evaluation = evaluate(policy, "production", facts(approvals=approvals))
    assert [r.kind for r in evaluation.rules] == ["approval"]
    assert evaluation.passed


def test_no_approval_rule_when_the_count_is_zero() -> None:
    policy = stage_policy("stages:\n  production:\n    approvals: {count: 0}\n")
    evaluation = evaluate(policy, "production", facts(approvals=(approval(3, "bob", "reject"),)))
    assert evaluation.rules == ()
    assert evaluation.passed


@pytest.mark.parametrize(
    ("body", "stage", "creator", "approver", "allowed"),
    [
        ("stages:\n  production: {approvals: {}}\n", "production", "alice", "alice", False),
        ("stages:\n  production: {approvals: {}}\n", "production", "alice", "carol", True),
        (
            "stages:\n  production: {separation_of_duties: false}\n",
            "production",
            "alice",
            "alice",
            True,
        ),
        ("stages:\n  production: {approvals: {}}\n", "staging", "alice", "alice", True),
        ("", "production", "alice", "alice", True),
    ],
)
def test_may_approve(body: str, stage: str, creator: str, approver: str, allowed: bool) -> None:
    ok, reason = may_approve(stage_policy(body), stage, creator, approver)
    assert ok == allowed
    assert reason
    if not allowed:
        assert "separation of duties" in reason and approver in reason


# --- evaluation: notes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("approvals", "checks", "notes"),
    [
        ((approval(3, "carol", minutes=5, check_ids=(7,)),), (check(7, 0, accuracy=0.9),), []),
        (
            (approval(3, "carol", minutes=5),),
            (check(7, 10, accuracy=0.9), check(8, 20, accuracy=0.9)),
            ["approval #3 by carol predates check result #8"],
        ),
        ((approval(3, "carol", minutes=5, check_ids=(7,)),), (check(7, 10, accuracy=0.9),), []),
        (
            (approval(3, "carol", policy_digest="sha256:old"),),
            (),
            ["approval #3 by carol was given under another policy (sha256:old)"],
        ),
        (
            (approval(3, "carol", policy_digest=None),),
            (),
            ["approval #3 by carol was given under another policy (no policy)"],
        ),
        (
            (approval(3, "bob", "reject", minutes=1), approval(2, "carol", stage="staging")),
            (check(7, 10, accuracy=0.9),),
            ["rejection #3 by bob predates check result #7"],
        ),
        # only each user's standing decision is noted
        (
            (approval(3, "carol", policy_digest="sha256:old"), approval(4, "carol", minutes=1)),
            (),
            [],
        ),
    ],
)
def test_notes(
    approvals: tuple[ApprovalFact, ...], checks: tuple[CheckFact, ...], notes: list[str]
) -> None:
    policy = stage_policy(APPROVALS % (1, "approver"))
    evaluation = evaluate(policy, "production", facts(approvals=approvals, checks=checks))
    assert list(evaluation.notes) == notes


def test_notes_do_not_fail_a_promotion() -> None:
    policy = stage_policy(APPROVALS % (1, "approver"))
    stale = approval(3, "carol", policy_digest="sha256:old")
    evaluation = evaluate(policy, "production", facts(approvals=(stale,), checks=(check(9, 5),)))
    assert evaluation.notes
    assert evaluation.passed


# --- the evaluation as text and JSON -----------------------------------------------------


def test_explain_and_to_dict() -> None:
    policy = stage_policy(
        "stages:\n  production:\n    require: [commit]\n"
        "    checks: [{rule: accuracy >= 0.8, dataset: transactions}, auc >= 0.9]\n"
    )
    checks = (check(4, 0, "transactions@2", accuracy=0.91),)
    evaluation = evaluate(policy, "production", facts(checks=checks))
    assert evaluation.explain() == [
        "ok  require commit: commit is set",
        "ok  accuracy >= 0.8 on transactions: 0.91 (check #4 on transactions@2), >= 0.8",
        "MISSING  auc >= 0.9: no check result reports auc; run 'modelkeep check'",
    ]
    assert [r.rule for r in evaluation.unmet] == ["auc >= 0.9"]
    data = evaluation.to_dict()
    assert data["stage"] == "production"
    assert data["passed"] is False
    assert data["rules"][1] == {
        "kind": "check",
        "rule": "accuracy >= 0.8 on transactions",
        "passed": True,
        "detail": "0.91 (check #4 on transactions@2), >= 0.8",
        "evidence": [4],
    }
    assert data["notes"] == []
