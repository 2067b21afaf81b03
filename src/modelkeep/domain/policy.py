"""Promotion policy as code: the YAML format (format 1), parsed into rules, and evaluated.

A registry has one versioned policy document. Services load its text, call
``parse_policy`` (every refusal is an ``InvalidPolicy`` naming the line), and at
``promote``/``gate``/``policy test`` time gather ``PromotionFacts`` and call ``evaluate``
(see ``modelkeep.domain.policy_eval`` for the evaluation semantics). This module is pure:
text and facts in, decisions out.

The document::

    format: 1                       # required
    metrics: [latency_p95]          # metric names besides BUILTIN_METRICS
    register: {require: [commit]}   # metadata fields every new version must carry
    stages:                         # staging and/or production
      production:
        require: [commit]           # metadata fields needed to enter the stage
        checks:                     # rules on check results: a string or {rule, dataset}
          - {rule: accuracy >= 0.8, dataset: transactions}
          - {rule: auc >= 0.9, dataset: transactions, runner: ci}  # only ci's 'modelkeep check'
          - {rule: f1 >= 0.7, dataset: holdout, dataset_version: 3}  # on holdout@3 only
          - auc >= production.auc - 0.005
        approvals: {count: 1, roles: [approver]}   # admin always counts; null: none
        separation_of_duties: true  # default true
    aliases: {champion: [releaser]} # roles that may move a free alias (admin always may)
    serving: {allow_code: false}    # true: load may run a version's Python predictor
    models:                         # per-model overrides
      fraud: {stages: {production: {checks: ["auc >= 0.9"]}}}
    environments:                   # deployments: the stage a version must be in
      prod: {requires_stage: production, canary_from: staging}

An environment the policy does not name takes any version; ``canary_from`` (the stage a
canary, A/B or shadow candidate must be in) defaults to ``requires_stage``.

Override semantics: an entry under ``models:`` takes the same keys as the top level
except ``format`` and ``models`` (its ``metrics`` adds names for its own rules). Each key
it names **replaces** the inherited one, key by key: ``register.require``; per stage
``require``, ``checks``, ``approvals`` and ``separation_of_duties`` separately; each
alias entry. Keys it does not name are inherited from the top level, so an override
listing ``checks`` for production keeps production's ``approvals``; to drop an
inherited list, name the key with an empty list (``checks: []``, ``approvals: null``).
A stage or alias the top level does not name starts from no rules.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, NoReturn

import yaml

from modelkeep.domain.access import ROLES
from modelkeep.domain.deployments import EnvironmentRule, check_env
from modelkeep.domain.names import STAGES, check_alias_name, check_model_name
from modelkeep.domain.policy_eval import (
    ApprovalFact,
    ApproverNow,
    CheckFact,
    Evaluation,
    PromotionFacts,
    RuleOutcome,
    StageOccupant,
    evaluate,
    may_approve,
)
from modelkeep.domain.policy_rules import (
    BUILTIN_METRICS,
    EMPTY_MODEL_POLICY,
    METRIC_NAME,
    ApprovalRule,
    MetricRule,
    ModelPolicy,
    RuleError,
    StagePolicy,
    parse_rule,
)
from modelkeep.domain.text import did_you_mean
from modelkeep.domain.users import check_user_name
from modelkeep.domain.versions import check_required_fields
from modelkeep.errors import InvalidPolicy, ModelkeepError

__all__ = [
    "BUILTIN_METRICS",
    "EMPTY_POLICY",
    "FORMAT",
    "ApprovalFact",
    "ApprovalRule",
    "ApproverNow",
    "CheckFact",
    "Evaluation",
    "MetricRule",
    "ModelPolicy",
    "Policy",
    "PolicySection",
    "PromotionFacts",
    "RuleOutcome",
    "StageOccupant",
    "StageOverride",
    "StagePolicy",
    "evaluate",
    "may_approve",
    "parse_policy",
]

FORMAT = 1
FORMAT_HINT = "see docs/governance.md for the policy format"
TOP_KEYS = (
    "format",
    "metrics",
    "register",
    "stages",
    "aliases",
    "models",
    "serving",
    "environments",
)
SECTION_KEYS = ("metrics", "register", "stages", "aliases", "serving")
SERVING_KEYS = ("allow_code",)
ENVIRONMENT_KEYS = ("requires_stage", "canary_from")
REGISTER_KEYS = ("require",)
STAGE_KEYS = ("require", "checks", "approvals", "separation_of_duties")
APPROVAL_KEYS = ("count", "roles")
CHECK_KEYS = ("rule", "dataset", "dataset_version", "runner")

_STR = "tag:yaml.org,2002:str"
_INT = "tag:yaml.org,2002:int"
_BOOL = "tag:yaml.org,2002:bool"
_NULL = "tag:yaml.org,2002:null"

Entries = dict[str, tuple[yaml.Node, yaml.Node]]
"""A YAML mapping's entries by key: (key node, value node), so both lines stay known."""


