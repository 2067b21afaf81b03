"""Evaluating a stage's policy against the facts of one promotion.

Services gather ``PromotionFacts`` from the database; ``evaluate`` says, rule by rule,
what is met and what is missing, and why. Semantics:

- **metadata** (one outcome per required field): met when
  ``versions.missing_fields`` does not list it.
- **check** (one per metric rule): the value is the newest (by ``at``, then ``id``) check
  result of this version that reports the metric (and, when the rule names a dataset,
  whose dataset is ``NAME@...`` of it, or exactly ``NAME@N`` with ``dataset_version``).
  No such result, or a NaN (``None``) value: unmet.
  A relative rule compares with the newest value of the right-hand metric among the
  check results of the version now in the named stage (same dataset filter): an empty
  stage passes ("nothing to compare with"); an occupant without that metric is unmet.
  The detail shows the value, where it came from and the threshold computed. A rule that
  names a ``runner`` counts only results (of this version, and of the stage's version it
  compares with) recorded by ``modelkeep check`` as a runner (the named one, if any) over
  a dataset; when none is, the detail says why the newest others do not count.
- **approval** (when the stage requires ``count >= 1``): for each user only the newest
  decision for this stage counts. Met when at least ``count`` users whose newest
  decision is ``approve`` held one of the rule's roles (or admin) on the model when
  deciding *and still do* (``PromotionFacts.approvers``: an approver since disabled or
  deleted, or whose grant was revoked, no longer counts), and nobody's newest decision
  is ``reject`` (a standing rejection is a veto, even when its author has left since:
  nobody can withdraw it for them; an admin's override can pass it, loudly).
- **separation** (when ``separation_of_duties`` is on and approvals are required): the
  approvals that count must still number ``count`` once the version's creator and the
  promoter are left out (approver, creator and releaser are different people). It is
  unmet only when leaving them out is what makes the count fall short, and names them.
- **notes** never fail: a standing decision older than a check result of this version
  it did not see, or given under another policy digest than the one in force.
- A stage the policy does not name has no rules: it passes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

from modelkeep.domain.access import ADMIN
from modelkeep.domain.policy_rules import ApprovalRule, MetricRule, ModelPolicy, StagePolicy
from modelkeep.domain.provenance import SOURCE_CHECK, Producer
from modelkeep.domain.versions import VersionMetadata, missing_fields

METADATA, CHECK, APPROVAL, SEPARATION = "metadata", "check", "approval", "separation"
APPROVE, REJECT = "approve", "reject"
RUN_CHECKS_HINT = "run 'modelkeep check'"


# --- facts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckFact:
    """One stored check result of a version."""

    id: int
    suite: str
    metrics: Mapping[str, float | None]
    passed: bool
    dataset: str | None  # "NAME@N"
    at: datetime
    producer: Producer | None = None  # None: recorded before producers were

    def __post_init__(self) -> None:
        object.__setattr__(self, "metrics", MappingProxyType(dict(self.metrics)))

    @property
    def source(self) -> str:
        return f"check #{self.id} on {self.dataset}" if self.dataset else f"check #{self.id}"


@dataclass(frozen=True)
class ApprovalFact:
    """One approve or reject decision on a version for a stage."""

    id: int
    user: str
    roles: tuple[str, ...]  # the user's roles on the model when deciding
    decision: str  # "approve" | "reject"
    stage: str
    comment: str | None
    at: datetime
    check_ids: tuple[int, ...] = ()  # the check results current when it was given
    policy_digest: str | None = None  # the policy in force when it was given


@dataclass(frozen=True)
class ApproverNow:
    """An approver as the store knows them at evaluation: ``state`` ("active",
    "disabled" or "deleted") and the roles they hold on the model now."""

    state: str
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageOccupant:
    """The version now in a stage, with its check results (for relative rules)."""

    ref: str  # "fraud@2"
    checks: tuple[CheckFact, ...] = ()


@dataclass(frozen=True)
class PromotionFacts:
    """What is known about a version when it is promoted (or tested against a stage)."""

    model: str
    number: int
    digest: str
    created_by: str
    metadata: VersionMetadata
    message: str | None
    checks: tuple[CheckFact, ...] = ()
    approvals: tuple[ApprovalFact, ...] = ()  # for this version digest, every stage
    occupants: Mapping[str, StageOccupant | None] = field(default_factory=dict)
    promoter: str | None = None  # None: nobody is promoting (``policy test``)
    policy_digest: str | None = None
    # each approver who is a user of the store, as they stand now; a name not here (the
    # operator of a store, ``local:...``) counts with the roles it held when deciding
    approvers: Mapping[str, ApproverNow] = field(default_factory=dict)
    runners: frozenset[str] | None = None
    """Of the producers of these checks, those who are runners on the model *now* (not
    disabled, role not revoked); None: not known, each result's own record is taken."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "occupants", MappingProxyType(dict(self.occupants)))
        object.__setattr__(self, "approvers", MappingProxyType(dict(self.approvers)))

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.number}"


