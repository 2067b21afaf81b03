"""The pure rules of a desired state's changes (domain/deployments.py) and the policy's
``environments`` (domain/policy.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from modelkeep.domain.deployments import (
    Backend,
    DeploymentChange,
    DesiredState,
    EnvironmentRule,
    next_state,
    promoted,
    rollback_target,
)
from modelkeep.domain.policy import parse_policy
from modelkeep.errors import InvalidInput, InvalidPolicy

AT = datetime(2026, 12, 8, tzinfo=UTC)


def target(n: int, weight: int = 100) -> Backend:
    return Backend(f"m@{n}", f"sha256:{n:064x}", "stable", weight)


def shape(state: DesiredState) -> list[tuple[str, str, int]]:
    return [(b.ref, b.role, b.weight) for b in state.backends]


def test_a_candidate_takes_its_weight_from_the_stable_one_and_a_shadow_takes_none() -> None:
    first = next_state(None, "m", "prod", target(1), "stable")
    assert first.revision == 1 and shape(first) == [("m@1", "stable", 100)]
    canary = next_state(first, "m", "prod", target(2, 30), "canary")
    assert shape(canary) == [("m@1", "stable", 70), ("m@2", "canary", 30)]
    both = next_state(canary, "m", "prod", target(3, 5), "shadow")
    assert shape(both) == [("m@1", "stable", 70), ("m@2", "canary", 30), ("m@3", "shadow", 5)]
    replaced = next_state(both, "m", "prod", target(3, 10), "canary")
    assert shape(replaced) == [("m@1", "stable", 90), ("m@3", "canary", 10), ("m@3", "shadow", 5)]
    ab = next_state(canary, "m", "prod", target(3, 50), "ab", "cookie:uid")
    assert ab.sticky == "cookie:uid" and shape(ab)[1] == ("m@3", "canary", 50)
    assert next_state(ab, "m", "prod", target(2, 10), "canary").sticky is None
    assert shape(next_state(both, "m", "prod", target(2), "stable")) == [("m@2", "stable", 100)]
    assert both.revision == 3


def test_the_ends_of_the_weight_range_are_allowed_and_beyond_them_refused() -> None:
    first = next_state(None, "m", "prod", target(1), "stable")
    assert shape(next_state(first, "m", "prod", target(2, 100), "canary"))[0][2] == 0
    assert shape(next_state(first, "m", "prod", target(2, 0), "canary"))[0][2] == 100
    for weight in (-1, 101):
        with pytest.raises(InvalidInput, match="not a weight"):
            Backend("m@2", "sha256:" + "2" * 64, "canary", weight)


def test_promote_prefers_the_canary_and_refuses_without_a_candidate() -> None:
    first = next_state(None, "m", "prod", target(1), "stable")
    with pytest.raises(InvalidInput, match="no candidate"):
        promoted(first, "m", "prod")
    shadowed = next_state(first, "m", "prod", target(3, 5), "shadow")
    assert shape(promoted(shadowed, "m", "prod")) == [("m@3", "stable", 100)]
    both = next_state(shadowed, "m", "prod", target(2, 5), "canary")
    assert shape(promoted(both, "m", "prod")) == [("m@2", "stable", 100)]


def change(action: str, previous: DesiredState | None, state: DesiredState) -> DeploymentChange:
    return DeploymentChange("m", "prod", state.revision, action, previous, state, "a", AT, None)  # type: ignore[arg-type]


def test_each_rollback_undoes_one_more_change() -> None:
    s1 = next_state(None, "m", "prod", target(1), "stable")
    s2 = next_state(s1, "m", "prod", target(2), "stable")
    s3 = next_state(s2, "m", "prod", target(3), "stable")
    history = [change("deploy", None, s1), change("deploy", s1, s2), change("deploy", s2, s3)]
    assert rollback_target(history[:1]) is None
    assert rollback_target(history) == s2
    history.append(change("rollback", s3, s2))
    assert rollback_target(history) == s1
    history.append(change("rollback", s2, s1))
    assert rollback_target(history) is None
    history.append(change("deploy", s1, s3))
    assert rollback_target(history) == s1


def test_the_policy_reads_environments_and_refuses_what_it_does_not_know() -> None:
    policy = parse_policy(
        "format: 1\nenvironments:\n  prod: {requires_stage: production, canary_from: staging}\n"
        "  staging: {requires_stage: staging}\n"
    )
    assert policy.environment("prod") == EnvironmentRule("production", "staging")
    assert policy.environment("prod").stage_for("shadow") == "staging"
    assert policy.environment("staging").stage_for("canary") == "staging"
    assert policy.environment("dev") == EnvironmentRule()
    assert policy.to_dict()["environments"]["prod"] == {
        "requires_stage": "production",
        "canary_from": "staging",
    }
    assert "environments" not in parse_policy("format: 1\n").to_dict()
    for bad, says in [
        ("environments:\n  prod: {requires_stage: gold}\n", "line 3: unknown stage 'gold'"),
        ("environments:\n  Prod!: {}\n", "line 3: 'Prod!' is not an environment name"),
        ("environments:\n  prod: {stage: production}\n", "line 3: unknown key 'stage'"),
        ("environments: [prod]\n", "must be a mapping"),
    ]:
        with pytest.raises(InvalidPolicy, match=says.replace("(", r"\(")):
            parse_policy("format: 1\n" + bad)