# --- what the document holds -------------------------------------------------------------


@dataclass(frozen=True)
class StageOverride:
    """One stage as a document section writes it: the keys it names, and their values."""

    given: frozenset[str]
    values: StagePolicy

    def apply(self, inherited: StagePolicy | None) -> StagePolicy:
        named = {name: getattr(self.values, name) for name in self.given}
        return replace(inherited or StagePolicy(), **named)


@dataclass(frozen=True)
class PolicySection:
    """The top level or one ``models:`` entry, as written: what it names replaces."""

    register_require: tuple[str, ...] | None = None
    stages: Mapping[str, StageOverride] = field(default_factory=dict)
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    metrics: frozenset[str] = frozenset()
    allow_code: bool | None = None

    def apply(self, inherited: ModelPolicy) -> ModelPolicy:
        stages = dict(inherited.stages)
        for name, override in self.stages.items():
            stages[name] = override.apply(inherited.stages.get(name))
        register = self.register_require
        return ModelPolicy(
            register_require=inherited.register_require if register is None else register,
            stages={name: stages[name] for name in STAGES if name in stages},
            aliases={**inherited.aliases, **self.aliases},
            allow_code=inherited.allow_code if self.allow_code is None else self.allow_code,
        )


@dataclass(frozen=True)
class Policy:
    """A whole policy document: the top-level rules and the per-model overrides."""

    metrics: frozenset[str] = frozenset()
    """Metric names declared besides ``BUILTIN_METRICS``."""
    base: ModelPolicy = EMPTY_MODEL_POLICY
    overrides: Mapping[str, PolicySection] = field(default_factory=dict)
    environments: Mapping[str, EnvironmentRule] = field(default_factory=dict)
    """Deployments: per environment, the stage a version must be in (unnamed: none)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "overrides", MappingProxyType(dict(self.overrides)))
        object.__setattr__(self, "environments", MappingProxyType(dict(self.environments)))

    def environment(self, env: str) -> EnvironmentRule:
        """What a deploy to ``env`` needs; an environment not named needs nothing."""
        return self.environments.get(env) or EnvironmentRule()

    def for_model(self, model: str) -> ModelPolicy:
        """The rules in force for ``model``: the top level with its override applied."""
        override = self.overrides.get(model)
        return self.base if override is None else override.apply(self.base)

    def to_dict(self) -> dict[str, Any]:
        """Normalised JSON form: every default spelled out, each model's effective rules."""
        return {
            "format": FORMAT,
            "metrics": sorted(self.metrics),
            **self.base.to_dict(),
            "models": {name: self.for_model(name).to_dict() for name in sorted(self.overrides)},
            **(
                {
                    "environments": {
                        e: self.environments[e].to_dict() for e in sorted(self.environments)
                    }
                }
                if self.environments
                else {}
            ),
        }


EMPTY_POLICY = Policy()
"""No rules at all: what a registry without a policy uses (everything passes)."""


# --- reading the YAML --------------------------------------------------------------------


