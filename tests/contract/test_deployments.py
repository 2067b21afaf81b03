"""Deployments through the SDK (in process and over HTTP), on SQLite, PostgreSQL and memory:
desired states, their history, compare-and-set, the policy's environments, bad input."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable

import pytest

import modelkeep
from modelkeep.bootstrap import open_context
from modelkeep.config import Settings
from modelkeep.domain import attestation as attest_format
from modelkeep.domain.deployments import DesiredState
from modelkeep.errors import (
    AttestationInvalid,
    DeploymentMoved,
    DeploymentNotFound,
    InvalidInput,
    ModelkeepError,
    NothingToRollBack,
    PolicyNotMet,
    VersionArchived,
)
from modelkeep.services import deployments
from modelkeep.services.context import ServiceContext
from tests.conftest import FileMaker

pytestmark = pytest.mark.backends("sqlite", "postgresql", "memory")

POLICY = """format: 1
environments:
  prod: {requires_stage: production, canary_from: staging}
"""


@pytest.fixture
def fraud(mk: modelkeep.Client, files: FileMaker) -> list[str]:
    """fraud@1..3, each its own bytes; the digests by number (index 0 unused)."""
    mk.create_model("fraud")
    return [""] + [mk.push("fraud", [files.make()]).digest for _ in range(3)]


def roles(state: DesiredState) -> list[tuple[str, str, int]]:
    return [(b.ref, b.role, b.weight) for b in state.backends]


def unchanged(mk: modelkeep.Client, env: str, attempt: Callable[[], object]) -> ModelkeepError:
    """Run a refused ``attempt``; the desired state, history and audit log stay as they were."""
    before = (_state(mk, env), len(_history(mk, env)), len(mk.audit_log()))
    with pytest.raises(ModelkeepError) as refused:
        attempt()
    assert (_state(mk, env), len(_history(mk, env)), len(mk.audit_log())) == before
    return refused.value


def _state(mk: modelkeep.Client, env: str) -> DesiredState | None:
    try:
        return mk.deployment("fraud", env=env)
    except DeploymentNotFound:
        return None


def _history(mk: modelkeep.Client, env: str) -> list[object]:
    try:
        return list(mk.deployment_history("fraud", env=env))
    except DeploymentNotFound:
        return []


def test_a_plain_deploy_makes_the_version_stable_with_its_digest(
    mk: modelkeep.Client, fraud: list[str]
) -> None:
    change = mk.deploy("fraud@1", env="prod", reason="first")
    assert change.revision == 1 and change.action == "deploy" and change.previous is None
    state = mk.deployment("fraud", env="prod")
    assert state == change.state
    assert [b.to_dict() for b in state.backends] == [
        {"ref": "fraud@1", "digest": fraud[1], "role": "stable", "weight": 100}
    ]
    assert state.sticky is None and state.revision == 1
    assert mk.deployments(env="prod") == [state]
    assert mk.deployments(env="dev") == []


def test_canary_ab_shadow_then_promote_and_rollback(mk: modelkeep.Client, fraud: list[str]) -> None:
    mk.deploy("fraud@1", env="prod")
    canary = mk.deploy("fraud@2", env="prod", canary=20).state
    assert roles(canary) == [("fraud@1", "stable", 80), ("fraud@2", "canary", 20)]
    shadow = mk.deploy("fraud@3", env="prod", shadow=10).state  # beside the canary
    assert roles(shadow) == [
        ("fraud@1", "stable", 80),
        ("fraud@2", "canary", 20),
        ("fraud@3", "shadow", 10),
    ]
    back = mk.rollback_deployment("fraud", env="prod", reason="shadow is slow")
    assert back.action == "rollback" and back.revision == 4
    assert roles(back.state) == roles(canary)
    ab = mk.deploy("fraud@3", env="prod", ab=50, sticky="header:x-user").state
    assert roles(ab) == [("fraud@1", "stable", 50), ("fraud@3", "canary", 50)]
    assert ab.sticky == "header:x-user"
    promoted = mk.promote_deployment("fraud", env="prod")
    assert roles(promoted.state) == [("fraud@3", "stable", 100)]
    assert promoted.state.sticky is None
    # two rollbacks: each undoes one more change (the promote, then the A/B)
    assert roles(mk.rollback_deployment("fraud", env="prod").state) == roles(ab)
    assert roles(mk.rollback_deployment("fraud", env="prod").state) == roles(canary)
    history = mk.deployment_history("fraud", env="prod")
    assert [c.action for c in history] == [
        "deploy", "deploy", "deploy", "rollback", "deploy", "promote", "rollback", "rollback"
    ]  # fmt: skip
    assert [c.revision for c in history] == list(range(1, 9))
    assert all(c.previous == h.state for h, c in itertools.pairwise(history))
    assert history[3].reason == "shadow is slow"
    kinds = [e.action for e in mk.audit_log(model="fraud") if e.action.startswith("deployment.")]
    assert kinds == [f"deployment.{c.action}" for c in history]


def test_every_change_is_signed_and_its_envelope_kept_by_gc(
    mk: modelkeep.Client, fraud: list[str], registry: ServiceContext
) -> None:
    mk.deploy("fraud@1", env="prod")
    change = mk.deploy("fraud@2", env="prod", canary=10, reason="try")
    assert change.attestation is not None
    assert mk.deployment_history("fraud", env="prod")[-1].attestation == change.attestation
    event = [e for e in mk.audit_log(model="fraud") if e.action == "deployment.deploy"][-1]
    assert event.details["attestation"] == change.attestation
    key = bytes.fromhex(mk.audit_key().hex)
    envelope = registry.blobs.read_bytes(change.attestation)
    statement = json.loads(attest_format.decode_envelope(envelope).payload)
    attest_format.verify_envelope(attest_format.decode_envelope(envelope), key)
    assert statement["predicateType"] == attest_format.DEPLOYMENT_PREDICATE_TYPE
    assert statement["subject"] == [
        {"name": "fraud@1", "digest": {"sha256": fraud[1][7:]}},
        {"name": "fraud@2", "digest": {"sha256": fraud[2][7:]}},
    ]
    predicate = statement["predicate"]
    assert predicate["state"] == change.state.to_dict() and predicate["reason"] == "try"
    assert predicate["previous"]["revision"] == 1 and predicate["action"] == "deploy"
    mk.gc()  # the envelope is a gc root, as a promotion's is
    assert registry.blobs.has(change.attestation)
    tampered = envelope.replace(b'"sig":"', b'"sig":"A')
    with pytest.raises(AttestationInvalid):
        attest_format.verify_envelope(attest_format.decode_envelope(tampered), key)


def test_a_plain_deploy_removes_every_candidate(mk: modelkeep.Client, fraud: list[str]) -> None:
    mk.deploy("fraud@1", env="prod")
    mk.deploy("fraud@2", env="prod", canary=5)
    mk.deploy("fraud@3", env="prod", shadow=5)
    assert roles(mk.deploy("fraud@2", env="prod").state) == [("fraud@2", "stable", 100)]


def test_compare_and_set_refuses_a_stale_revision(mk: modelkeep.Client, fraud: list[str]) -> None:
    mk.deploy("fraud@1", env="prod", expect_revision=0)
    with pytest.raises(DeploymentMoved, match="at revision 1 now, not at 0"):
        mk.deploy("fraud@2", env="prod", expect_revision=0)
    mk.deploy("fraud@2", env="prod", canary=10, expect_revision=1)
    for stale in (
        lambda: mk.promote_deployment("fraud", env="prod", expect_revision=1),
        lambda: mk.rollback_deployment("fraud", env="prod", expect_revision=1),
    ):
        assert isinstance(unchanged(mk, "prod", stale), DeploymentMoved)
    assert mk.promote_deployment("fraud", env="prod", expect_revision=2).revision == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"canary": 101}, "not a weight"),
        ({"canary": -1}, "not a weight"),
        ({"shadow": 200}, "not a weight"),
        ({"canary": 10, "sticky": "header:x"}, "--sticky is for A/B tests only"),
        ({"ab": 10}, "A/B needs a sticky key"),
        ({"ab": 10, "sticky": "body:x"}, "is not a sticky key"),
        ({"ab": 10, "sticky": "header:x", "shadow": 5}, "cannot be given together"),
        ({"canary": 10, "shadow": 5}, "cannot be given together"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(
    mk: modelkeep.Client, fraud: list[str], kwargs: dict[str, object], message: str
) -> None:
    mk.deploy("fraud@1", env="prod")
    error = unchanged(mk, "prod", lambda: mk.deploy("fraud@2", env="prod", **kwargs))  # type: ignore[arg-type]
    assert isinstance(error, InvalidInput) and message in error.message


def test_candidates_need_a_stable_version_and_cannot_mix_ab_and_shadow(
    mk: modelkeep.Client, fraud: list[str]
) -> None:
    error = unchanged(mk, "prod", lambda: mk.deploy("fraud@2", env="prod", canary=10))
    assert "no stable version in prod" in error.message and "deploy one first" in error.hint
    mk.deploy("fraud@1", env="prod")
    same = unchanged(mk, "prod", lambda: mk.deploy("fraud@1", env="prod", canary=10))
    assert "already the stable version" in same.message
    mk.deploy("fraud@2", env="prod", ab=10, sticky="cookie:uid")
    error = unchanged(mk, "prod", lambda: mk.deploy("fraud@3", env="prod", shadow=10))
    assert "A/B test" in error.message
    mk.deploy("fraud@2", env="prod", canary=10)  # a plain canary ends the A/B
    mk.deploy("fraud@3", env="prod", shadow=10)
    error = unchanged(mk, "prod", lambda: mk.deploy("fraud@2", env="prod", ab=10, sticky="query:u"))
    assert "has a shadow" in error.message


def test_promote_and_rollback_say_when_there_is_nothing_to_do(
    mk: modelkeep.Client, fraud: list[str]
) -> None:
    with pytest.raises(DeploymentNotFound):
        mk.promote_deployment("fraud", env="prod")
    with pytest.raises(DeploymentNotFound):
        mk.deployment("fraud", env="prod")
    mk.deploy("fraud@1", env="prod")
    error = unchanged(mk, "prod", lambda: mk.promote_deployment("fraud", env="prod"))
    assert "no candidate" in error.message
    error = unchanged(mk, "prod", lambda: mk.rollback_deployment("fraud", env="prod"))
    assert isinstance(error, NothingToRollBack)
    bad_env = unchanged(mk, "prod", lambda: mk.deploy("fraud@1", env="Prod!"))
    assert "not an environment name" in bad_env.message


def test_an_archived_version_is_not_deployed(mk: modelkeep.Client, fraud: list[str]) -> None:
    mk.archive("fraud@2")
    assert isinstance(
        unchanged(mk, "prod", lambda: mk.deploy("fraud@2", env="prod")), VersionArchived
    )


def test_the_policy_names_the_stage_each_environment_needs(
    mk: modelkeep.Client, fraud: list[str], tmp_path: object
) -> None:
    mk.set_policy(POLICY)
    error = unchanged(mk, "prod", lambda: mk.deploy("fraud@1", env="prod"))
    assert isinstance(error, PolicyNotMet)
    assert "fraud@1 is not in production" in error.message
    assert "modelkeep promote fraud@1 --to production" in error.hint
    mk.deploy("fraud@1", env="dev")  # an environment the policy does not name: any version
    mk.promote("fraud@1", to="production")
    mk.deploy("fraud@1", env="prod")
    # a candidate comes from staging
    error = unchanged(mk, "prod", lambda: mk.deploy("fraud@2", env="prod", canary=10))
    assert "fraud@2 is not in staging" in error.message
    mk.promote("fraud@2", to="staging")
    mk.deploy("fraud@2", env="prod", canary=10)
    # promoting it to stable needs production
    error = unchanged(mk, "prod", lambda: mk.promote_deployment("fraud", env="prod"))
    assert "fraud@2 is not in production" in error.message
    mk.promote("fraud@2", to="production")
    assert roles(mk.promote_deployment("fraud", env="prod").state) == [("fraud@2", "stable", 100)]
    # rollback restores an allowed state without asking the stages again
    assert roles(mk.rollback_deployment("fraud", env="prod").state)[0] == ("fraud@1", "stable", 90)


def test_the_policy_refuses_unknown_environment_keys(mk: modelkeep.Client) -> None:
    with pytest.raises(ModelkeepError, match="unknown key 'requires'"):
        mk.set_policy("format: 1\nenvironments:\n  prod: {requires: production}\n")
    with pytest.raises(ModelkeepError, match="unknown stage 'prod'"):
        mk.set_policy("format: 1\nenvironments:\n  prod: {requires_stage: prod}\n")


@pytest.mark.backends("postgresql", "sqlite")
def test_two_releasers_at_once_one_wins_the_other_is_told(
    settings: Settings, files: FileMaker
) -> None:
    with modelkeep.connect(settings=settings) as mk:
        mk.create_model("fraud")
        for _ in range(3):
            mk.push("fraud", [files.make()])
        mk.deploy("fraud@1", env="prod")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def release(ref: str) -> None:
        ctx = open_context(settings)
        try:
            barrier.wait()
            deployments.deploy(ctx, ref, "prod", canary=10, expect_revision=1)
            outcomes.append("done")
        except DeploymentMoved:
            outcomes.append("moved")
        finally:
            ctx.close()

    threads = [threading.Thread(target=release, args=(r,)) for r in ("fraud@2", "fraud@3")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes) == ["done", "moved"]
    with modelkeep.connect(settings=settings) as mk:
        history = mk.deployment_history("fraud", env="prod")
        assert [c.revision for c in history] == [1, 2]
        assert mk.audit_verify().ok