# --- outcomes ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RuleOutcome:
    """One rule's verdict; ``evidence`` holds the check or approval ids it rests on."""

    kind: str  # "metadata" | "check" | "approval" | "separation"
    rule: str
    passed: bool
    detail: str
    evidence: tuple[int, ...] = ()

    @property
    def line(self) -> str:
        return f"{'ok' if self.passed else 'MISSING'}  {self.rule}: {self.detail}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rule": self.rule,
            "passed": self.passed,
            "detail": self.detail,
            "evidence": list(self.evidence),
        }


@dataclass(frozen=True)
class Evaluation:
    """Every rule of one stage against one version, and notes that do not fail."""

    stage: str
    rules: tuple[RuleOutcome, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return all(outcome.passed for outcome in self.rules)

    @property
    def unmet(self) -> tuple[RuleOutcome, ...]:
        return tuple(outcome for outcome in self.rules if not outcome.passed)

    def explain(self) -> list[str]:
        """One line per rule (``ok  ...`` / ``MISSING  ...``), then one per note."""
        if not self.rules:
            lines = [f"ok  the policy sets no rules for {self.stage}"]
        else:
            lines = [outcome.line for outcome in self.rules]
        return lines + [f"note  {note}" for note in self.notes]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "passed": self.passed,
            "rules": [outcome.to_dict() for outcome in self.rules],
            "notes": list(self.notes),
        }


# --- evaluation --------------------------------------------------------------------------


def evaluate(policy: ModelPolicy, stage: str, facts: PromotionFacts) -> Evaluation:
    """Every rule ``policy`` sets for ``stage``, judged on ``facts`` (see the module doc)."""
    stage_policy = policy.stage(stage)
    if stage_policy is None:
        return Evaluation(stage)
    outcomes = [
        *_metadata_outcomes(stage_policy, facts),
        *(_metric_outcome(rule, facts) for rule in stage_policy.checks),
        *_approval_outcomes(stage_policy, stage, facts),
    ]
    return Evaluation(stage, tuple(outcomes), tuple(_notes(stage, facts)))


def may_approve(policy: ModelPolicy, stage: str, creator: str, approver: str) -> tuple[bool, str]:
    """Whether separation of duties lets ``approver`` approve a version ``creator`` made."""
    stage_policy = policy.stage(stage)
    if stage_policy is None or not stage_policy.separation_of_duties:
        return True, f"the policy does not separate duties for {stage}"
    if creator == approver:
        return False, (
            f"{approver} created this version: separation of duties keeps them from "
            f"approving it for {stage}"
        )
    return True, f"{approver} did not create this version"


def _metadata_outcomes(stage_policy: StagePolicy, facts: PromotionFacts) -> list[RuleOutcome]:
    missing = set(missing_fields(stage_policy.require, facts.metadata, facts.message))
    return [
        RuleOutcome(
            METADATA,
            f"require {name}",
            name not in missing,
            f"{facts.ref} has no {name}" if name in missing else f"{name} is set",
        )
        for name in stage_policy.require
    ]


# --- metric rules ------------------------------------------------------------------------


def newest_reporting(
    checks: Iterable[CheckFact], metric: str, dataset: str | None = None
) -> CheckFact | None:
    """The newest check result reporting ``metric`` (on ``dataset``: ``NAME``, any of its
    versions, or ``NAME@N``)."""
    candidates = [c for c in checks if metric in c.metrics and _on_dataset(c, dataset)]
    return _newest(candidates)