def parse_policy(text: str) -> Policy:
    """Parse a policy document; InvalidPolicy names the line of whatever it refuses."""
    root = _compose(text)
    top = _entries(root, "the policy", TOP_KEYS)
    _check_format(root, top)
    base = _section(top, BUILTIN_METRICS)
    models = _entries(top["models"][1], "'models'", None) if "models" in top else {}
    overrides = {
        _model_name(key): _section(
            _entries(value, f"model {_model_name(key)!r}", SECTION_KEYS),
            BUILTIN_METRICS | base.metrics,
        )
        for key, value in models.values()
    }
    environments = _environments(top["environments"][1]) if "environments" in top else {}
    return Policy(
        metrics=base.metrics,
        base=base.apply(EMPTY_MODEL_POLICY),
        overrides=overrides,
        environments=environments,
    )


def _compose(text: str) -> yaml.Node:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"policy line {mark.line + 1}: " if mark else ""
        raise InvalidPolicy(f"{where}not valid YAML: {exc.problem or exc}", FORMAT_HINT) from None
    except yaml.YAMLError as exc:
        raise InvalidPolicy(f"the policy is not valid YAML: {exc}", FORMAT_HINT) from None
    if root is None:
        raise InvalidPolicy("the policy is empty", "start it with 'format: 1'")
    return root


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _refusal(node: yaml.Node, message: str, hint: str | None = None) -> InvalidPolicy:
    return InvalidPolicy(f"policy line {_line(node)}: {message}", hint or FORMAT_HINT)


def _refuse(node: yaml.Node, message: str, hint: str | None = None) -> NoReturn:
    raise _refusal(node, message, hint)


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL


def _entries(node: yaml.Node, what: str, allowed: Collection[str] | None) -> Entries:
    """The entries of a mapping node; unknown or repeated keys are refused. Null: none."""
    if _is_null(node):
        return {}
    if not isinstance(node, yaml.MappingNode):
        _refuse(node, f"{what} must be a mapping of 'key: value' entries")
    found: Entries = {}
    for key_node, value_node in node.value:
        key = _text(key_node, f"a key of {what}")
        if key in found:
            _refuse(key_node, f"{key!r} appears twice in {what}", "keep one of them")
        if allowed is not None and key not in allowed:
            _refuse(key_node, f"unknown key {key!r} in {what}", _did_you_mean(key, allowed))
        found[key] = (key_node, value_node)
    return found


def _did_you_mean(key: str, allowed: Collection[str]) -> str:
    return f"{did_you_mean(key, allowed)}the keys allowed here: {', '.join(allowed)}"


def _text(node: yaml.Node, what: str) -> str:
    if not (isinstance(node, yaml.ScalarNode) and node.tag == _STR):
        _refuse(node, f"{what} must be text")
    return str(node.value)


def _items(node: yaml.Node, what: str) -> list[yaml.Node]:
    if _is_null(node):
        return []
    if not isinstance(node, yaml.SequenceNode):
        _refuse(node, f"{what} must be a list, e.g. [a, b]")
    return list(node.value)


def _scalar(node: yaml.Node) -> object:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def _check_format(root: yaml.Node, top: Entries) -> None:
    if "format" not in top:
        _refuse(root, "the policy has no 'format'", "start it with 'format: 1'")
    node = top["format"][1]
    if not (isinstance(node, yaml.ScalarNode) and node.tag == _INT and _scalar(node) == FORMAT):
        _refuse(node, f"policy format {_shown(node)} is not known", "this modelkeep reads format 1")


def _declared_metrics(entries: Entries) -> frozenset[str]:
    if "metrics" not in entries:
        return frozenset()
    names = set()
    for item in _items(entries["metrics"][1], "'metrics'"):
        name = _text(item, "a metric name")
        if not METRIC_NAME.fullmatch(name):
            _refuse(item, f"{name!r} cannot be a metric name", "use letters, digits and '_'")
        names.add(name)
    return frozenset(names)


def _section(entries: Entries, known_metrics: frozenset[str]) -> PolicySection:
    """One level of the document (top or model); its own ``metrics:`` add to the known."""
    own = _declared_metrics(entries)
    metrics = known_metrics | own
    stages = _entries(entries["stages"][1], "'stages'", None) if "stages" in entries else {}
    return PolicySection(
        register_require=_register(entries),
        stages={_stage_name(key): _stage(value, metrics, key) for key, value in stages.values()},
        aliases=_aliases(entries),
        metrics=own,
        allow_code=_allow_code(entries),
    )


