"""Who may do what: roles, actions, and the one ``decide()`` every service call goes through.

A user holds **grants**: a role, either global or on one scope. A scope is a model
(``fraud``), an experiment (``experiment:E``: the runs recorded under it) or a dataset
(``dataset:D``: its versions). Roles:

- ``viewer``: read (models, versions, aliases, audit log, pull);
- ``runner``: read; record checks. A service account (e.g. CI) whose check results a
  policy can insist on (``runner:`` in a check rule); it holds no other role, so no person
  can produce evidence in its name (see ``check_runner_grants``);
- ``contributor``: read; create models (global grant only), push, runs, checks, free aliases,
  archive;
- ``approver``: read; record checks; approve or reject promotions;
- ``releaser``: read; record checks; promote and roll back stages;
- ``admin``: everything, including users, grants, policies, overrides, ``verify`` and ``gc``.

A grant on a scope applies to that scope only. ``decide`` is pure and always says why,
so a refusal can tell the user exactly which role is missing. Model names never hold a
``:``, so a resource string names its scope without ambiguity.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from modelkeep.domain.names import check_model_name
from modelkeep.domain.runs import check_experiment
from modelkeep.errors import InvalidInput

VIEWER, RUNNER, CONTRIBUTOR, APPROVER, RELEASER, ADMIN = (
    "viewer",
    "runner",
    "contributor",
    "approver",
    "releaser",
    "admin",
)
ROLES: dict[str, str] = {
    VIEWER: "read models, versions, aliases, runs, datasets and the audit log; pull",
    RUNNER: "read; record checks as a check runner (a service account holding no other role)",
    CONTRIBUTOR: "read; create models (global grant), push, runs, checks, free aliases, archive",
    APPROVER: "read; record checks; approve or reject promotions",
    RELEASER: "read; record checks; promote and roll back stages",
    ADMIN: "everything: users, grants and tokens, policies, overrides, verify, gc",
}
"""Every role, least powerful first, with what it allows."""

ANY_MODEL = "*"
"""The resource of a call that needs the action on *some* scope (never a scope's name)."""

EXPERIMENT, DATASET = "experiment", "dataset"
"""The kinds of scope besides models, as resource strings spell them (``experiment:E``)."""


def experiment_scope(name: str) -> str:
    """The resource string of experiment ``name`` (its runs)."""
    return f"{EXPERIMENT}:{name}"


def dataset_scope(name: str) -> str:
    """The resource string of dataset ``name`` (its versions)."""
    return f"{DATASET}:{name}"


def describe_scope(scope: str) -> str:
    """``fraud``, ``experiment tuning``, ``dataset tx``."""
    kind, sep, name = scope.partition(":")
    return f"{kind} {name}" if sep else scope


@dataclass(frozen=True, kw_only=True)
class Action:
    """Something a service does on behalf of an actor.

    ``per_model`` actions apply to one model, so a grant on that model can allow them;
    the others need a global grant."""

    name: str
    description: str
    per_model: bool
    roles: tuple[str, ...]

    def __post_init__(self) -> None:
        if ADMIN not in self.roles or not set(self.roles) <= set(ROLES):
            raise ValueError(f"action {self.name}: bad roles {self.roles}")


_READERS = (VIEWER, RUNNER, CONTRIBUTOR, APPROVER, RELEASER, ADMIN)

READ = Action(
    name="read",
    description=(
        "list and show models, versions, aliases, runs, datasets and audit events; resolve; pull"
    ),
    per_model=True,
    roles=_READERS,
)
CREATE_MODEL = Action(
    name="create-model",
    description="register a new model",
    per_model=False,
    roles=(CONTRIBUTOR, ADMIN),
)
PUSH = Action(
    name="push",
    description="upload files and register a version",
    per_model=True,
    roles=(CONTRIBUTOR, ADMIN),
)
SET_ALIAS = Action(
    name="set-alias",
    description="set or remove a free alias (not a stage)",
    per_model=True,
    roles=(CONTRIBUTOR, ADMIN),
)
ARCHIVE = Action(
    name="archive",
    description="archive a version",
    per_model=True,
    roles=(CONTRIBUTOR, ADMIN),
)
APPROVE = Action(
    name="approve",
    description="approve or reject a promotion",
    per_model=True,
    roles=(APPROVER, ADMIN),
)
PROMOTE = Action(
    name="promote",
    description="move a stage to a version",
    per_model=True,
    roles=(RELEASER, ADMIN),
)
ROLLBACK = Action(
    name="rollback",
    description="move a stage back to its previous version",
    per_model=True,
    roles=(RELEASER, ADMIN),
)
DEPLOY = Action(
    name="deploy",
    description="change a deployment's desired state: deploy, promote, roll back",
    per_model=True,
    roles=(RELEASER, ADMIN),
)
TRACK = Action(
    name="track",
    description=(
        "start and end runs, log their params, metrics and files (on the run's experiment); "
        "push datasets (on the dataset)"
    ),
    per_model=True,
    roles=(CONTRIBUTOR, ADMIN),
)
VERIFY = Action(
    name="verify",
    description="re-hash the stored bytes of versions",
    per_model=True,
    roles=(ADMIN,),
)
GC = Action(
    name="gc",
    description="delete blobs no version uses; set and clear retention policies",
    per_model=False,
    roles=(ADMIN,),
)
MANAGE_USERS = Action(
    name="manage-users",
    description="create and disable users, grant and revoke roles, create and revoke tokens",
    per_model=False,
    roles=(ADMIN,),
)
CHECK = Action(
    name="check",
    description="record check results (evaluation, fairness, robustness evidence) of a version",
    per_model=True,
    roles=(RUNNER, CONTRIBUTOR, APPROVER, RELEASER, ADMIN),
)
SET_POLICY = Action(
    name="set-policy",
    description="replace the registry's promotion policy",
    per_model=False,
    roles=(ADMIN,),
)
OVERRIDE = Action(
    name="override",
    description="promote although the policy is not met (needs a reason; marked loudly)",
    per_model=True,
    roles=(ADMIN,),
)
CHECKPOINT = Action(
    name="checkpoint",
    description="sign the audit head with the store's key (audit checkpoint)",
    per_model=False,
    roles=(ADMIN,),
)

ACTIONS: dict[str, Action] = {
    a.name: a
    for a in (
        READ,
        CREATE_MODEL,
        PUSH,
        SET_ALIAS,
        ARCHIVE,
        APPROVE,
        PROMOTE,
        ROLLBACK,
        DEPLOY,
        TRACK,
        CHECK,
        SET_POLICY,
        OVERRIDE,
        VERIFY,
        GC,
        MANAGE_USERS,
        CHECKPOINT,
    )
}
"""Every action, by name."""


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput(f"{role!r} is not a role", f"use one of {', '.join(ROLES)}")
    return role


@dataclass(frozen=True)
class Grant:
    """A role, globally (no scope) or on one scope: a ``model``, an ``experiment`` or a
    ``dataset`` (at most one of them)."""

    role: str
    model: str | None = None
    experiment: str | None = None
    dataset: str | None = None

    def __post_init__(self) -> None:
        check_role(self.role)
        named = [x for x in (self.model, self.experiment, self.dataset) if x is not None]
        if len(named) > 1:
            raise InvalidInput(
                "a grant names one scope", "give one of --model, --experiment or --dataset"
            )
        if self.model is not None:
            check_model_name(self.model)
        if self.experiment is not None:
            check_experiment(self.experiment)
        if self.dataset is not None:
            check_model_name(self.dataset)

    @classmethod
    def on(cls, role: str, scope: str | None) -> Grant:
        """The grant of ``role`` on a resource string (None: global), as stored."""
        kind, sep, name = (scope or "").partition(":")
        if not sep:
            return cls(role, scope)
        if kind == EXPERIMENT:
            return cls(role, experiment=name)
        if kind == DATASET:
            return cls(role, dataset=name)
        raise InvalidInput(f"{scope!r} is not a scope", "name a model, experiment:E or dataset:D")

    @property
    def scope(self) -> str | None:
        """The resource string this grant is on (None: global)."""
        if self.experiment is not None:
            return experiment_scope(self.experiment)
        if self.dataset is not None:
            return dataset_scope(self.dataset)
        return self.model

    @property
    def is_global(self) -> bool:
        return self.scope is None

    def applies_to(self, action: Action, model: str | None) -> bool:
        if self.is_global:
            return True
        return action.per_model and model is not None and model in (self.scope, ANY_MODEL)

    def describe(self) -> str:
        """``a global viewer``, ``an admin of fraud``, ``a viewer of dataset tx``."""
        if self.scope is None:
            return f"a global {self.role}"
        return f"{_article(self.role)} {self.role} of {describe_scope(self.scope)}"

    def to_dict(self) -> dict[str, str | None]:
        """``role`` and ``model`` always (None unless a model grant), then ``experiment``
        or ``dataset`` when the grant is on one."""
        found: dict[str, str | None] = {"role": self.role, "model": self.model}
        if self.experiment is not None:
            found["experiment"] = self.experiment
        if self.dataset is not None:
            found["dataset"] = self.dataset
        return found


def check_runner_grants(held: Iterable[Grant], wanted: Grant) -> None:
    """A runner holds the runner role only: evidence a policy accepts from a runner must
    not come from a person who also pushes, approves or releases."""
    grants = tuple(held)
    others = [g for g in grants if g.role != RUNNER]
    if wanted.role == RUNNER and others:
        raise InvalidInput(
            f"a runner holds no other role, and this user is {others[0].describe()}",
            "create a separate user for the check runner ('users create NAME --role runner')",
        )
    if wanted.role != RUNNER and len(others) < len(grants):
        raise InvalidInput(
            "this user is a runner, and a runner holds no other role",
            "give the role to another user; a runner only records checks",
        )


def is_runner(grants: Iterable[Grant], model: str) -> bool:
    """Whether ``grants`` make their holder a runner on ``model`` (global or that model)."""
    return any(g.role == RUNNER and (g.is_global or g.model == model) for g in grants)


@dataclass(frozen=True)
class Actor:
    """Who a service call acts for: a name (recorded in the audit log) and its grants."""

    name: str
    grants: tuple[Grant, ...] = ()

    @classmethod
    def operator(cls, name: str) -> Actor:
        """Whoever opens a store directly (``local:<os user>``): a global admin."""
        return cls(name, (Grant(ADMIN),))


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str


def decide(actor: Actor, action: Action, model: str | None) -> Decision:
    """May ``actor`` do ``action`` on ``model``?

    ``model`` is None for the whole registry (only global grants count), ``ANY_MODEL``
    for "on some model" (any grant counts), else a model name. Actions that are not
    per model ignore it: they always need a global grant.
    """
    scope = model if action.per_model else None
    allowing = [g for g in actor.grants if g.role in action.roles and g.applies_to(action, scope)]
    where = _where(action, scope)
    if allowing:
        best = min(allowing, key=lambda g: g.is_global)  # name the scope's own grant first
        return Decision(True, f"{actor.name} may {action.name}{where} as {best.describe()}")
    return Decision(False, f"{_holds(actor)}; {action.name}{where} needs {_needs(action, scope)}")


def _where(action: Action, scope: str | None) -> str:
    if not action.per_model:
        return ""
    if scope is None:
        return " on every model"
    if scope == ANY_MODEL:
        return " on some model"
    return f" on {describe_scope(scope)}"


def _needs(action: Action, scope: str | None) -> str:
    roles = _or(action.roles)
    if not action.per_model or scope is None:
        return f"a global {roles}"
    if scope == ANY_MODEL:
        return f"{roles} on some model"
    return roles


MAX_LISTED_GRANTS = 4


def _holds(actor: Actor) -> str:
    if not actor.grants:
        return f"{actor.name} has no role"
    described = [g.describe() for g in actor.grants[:MAX_LISTED_GRANTS]]
    more = len(actor.grants) - MAX_LISTED_GRANTS
    if more > 0:
        described.append(f"{more} more")
    return f"{actor.name} is {_and(described)}"


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _or(words: Iterable[str]) -> str:
    items = list(words)
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def _and(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"
