"""Routing between the versions of a desired state: deterministic, sticky keys stable
across calls and processes, splits within statistical bounds of the weights."""

from __future__ import annotations

import math
import random
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelkeep.domain.deployments import Backend, DesiredState
from modelkeep.domain.routing import route, sticky_bucket

STABLE = Backend("fraud@4", "sha256:" + "a" * 64, "stable", 100)


def state(
    canary: int | None = None, shadow: int | None = None, sticky: str | None = None
) -> DesiredState:
    backends = [STABLE]
    if canary is not None:
        backends.append(Backend("fraud@5", "sha256:" + "b" * 64, "canary", canary))
    if shadow is not None:
        backends.append(Backend("fraud@6", "sha256:" + "c" * 64, "shadow", shadow))
    return DesiredState("fraud", "prod", 3, tuple(backends), sticky)


weights = st.integers(0, 100)
draws = st.floats(0, 1, exclude_max=True)
keys = st.text(max_size=40)


@given(weights, draws, draws)
def test_a_weighted_canary_answers_exactly_the_draws_below_its_weight(
    weight: int, draw: float, shadow_draw: float
) -> None:
    chosen = route(state(canary=weight), draw=draw, shadow_draw=shadow_draw)
    assert chosen.serve.role == ("canary" if draw * 100 < weight else "stable")
    assert chosen.assignment is None
    assert chosen.mirror is None


@given(weights, draws, draws, st.one_of(st.none(), keys))
def test_routing_is_a_function_of_its_inputs(
    weight: int, draw: float, shadow_draw: float, key: str | None
) -> None:
    for sticky in (None, "header:x-user"):
        desired = state(canary=weight, shadow=weight, sticky=sticky)
        first = route(desired, draw=draw, shadow_draw=shadow_draw, key=key)
        assert route(desired, draw=draw, shadow_draw=shadow_draw, key=key) == first


@given(weights, keys, draws, draws)
def test_a_sticky_key_reaches_the_same_version_whatever_the_draws(
    weight: int, key: str, draw_a: float, draw_b: float
) -> None:
    desired = state(canary=weight, sticky="cookie:uid")
    a = route(desired, draw=draw_a, shadow_draw=draw_a, key=key)
    b = route(desired, draw=draw_b, shadow_draw=draw_b, key=key)
    assert a.serve == b.serve
    assert a.assignment == b.assignment == a.serve.role
    assert (a.serve.role == "canary") == (sticky_bucket("fraud", "prod", key) < weight)


@given(keys, weights, weights)
def test_raising_the_ab_weight_only_moves_keys_to_the_canary(key: str, w1: int, w2: int) -> None:
    low, high = sorted((w1, w2))
    at_low = route(state(canary=low, sticky="query:u"), draw=0, shadow_draw=0, key=key)
    at_high = route(state(canary=high, sticky="query:u"), draw=0, shadow_draw=0, key=key)
    assert at_low.serve.role != "canary" or at_high.serve.role == "canary"


@given(keys)
def test_a_new_revision_keeps_every_assignment(key: str) -> None:
    desired = state(canary=30, sticky="header:x-user")
    later = DesiredState("fraud", "prod", 9, desired.backends, desired.sticky)
    assert route(desired, draw=0.5, shadow_draw=0.5, key=key) == route(
        later, draw=0.5, shadow_draw=0.5, key=key
    )


def test_an_ab_request_without_its_key_is_answered_by_stable_and_says_so() -> None:
    chosen = route(state(canary=100, sticky="header:x-user"), draw=0, shadow_draw=0)
    assert (chosen.serve.role, chosen.assignment) == ("stable", "unassigned")


@given(weights, draws)
def test_the_shadow_gets_a_copy_of_exactly_its_share(weight: int, shadow_draw: float) -> None:
    chosen = route(state(shadow=weight), draw=0.0, shadow_draw=shadow_draw)
    assert chosen.serve == STABLE  # a shadow never answers
    assert (chosen.mirror is not None) == (shadow_draw * 100 < weight)


def test_sticky_buckets_are_the_same_in_another_process() -> None:
    """SHA-256, not the per-process salted hash(): another interpreter (another gateway
    replica) puts every key in the same bucket."""
    sample = [f"user-{i}" for i in range(200)] + ["", "é", "\U0001f600"]
    code = (
        "import json,sys\nfrom modelkeep.domain.routing import sticky_bucket\n"
        "print(json.dumps([sticky_bucket('fraud','prod',k) for k in json.load(sys.stdin)]))"
    )
    import json

    done = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(sample),
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "12345", "PYTHONPATH": ":".join(sys.path)},
    )
    assert json.loads(done.stdout) == [sticky_bucket("fraud", "prod", k) for k in sample]


def within_bounds(hits: int, n: int, weight: int) -> bool:
    """Whether ``hits`` of ``n`` is within 5 standard deviations of ``weight`` percent
    (a false alarm about once in 3.5 million runs)."""
    p = weight / 100
    return abs(hits - n * p) <= 5 * math.sqrt(n * p * (1 - p)) + 1e-9


@pytest.mark.parametrize("weight", [0, 1, 10, 20, 50, 90, 100])
def test_observed_canary_and_shadow_splits_are_within_bounds(weight: int) -> None:
    rng = random.Random(weight)
    desired = state(canary=weight, shadow=weight)
    n = 20_000
    routes = [route(desired, draw=rng.random(), shadow_draw=rng.random()) for _ in range(n)]
    assert within_bounds(sum(r.serve.role == "canary" for r in routes), n, weight)
    assert within_bounds(sum(r.mirror is not None for r in routes), n, weight)


@pytest.mark.parametrize("weight", [0, 5, 20, 50, 100])
def test_observed_ab_split_over_distinct_keys_is_within_bounds(weight: int) -> None:
    desired = state(canary=weight, sticky="header:x-user")
    n = 20_000
    arms = [route(desired, draw=0, shadow_draw=1, key=f"k{i}").assignment for i in range(n)]
    assert within_bounds(arms.count("canary"), n, weight)
    assert arms.count("canary") + arms.count("stable") == n


def test_the_salt_separates_models_and_environments() -> None:
    keys = [f"user-{i}" for i in range(2000)]
    prod = [sticky_bucket("fraud", "prod", k) for k in keys]
    assert prod != [sticky_bucket("fraud", "staging", k) for k in keys]
    assert prod != [sticky_bucket("churn", "prod", k) for k in keys]