def _register(entries: Entries) -> tuple[str, ...] | None:
    if "register" not in entries:
        return None
    register = _entries(entries["register"][1], "'register'", REGISTER_KEYS)
    return _required(register["require"][1]) if "require" in register else None


def _allow_code(entries: Entries) -> bool | None:
    if "serving" not in entries:
        return None
    serving = _entries(entries["serving"][1], "'serving'", SERVING_KEYS)
    if "allow_code" not in serving:
        return None
    node = serving["allow_code"][1]
    if node.tag != _BOOL:
        _refuse(node, f"allow_code is {_shown(node)}, not true or false")
    return bool(_scalar(node))


def _stage_name(node: yaml.Node) -> str:
    name = _text(node, "a stage name")
    if name not in STAGES:
        _refuse(node, f"unknown stage {name!r}", f"policies govern {' and '.join(STAGES)}")
    return name


def _model_name(node: yaml.Node) -> str:
    name = _text(node, "a model name")
    with _at(node):
        check_model_name(name)
    return name


# --- one stage ---------------------------------------------------------------------------


def _stage(node: yaml.Node, metrics: frozenset[str], name: yaml.Node) -> StageOverride:
    entries = _entries(node, f"stage {name.value!r}", STAGE_KEYS)
    values = {name: _STAGE_FIELDS[name](value, metrics) for name, (_, value) in entries.items()}
    return StageOverride(frozenset(values), replace(StagePolicy(), **values))


def _required(node: yaml.Node, metrics: frozenset[str] = frozenset()) -> tuple[str, ...]:
    items = _items(node, "'require'")
    names = [_text(item, "a required field") for item in items]
    for item, name in zip(items, names, strict=True):
        with _at(item):
            check_required_fields([name])
    return check_required_fields(names)


def _checks(node: yaml.Node, metrics: frozenset[str]) -> tuple[MetricRule, ...]:
    return tuple(_check(item, metrics) for item in _items(node, "'checks'"))


def _check(node: yaml.Node, metrics: frozenset[str]) -> MetricRule:
    if isinstance(node, yaml.MappingNode):
        entries = _entries(node, "a check", CHECK_KEYS)
        if "rule" not in entries:
            _refuse(node, "a check needs a 'rule'", "e.g. {rule: accuracy >= 0.8, dataset: tx}")
        rule_node = entries["rule"][1]
        dataset = _dataset(entries["dataset"][1]) if "dataset" in entries else None
        runner = _runner(entries["runner"][1]) if "runner" in entries else None
        version = _dataset_version(entries, dataset)
    else:
        rule_node, dataset, runner, version = node, None, None, None
    text = _text(rule_node, "a check rule")
    with _at(rule_node):
        rule = parse_rule(text, metrics, dataset, runner)
    return replace(rule, dataset_version=version)


def _dataset_version(entries: Entries, dataset: str | None) -> int | None:
    if "dataset_version" not in entries:
        return None
    key, node = entries["dataset_version"]
    if dataset is None:
        _refuse(key, "dataset_version needs a 'dataset'", "name the dataset, e.g. 'dataset: tx'")
    value = _scalar(node) if isinstance(node, yaml.ScalarNode) else None
    if node.tag != _INT or not isinstance(value, int) or value < 1:
        _refuse(node, f"dataset_version {_shown(node)} is not a version number >= 1")
    return value


RUNNER_HINT = "write 'runner: true' (any runner), 'runner: NAME' or 'runner: [NAME, ...]'"


def _runner(node: yaml.Node) -> tuple[str, ...]:
    """Which runners a check rule trusts: ``true`` any (``()``), else the names given."""
    if node.tag == _BOOL:
        if not _scalar(node):
            _refuse(node, "runner: false sets no requirement", "leave 'runner' out instead")
        return ()
    items = [node] if isinstance(node, yaml.ScalarNode) else _items(node, "'runner'")
    if not items:
        _refuse(node, "'runner' names no runner", RUNNER_HINT)
    names: list[str] = []
    for item in items:
        if not (isinstance(item, yaml.ScalarNode) and item.tag == _STR):
            _refuse(item, f"runner {_shown(item)} is not a user name", RUNNER_HINT)
        with _at(item):
            check_user_name(str(item.value))
        names.append(str(item.value))
    return tuple(dict.fromkeys(names))