def _newest(checks: Iterable[CheckFact]) -> CheckFact | None:
    return max(checks, key=lambda c: (c.at, c.id), default=None)


def _reporting(
    checks: Iterable[CheckFact],
    metric: str,
    rule: MetricRule,
    runners_now: frozenset[str] | None = None,
) -> tuple[CheckFact | None, list[CheckFact]]:
    """The newest result reporting ``metric`` that the rule trusts, and the newer ones
    that report it but are not trusted (newest first), to say why they do not count. A
    rule naming a runner weighs every result (a wrong or missing dataset is a reason);
    other rules see only the results on their dataset, as they always have."""
    if rule.runner is None:
        return newest_reporting(checks, metric, rule.dataset_ref), []
    candidates = [c for c in checks if metric in c.metrics]
    trusted = _newest(c for c in candidates if not why_untrusted(c, rule, runners_now))
    newer = [c for c in candidates if trusted is None or (c.at, c.id) > (trusted.at, trusted.id)]
    return trusted, sorted(newer, key=lambda c: (c.at, c.id), reverse=True)


def why_untrusted(
    check: CheckFact, rule: MetricRule, runners_now: frozenset[str] | None = None
) -> str:
    """Why ``check`` cannot satisfy a rule that names a runner; "" when it can.
    ``runners_now``: who is a runner on the model now (a runner disabled or stripped of
    the role since, e.g. when its token leaked, no longer vouches for its results)."""
    if rule.runner is None:
        return ""
    producer = check.producer
    if producer is None:
        return "it was recorded before results named their producer"
    reasons = []
    if producer.source != SOURCE_CHECK:
        reasons.append(f"{producer.user} posted it as a client (not by 'modelkeep check')")
    if not producer.runner:
        reasons.append(f"{producer.user} is not a runner")
    elif rule.runner and producer.user not in rule.runner:
        reasons.append(f"it is by runner {producer.user}, not {rule.runners_text}")
    elif runners_now is not None and producer.user not in runners_now:
        reasons.append(f"{producer.user} is no longer a runner (disabled, or the role revoked)")
    if check.dataset is None:
        reasons.append("it names no dataset")
    elif not _on_dataset(check, rule.dataset_ref):
        reasons.append(f"it is on {check.dataset}, not {rule.dataset_ref}")
    return ", ".join(reasons)


MAX_UNTRUSTED_SHOWN = 3


def _on_dataset(check: CheckFact, dataset: str | None) -> bool:
    """On ``dataset``: ``NAME`` (any of its versions) or ``NAME@N`` (that version)."""
    if dataset is None:
        return True
    if "@" in dataset:
        return check.dataset == dataset
    return (check.dataset or "").partition("@")[0] == dataset


def _on(dataset: str | None) -> str:
    return f" on {dataset}" if dataset else ""


def _from_runner(rule: MetricRule) -> str:
    return f" from 'modelkeep check' by {rule.runners_text}" if rule.runner is not None else ""


def _not_counted(
    untrusted: Sequence[CheckFact], rule: MetricRule, runners_now: frozenset[str] | None
) -> str:
    shown = [
        f"; {c.source} does not count: {why_untrusted(c, rule, runners_now)}" for c in untrusted
    ]
    more = len(shown) - MAX_UNTRUSTED_SHOWN
    return "".join(shown[:MAX_UNTRUSTED_SHOWN]) + (f"; and {more} more" if more > 0 else "")


def _run_hint(rule: MetricRule) -> str:
    if rule.runner is None:
        return RUN_CHECKS_HINT
    dataset = rule.dataset_ref if rule.dataset_version else f"{rule.dataset or 'DATASET'}@N"
    return f"{RUN_CHECKS_HINT} --dataset {dataset} with the token of {rule.runners_text}"


