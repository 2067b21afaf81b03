"""``decide()``: the role matrix, scopes, and reasons a person can act on."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from modelkeep.domain.access import (
    ACTIONS,
    ANY_MODEL,
    CREATE_MODEL,
    PROMOTE,
    PUSH,
    READ,
    ROLES,
    Action,
    Actor,
    Grant,
    decide,
)
from modelkeep.domain.users import IssuedToken, Token, check_user_name, hash_token
from modelkeep.errors import InvalidInput, InvalidName

# What each role allows, written out independently of the code's tables.
ALLOWS = {
    "viewer": {"read"},
    "runner": {"read", "check"},
    "contributor": {"read", "create-model", "push", "set-alias", "archive", "track", "check"},
    "approver": {"read", "approve", "check"},
    "releaser": {"read", "promote", "rollback", "deploy", "check"},
    "admin": {
        "read",
        "create-model",
        "push",
        "set-alias",
        "archive",
        "approve",
        "promote",
        "rollback",
        "deploy",
        "track",
        "check",
        "set-policy",
        "override",
        "verify",
        "gc",
        "manage-users",
        "checkpoint",
    },
}
GLOBAL_ONLY = {"create-model", "gc", "manage-users", "checkpoint", "set-policy"}

# (grant scope, model asked about, whether the grant can apply there)
SCOPES = [
    pytest.param(None, "fraud", "any", id="global-on-fraud"),
    pytest.param(None, None, "any", id="global-on-registry"),
    pytest.param(None, ANY_MODEL, "any", id="global-on-some-model"),
    pytest.param("fraud", "fraud", "model", id="fraud-on-fraud"),
    pytest.param("fraud", ANY_MODEL, "model", id="fraud-on-some-model"),
    pytest.param("churn", "fraud", "never", id="churn-on-fraud"),
    pytest.param("fraud", None, "never", id="fraud-on-registry"),
]


def test_the_matrix_names_every_role_and_action() -> None:
    assert set(ALLOWS) == set(ROLES)
    assert set(ALLOWS["admin"]) == set(ACTIONS)
    assert {name for name, a in ACTIONS.items() if not a.per_model} == GLOBAL_ONLY


@pytest.mark.parametrize("action", ACTIONS.values(), ids=lambda a: a.name)
@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("granted_on", "asked_on", "applies"), SCOPES)
def test_role_matrix(
    role: str, action: Action, granted_on: str | None, asked_on: str | None, applies: str
) -> None:
    actor = Actor("alice", (Grant(role, granted_on),))
    expected = action.name in ALLOWS[role] and (
        applies == "any" or (applies == "model" and action.name not in GLOBAL_ONLY)
    )

    decision = decide(actor, action, asked_on)

    assert decision.allowed is expected, decision.reason
    assert decision.reason.startswith("alice ")
    assert action.name in decision.reason
    assert role in decision.reason  # the role the actor holds, allowed or not
    if not expected:
        assert "needs" in decision.reason and "admin" in decision.reason


def test_a_refusal_says_what_is_held_and_what_is_needed() -> None:
    alice = Actor("alice", (Grant("contributor", "fraud"),))
    assert decide(alice, PROMOTE, "fraud").reason == (
        "alice is a contributor of fraud; promote on fraud needs releaser or admin"
    )
    assert decide(alice, CREATE_MODEL, "churn").reason == (
        "alice is a contributor of fraud; create-model needs a global contributor or admin"
    )
    assert decide(alice, PUSH, "churn").reason == (
        "alice is a contributor of fraud; push on churn needs contributor or admin"
    )
    assert decide(alice, READ, None).reason == (
        "alice is a contributor of fraud; read on every model needs a global viewer, "
        "runner, contributor, approver, releaser or admin"
    )


def test_an_approval_names_the_grant_that_allows_it() -> None:
    bob = Actor("bob", (Grant("viewer"), Grant("releaser", "fraud")))
    assert decide(bob, PROMOTE, "fraud").reason == "bob may promote on fraud as a releaser of fraud"
    assert decide(bob, READ, "fraud").reason == "bob may read on fraud as a releaser of fraud"
    assert decide(bob, READ, "churn").reason == "bob may read on churn as a global viewer"
    assert decide(bob, PUSH, ANY_MODEL).reason == (
        "bob is a global viewer and a releaser of fraud; push on some model needs "
        "contributor or admin on some model"
    )


def test_model_grants_and_global_grants_add_up() -> None:
    carol = Actor("carol", (Grant("viewer"), Grant("contributor", "fraud")))
    assert decide(carol, PUSH, "fraud").allowed
    assert not decide(carol, PUSH, "churn").allowed
    assert decide(carol, READ, "churn").allowed
    assert not decide(carol, CREATE_MODEL, "fraud").allowed


def test_an_actor_without_grants_may_do_nothing() -> None:
    nobody = Actor("nobody")
    for action in ACTIONS.values():
        decision = decide(nobody, action, "fraud")
        assert not decision.allowed
        assert decision.reason.startswith("nobody has no role; ")


def test_the_operator_is_a_global_admin() -> None:
    operator = Actor.operator("local:ann")
    assert operator.name == "local:ann"
    for action in ACTIONS.values():
        for model in ("fraud", None, ANY_MODEL):
            decision = decide(operator, action, model)
            assert decision.allowed and "as a global admin" in decision.reason


def test_long_grant_lists_are_shortened() -> None:
    many = Actor("dan", tuple(Grant("viewer", f"m{i}") for i in range(7)))
    reason = decide(many, PUSH, "m0").reason
    assert "a viewer of m0" in reason and "m4" not in reason and "3 more" in reason


@pytest.mark.parametrize(
    ("role", "model"),
    [("owner", None), ("Admin", None), ("viewer", "Bad Name"), ("viewer", ANY_MODEL)],
)
def test_grants_are_checked(role: str, model: str | None) -> None:
    with pytest.raises(InvalidInput):
        Grant(role, model)


def test_every_action_and_role_is_documented() -> None:
    concepts = (Path(__file__).parents[2] / "docs" / "concepts.md").read_text()
    section = concepts.split("## Users and roles", 1)[1].split("\n## ", 1)[0]
    for name in [*ACTIONS, *ROLES]:
        assert re.search(rf"`{re.escape(name)}`", section), f"document `{name}`"


# user names and tokens ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["alice", "a", "ci-bot", "ann@example.org", "x.y_z", "0"])
def test_good_user_names(name: str) -> None:
    assert check_user_name(name) == name


@pytest.mark.parametrize(
    "name", ["", "Alice", "-x", "a b", "local:ann", "a:b", "x" * 129, "é", "ann/x"]
)
def test_bad_user_names(name: str) -> None:
    with pytest.raises(InvalidName):
        check_user_name(name)


def test_local_prefix_is_reserved_with_a_reason() -> None:
    with pytest.raises(InvalidName, match="reserved"):
        check_user_name("local:ann")


def test_a_token_is_kept_as_its_sha256() -> None:
    assert hash_token("mk_abc") == hashlib.sha256(b"mk_abc").hexdigest()


def test_an_issued_token_never_shows_its_secret_in_repr() -> None:
    info = Token(1, "alice", None, datetime.now(UTC), "local:ann")
    issued = IssuedToken("mk_secret", info)
    assert "mk_secret" not in repr(issued)
    assert issued.to_dict()["token"] == "mk_secret"


def test_a_grant_names_one_scope_and_applies_to_it_alone() -> None:
    from modelkeep.domain.access import TRACK, dataset_scope, experiment_scope

    on_runs = Grant("contributor", experiment="Tuning-2")
    on_data = Grant("viewer", dataset="tx")
    assert (on_runs.scope, on_data.scope) == ("experiment:Tuning-2", "dataset:tx")
    assert Grant.on("viewer", "dataset:tx") == on_data and Grant.on("viewer", "fraud").model
    actor = Actor("ann", (on_runs, on_data))
    assert decide(actor, TRACK, experiment_scope("Tuning-2")).allowed
    assert not decide(actor, TRACK, experiment_scope("other")).allowed
    assert not decide(actor, TRACK, "Tuning-2").allowed  # a model of that name
    assert decide(actor, READ, dataset_scope("tx")).allowed
    assert not decide(actor, TRACK, dataset_scope("tx")).allowed  # a viewer
    assert decide(actor, PUSH, ANY_MODEL).allowed  # uploading bytes for a run's file
    refused = decide(actor, PUSH, "fraud")
    assert "a contributor of experiment Tuning-2" in refused.reason
    assert on_data.to_dict() == {"role": "viewer", "model": None, "dataset": "tx"}
    with pytest.raises(InvalidInput, match="one scope"):
        Grant("viewer", "fraud", dataset="tx")