def _dataset(node: yaml.Node) -> str:
    name = _text(node, "a dataset name")
    if "@" in name:
        _refuse(node, f"dataset {name!r} names a version", "name the dataset only, e.g. 'tx'")
    with _at(node):
        check_model_name(name)
    return name


def _approvals(node: yaml.Node, metrics: frozenset[str]) -> ApprovalRule | None:
    if _is_null(node):
        return None
    entries = _entries(node, "'approvals'", APPROVAL_KEYS)
    rule = ApprovalRule()
    if "count" in entries:
        rule = replace(rule, count=_count(entries["count"][1]))
    if "roles" in entries:
        rule = replace(rule, roles=_roles(entries["roles"][1]))
    return rule


def _count(node: yaml.Node) -> int:
    value = _scalar(node) if isinstance(node, yaml.ScalarNode) else None
    if node.tag != _INT or not isinstance(value, int) or value < 0:
        _refuse(node, f"approvals count {_shown(node)} is not a whole number >= 0")
    return value


def _roles(node: yaml.Node) -> tuple[str, ...]:
    roles: list[str] = []
    for item in _items(node, "'roles'"):
        role = _text(item, "a role")
        if role not in ROLES:
            _refuse(item, f"unknown role {role!r}", f"use one of {', '.join(ROLES)}")
        if role not in roles:
            roles.append(role)
    return tuple(roles)


def _separation(node: yaml.Node, metrics: frozenset[str]) -> bool:
    if node.tag != _BOOL:
        _refuse(node, f"separation_of_duties is {_shown(node)}, not true or false")
    return bool(_scalar(node))


def _shown(node: yaml.Node) -> str:
    """A scalar as written (text quoted, so ``'1'`` and ``1`` read differently)."""
    if not isinstance(node, yaml.ScalarNode):
        return "not a single value"
    return repr(node.value) if node.tag == _STR else str(node.value)


_STAGE_FIELDS: Mapping[str, Callable[[yaml.Node, frozenset[str]], Any]] = MappingProxyType(
    {
        "require": _required,
        "checks": _checks,
        "approvals": _approvals,
        "separation_of_duties": _separation,
    }
)


# --- aliases -----------------------------------------------------------------------------


def _aliases(entries: Entries) -> dict[str, tuple[str, ...]]:
    if "aliases" not in entries:
        return {}
    aliases = _entries(entries["aliases"][1], "'aliases'", None)
    return {_alias_name(key): _roles(value) for key, value in aliases.values()}


def _alias_name(node: yaml.Node) -> str:
    name = _text(node, "an alias name")
    if name in STAGES:
        _refuse(
            node,
            f"{name!r} is a stage, not a free alias",
            "stages move only by 'promote' and 'rollback'; govern them under 'stages:'",
        )
    with _at(node):
        check_alias_name(name)
    return name


# --- environments (deployments) ----------------------------------------------------------


def _environments(node: yaml.Node) -> dict[str, EnvironmentRule]:
    rules = {}
    for key, value in _entries(node, "'environments'", None).values():
        env = _text(key, "an environment name")
        with _at(key):
            check_env(env)
        entries = _entries(value, f"environment {env!r}", ENVIRONMENT_KEYS)
        stages = {name: _stage_name(value) for name, (_, value) in entries.items()}
        rules[env] = EnvironmentRule(stages.get("requires_stage"), stages.get("canary_from"))
    return rules


@contextmanager
def _at(node: yaml.Node) -> Iterator[None]:
    """Turn a RuleError or a domain refusal raised inside into InvalidPolicy at this line."""
    try:
        yield
    except InvalidPolicy:
        raise
    except (RuleError, ModelkeepError) as error:
        raise _refusal(node, error.message, error.hint) from None