def _metric_outcome(rule: MetricRule, facts: PromotionFacts) -> RuleOutcome:
    check, untrusted = _reporting(facts.checks, rule.metric, rule, facts.runners)
    if check is None:
        detail = (
            f"no check result reports {rule.metric}{_on(rule.dataset_ref)}{_from_runner(rule)}"
            f"{_not_counted(untrusted, rule, facts.runners)}; {_run_hint(rule)}"
        )
        return RuleOutcome(CHECK, rule.label, False, detail, tuple(c.id for c in untrusted))
    value = check.metrics[rule.metric]
    if value is None:
        detail = f"{rule.metric} is not a number (NaN) in {check.source}"
        return RuleOutcome(CHECK, rule.label, False, detail, (check.id,))
    if rule.threshold is not None:
        return _compare(rule, value, check, rule.threshold, "", ())
    return _relative_outcome(rule, value, check, facts)


def _source(check: CheckFact, rule: MetricRule) -> str:
    """Where a value came from; with its producer when the rule insists on a runner."""
    if rule.runner is None or check.producer is None:
        return check.source
    return f"{check.source} by {check.producer.describe()}"


def _relative_outcome(
    rule: MetricRule, value: float, check: CheckFact, facts: PromotionFacts
) -> RuleOutcome:
    stage, metric = rule.stage or "", rule.stage_metric or rule.metric
    occupant = facts.occupants.get(stage)
    if occupant is None:
        detail = (
            f"{value:g} ({_source(check, rule)}); no version in {stage} yet: "
            "nothing to compare with"
        )
        return RuleOutcome(CHECK, rule.label, True, detail, (check.id,))
    reference, _ = _reporting(occupant.checks, metric, rule, facts.runners)
    if reference is None:
        detail = (
            f"{occupant.ref} in {stage} has no check result reporting {metric}"
            f"{_on(rule.dataset_ref)}{_from_runner(rule)} to compare with"
        )
        return RuleOutcome(CHECK, rule.label, False, detail, (check.id,))
    reference_value = reference.metrics[metric]
    if reference_value is None:
        detail = f"{metric} of {occupant.ref} is not a number (NaN) in {reference.source}"
        return RuleOutcome(CHECK, rule.label, False, detail, (check.id, reference.id))
    adjust = f" {rule.adjust_op} {rule.adjust:g}" if rule.adjust is not None else ""
    how = f" = {metric} {reference_value:g} of {occupant.ref} ({reference.source}){adjust}"
    return _compare(rule, value, check, rule.bound(reference_value), how, (reference.id,))


def _compare(
    rule: MetricRule,
    value: float,
    check: CheckFact,
    threshold: float,
    how: str,
    more_evidence: tuple[int, ...],
) -> RuleOutcome:
    passed = rule.holds(value, threshold)
    verdict = "" if passed else "not "
    detail = f"{value:g} ({_source(check, rule)}), {verdict}{rule.op} {threshold:g}{how}"
    return RuleOutcome(CHECK, rule.label, passed, detail, (check.id, *more_evidence))


# --- approvals ---------------------------------------------------------------------------


def standing_decisions(approvals: Iterable[ApprovalFact], stage: str) -> list[ApprovalFact]:
    """Each user's newest decision for ``stage``, oldest first."""
    newest: dict[str, ApprovalFact] = {}
    for fact in sorted(approvals, key=lambda a: (a.at, a.id)):
        if fact.stage == stage:
            newest[fact.user] = fact
    return sorted(newest.values(), key=lambda a: (a.at, a.id))


def _holds_role(roles: Iterable[str], rule: ApprovalRule) -> bool:
    return bool(set(roles) & {*rule.roles, ADMIN})


def _why_not_counted(fact: ApprovalFact, rule: ApprovalRule, facts: PromotionFacts) -> str:
    """Why an approval does not count toward ``rule``, or "" when it does."""
    allowed = ", ".join((*rule.roles, ADMIN))
    if not _holds_role(fact.roles, rule):
        who = f"{fact.user}'s approval #{fact.id}"
        return f"{who} does not count: {fact.user} holds none of {allowed}"
    now = facts.approvers.get(fact.user)
    if now is None:
        return ""
    if now.state != "active":
        return f"{fact.user}'s approval #{fact.id} no longer counts: {fact.user} is {now.state}"
    if not _holds_role(now.roles, rule):
        return (
            f"{fact.user}'s approval #{fact.id} no longer counts: {fact.user} no longer "
            f"holds {allowed} on {facts.model}"
        )
    return ""


def _approval_outcomes(
    stage_policy: StagePolicy, stage: str, facts: PromotionFacts
) -> list[RuleOutcome]:
    rule = stage_policy.approvals
    if rule is None or rule.count == 0:
        return []
    standing = standing_decisions(facts.approvals, stage)
    approving = [a for a in standing if a.decision == APPROVE]
    not_counted = {a.id: _why_not_counted(a, rule, facts) for a in approving}
    counted = [a for a in approving if not not_counted[a.id]]
    outcomes = [_approval_outcome(rule, standing, counted, not_counted, facts)]
    if stage_policy.separation_of_duties:
        others = [why for why in not_counted.values() if why]
        outcomes.append(_separation_outcome(rule, counted, others, facts))
    return outcomes


def _approval_outcome(
    rule: ApprovalRule,
    standing: Sequence[ApprovalFact],
    counted: Sequence[ApprovalFact],
    not_counted: Mapping[int, str],
    facts: PromotionFacts,
) -> RuleOutcome:
    rejections = [a for a in standing if a.decision == REJECT]
    parts = [f"{len(counted)} of {rule.count}{_by(counted)}"]
    parts += [why for why in not_counted.values() if why]
    parts += [
        f"rejected by {a.user} (#{a.id}): {a.comment or 'no comment'}{_gone(a, facts)}"
        for a in rejections
    ]
    passed = len(counted) >= rule.count and not rejections
    evidence = tuple(a.id for a in (*counted, *rejections))
    return RuleOutcome(APPROVAL, rule.label, passed, "; ".join(parts), evidence)


def _gone(fact: ApprovalFact, facts: PromotionFacts) -> str:
    now = facts.approvers.get(fact.user)
    if now is None or now.state == "active":
        return ""
    return f" ({fact.user} is {now.state}; the rejection stands)"


def _by(approvals: Sequence[ApprovalFact]) -> str:
    return (": " + ", ".join(f"{a.user} (#{a.id})" for a in approvals)) if approvals else ""


def _separation_outcome(
    rule: ApprovalRule,
    counted: Sequence[ApprovalFact],
    not_counted: Sequence[str],
    facts: PromotionFacts,
) -> RuleOutcome:
    excluded = {a.id: _why_excluded(a, facts) for a in counted}
    excluded = {key: why for key, why in excluded.items() if why}
    remaining = [a for a in counted if a.id not in excluded]
    passed = len(remaining) >= rule.count or len(counted) < rule.count
    if excluded:
        parts = [f"{len(remaining)} of {rule.count} without the creator's and promoter's"]
        parts += [f"#{key} does not count: {why}" for key, why in excluded.items()]
        if not passed:  # what else could have counted, and why it does not
            parts += not_counted
    else:
        by = f"the creator ({facts.created_by})"
        if facts.promoter is not None:
            by += f" or the promoter ({facts.promoter})"
        parts = [f"no approval counted is by {by}"]
    if facts.promoter is None:
        parts.append("when promoting, the releaser's own approval will not count")
    rule_text = "separation of duties"
    evidence = tuple(a.id for a in remaining)
    return RuleOutcome(SEPARATION, rule_text, passed, "; ".join(parts), evidence)


def _why_excluded(fact: ApprovalFact, facts: PromotionFacts) -> str:
    if fact.user == facts.created_by:
        return f"{fact.user} created {facts.ref}"
    if fact.user == facts.promoter:
        return f"{fact.user} is promoting {facts.ref}"
    return ""


# --- notes -------------------------------------------------------------------------------


def _notes(stage: str, facts: PromotionFacts) -> list[str]:
    notes: list[str] = []
    for fact in standing_decisions(facts.approvals, stage):
        kind = "approval" if fact.decision == APPROVE else "rejection"
        what = f"{kind} #{fact.id} by {fact.user}"
        unseen = [c for c in facts.checks if c.at > fact.at and c.id not in fact.check_ids]
        if unseen:
            newest = max(unseen, key=lambda c: (c.at, c.id))
            notes.append(f"{what} predates check result #{newest.id}")
        if fact.policy_digest != facts.policy_digest:
            given = fact.policy_digest or "no policy"
            notes.append(f"{what} was given under another policy ({given})")
    return notes
