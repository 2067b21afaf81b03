"""Evidence that cannot be self-reported, through the server on SQLite and PostgreSQL: every
check result names its producer, a policy rule can insist on a runner's ``modelkeep check``
over a dataset, non-finite metric values are refused, and attestations show provenance.

The attack of issue 12: a global releaser posted ``{"accuracy": 1.0}`` with no dataset
through the API, an approver approved, and the releaser promoted to production."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from modelkeep.client.client import Client
from modelkeep.client.http import HttpBackend
from modelkeep.config import Settings
from modelkeep.domain.governance import NewCheckResult
from modelkeep.errors import (
    Forbidden,
    InvalidInput,
    InvalidMetadata,
    ModelkeepError,
    PolicyNotMet,
)
from tests.conftest import FileMaker, served_app

PEOPLE = {  # name -> global role
    "carol": "contributor",  # pushes fraud@1
    "alice": "approver",
    "bob": "releaser",
    "ci": "runner",
    "nightly": "runner",
}
POLICY = """\
format: 1
stages:
  production:
    checks:
      - {rule: accuracy >= 0.8, dataset: tx, runner: ci}
    approvals: {count: 1, roles: [approver]}
"""
CHECKS = "/api/v1/models/fraud/versions/1/checks"
ATTACK = {"suite": "evaluation", "kind": "evaluation", "metrics": {"accuracy": 1.0}, "passed": True}


@dataclass
class Registry:
    http: Any  # starlette's TestClient, shared; each call names its token
    tokens: dict[str, str]
    clients: dict[str, Client]

    def post(self, who: str, path: str, body: Any) -> Any:
        content = body if isinstance(body, str) else json.dumps(body)
        return self.http.post(
            path,
            content=content,
            headers={
                "Authorization": f"Bearer {self.tokens[who]}",
                "Content-Type": "application/json",
            },
        )


@pytest.fixture
def registry(settings: Settings, tmp_path: Path) -> Iterator[Registry]:
    """fraud@1 (pushed by carol) and dataset tx@1 under the runner policy above."""
    with served_app(settings) as (http, admin_token):

        def client(token: str) -> Client:
            own = http.__class__(http.app, base_url="http://testserver")
            return Client(HttpBackend("http://testserver", token, http=own), settings)

        tokens = {"admin": admin_token}
        admin = client(admin_token)
        for name, role in PEOPLE.items():
            tokens[name] = admin.create_user(name, role=role)[1].secret
        admin.set_policy(POLICY)
        admin.create_model("fraud")
        data = tmp_path / "tx.csv"
        data.write_text("x,label\n1,0\n")
        admin.push_dataset("tx", [data])
        model = tmp_path / "m.bin"
        model.write_bytes(b"carol's model")
        clients = {name: client(token) for name, token in tokens.items()}
        clients["carol"].push("fraud", [model], commit="abc")
        yield Registry(http, tokens, clients)


def _promote(registry: Registry) -> Any:
    body = {"version": "1", "to": "production", "reason": "release"}
    return registry.post("bob", "/api/v1/models/fraud/promote", body)


def test_the_releasers_self_reported_result_does_not_satisfy_a_runner_rule(
    registry: Registry,
) -> None:
    posted = registry.post("bob", CHECKS, ATTACK)
    assert posted.status_code == 201, posted.text
    assert posted.json()["producer"] == {"user": "bob", "runner": False, "source": "client"}
    registry.clients["alice"].approve("fraud@1", to="production", comment="looks fine")

    refused = _promote(registry)

    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "policy_not_met"
    message = error["message"]
    assert "accuracy >= 0.8 on tx by runner ci" in message
    assert "bob posted it as a client (not by 'modelkeep check')" in message
    assert "bob is not a runner" in message
    assert "it names no dataset" in message
    with pytest.raises(ModelkeepError, match="production"):
        registry.clients["admin"].resolve("fraud@production")


@pytest.mark.parametrize(
    ("who", "body", "why"),
    [
        pytest.param(
            "bob",
            {**ATTACK, "dataset": "tx@1", "source": "modelkeep check"},
            "bob is not a runner",
            id="a-releaser-claiming-modelkeep-check",
        ),
        pytest.param(
            "nightly",
            {**ATTACK, "dataset": "tx@1", "source": "modelkeep check"},
            "it is by runner nightly, not runner ci",
            id="another-runner",
        ),
        pytest.param(
            "ci",
            {**ATTACK, "dataset": "tx@1"},
            "ci posted it as a client (not by 'modelkeep check')",
            id="the-runner-posting-raw",
        ),
        pytest.param(
            "ci",
            {**ATTACK, "source": "modelkeep check"},
            "it names no dataset",
            id="the-runner-without-the-dataset",
        ),
    ],
)
def test_evidence_from_anyone_but_the_named_runner_over_the_dataset_does_not_count(
    registry: Registry, who: str, body: dict[str, Any], why: str
) -> None:
    assert registry.post(who, CHECKS, body).status_code == 201
    registry.clients["alice"].approve("fraud@1", to="production")

    gate = registry.clients["bob"].gate("fraud@1", to="production")
    with pytest.raises(PolicyNotMet) as refused:
        registry.clients["bob"].promote("fraud@1", to="production")

    [rule] = [r for r in gate.evaluation.rules if r.kind == "check"]
    assert rule.passed is False and why in rule.detail
    assert why in str(refused.value)


def test_a_runner_rule_without_a_dataset_still_needs_one(
    registry: Registry,
) -> None:
    policy = POLICY.replace("dataset: tx, ", "")
    registry.clients["admin"].set_policy(policy)
    registry.post("ci", CHECKS, {**ATTACK, "source": "modelkeep check"})
    with pytest.raises(PolicyNotMet, match="it names no dataset"):
        registry.clients["bob"].promote("fraud@1", to="production")


def test_the_runners_result_satisfies_the_rule_and_the_attestation_shows_provenance(
    registry: Registry,
) -> None:
    registry.post("bob", CHECKS, ATTACK)  # newer or older, a self-reported result is ignored
    runner = {**ATTACK, "metrics": {"accuracy": 0.91}, "dataset": "tx@1"}
    posted = registry.post("ci", CHECKS, {**runner, "source": "modelkeep check"})
    assert posted.json()["producer"] == {"user": "ci", "runner": True, "source": "modelkeep check"}
    registry.post("bob", CHECKS, ATTACK)
    registry.clients["alice"].approve("fraud@1", to="production")

    done = _promote(registry)

    assert done.status_code == 200, done.text
    [rule] = [r for r in done.json()["evaluation"]["rules"] if r["kind"] == "check"]
    assert rule["passed"] is True
    assert "0.91" in rule["detail"] and "by runner ci via modelkeep check" in rule["detail"]
    verified = registry.clients["bob"].verify_attestation("fraud@1", stage="production")
    checks = {c["id"]: c for c in verified.statement["predicate"]["checks"]}
    assert [c["producer"] for c in checks.values()] == [
        {"user": "bob", "runner": False, "source": "client"},
        {"user": "ci", "runner": True, "source": "modelkeep check"},
        {"user": "bob", "runner": False, "source": "client"},
    ]
    ci = checks[posted.json()["id"]]
    assert ci["dataset"] == "tx@1" and ci["dataset_digest"].startswith("sha256:")
    assert [c["dataset"] for c in checks.values()] == [None, "tx@1", None]


def test_a_runner_disabled_or_stripped_of_the_role_no_longer_vouches_for_its_results(
    registry: Registry,
) -> None:
    admin, bob = registry.clients["admin"], registry.clients["bob"]
    runner = {**ATTACK, "metrics": {"accuracy": 0.91}, "dataset": "tx@1"}
    registry.post("ci", CHECKS, {**runner, "source": "modelkeep check"})
    registry.clients["alice"].approve("fraud@1", to="production")
    assert bob.gate("fraud@1", to="production").passed

    admin.disable_user("ci")  # say its token leaked
    gate = bob.gate("fraud@1", to="production")
    assert not gate.passed
    assert "ci is no longer a runner" in str(gate.evaluation.explain())

    admin.enable_user("ci")
    assert bob.gate("fraud@1", to="production").passed
    admin.revoke_grant("ci", role="runner")
    with pytest.raises(PolicyNotMet, match="ci is no longer a runner"):
        bob.promote("fraud@1", to="production")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", "1e999", '"NaN"', '"inf"'])
def test_non_finite_metric_values_are_refused_at_the_check_endpoint(
    registry: Registry, value: str
) -> None:
    body = (
        '{"suite": "evaluation", "kind": "evaluation", "passed": true, '
        f'"dataset": "tx@1", "metrics": {{"accuracy": {value}}}}}'
    )
    refused = registry.post("ci", CHECKS, body)

    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_input"
    assert "accuracy" in error["message"] and "finite" in error["message"]
    assert registry.clients["admin"].checks("fraud@1") == []


def test_a_null_metric_is_kept_and_fails_the_rule(registry: Registry) -> None:
    body = {**ATTACK, "metrics": {"accuracy": None}, "dataset": "tx@1", "source": "modelkeep check"}
    assert registry.post("ci", CHECKS, body).status_code == 201
    gate = registry.clients["bob"].gate("fraud@1", to="production")
    [rule] = [r for r in gate.evaluation.rules if r.kind == "check"]
    assert rule.passed is False and "not a number" in rule.detail


def test_a_runner_is_a_service_account_with_no_other_role(registry: Registry) -> None:
    admin, ci = registry.clients["admin"], registry.clients["ci"]
    with pytest.raises(InvalidInput, match="runner holds no other role"):
        admin.grant("ci", role="releaser")
    with pytest.raises(InvalidInput, match="runner holds no other role"):
        admin.grant("bob", role="runner")
    assert admin.grant("ci", role="runner", model="fraud").name == "ci"  # runner grants add up
    with pytest.raises(Forbidden):
        ci.approve("fraud@1", to="production")
    with pytest.raises(Forbidden):
        ci.promote("fraud@1", to="staging")
    assert ci.show("fraud@1").number == 1  # a runner reads what it checks


def test_a_runner_on_one_model_is_no_runner_on_another(registry: Registry, tmp_path: Path) -> None:
    admin = registry.clients["admin"]
    _, issued = admin.create_user("fraud-ci", role="runner", model="fraud")
    registry.tokens["fraud-ci"] = issued.secret
    admin.create_model("churn")
    model = tmp_path / "churn.bin"
    model.write_bytes(b"churn")
    admin.push("churn", [model])
    posted = registry.post("fraud-ci", CHECKS, {**ATTACK, "source": "modelkeep check"})
    assert posted.json()["producer"]["runner"] is True
    elsewhere = registry.post("fraud-ci", CHECKS.replace("fraud", "churn"), ATTACK)
    assert elsewhere.status_code == 403  # not even a recorder of checks there


def test_record_check_refuses_infinity_in_process_and_over_http(
    mk: Client, files: FileMaker
) -> None:
    mk.create_model("fraud")
    mk.push("fraud", [files.make()])
    for value in (float("inf"), float("-inf"), float("nan")):
        result = NewCheckResult("evaluation", "evaluation", {"auc": value}, True)
        with pytest.raises(InvalidInput, match="not a finite number"):
            mk.record_check("fraud@1", dataset=None, result=result)
    recorded = mk.record_check(
        "fraud@1", dataset=None, result=NewCheckResult("e", "evaluation", {"auc": 0.5}, True)
    )
    assert recorded.producer is not None and recorded.producer.source == "client"
    assert mk.checks("fraud@1") == [recorded]


def test_version_metrics_must_be_finite_and_a_runs_non_finite_ones_stay_with_the_run(
    mk: Client, files: FileMaker
) -> None:
    mk.create_model("fraud")
    for value in (float("inf"), float("nan")):
        with pytest.raises(InvalidMetadata, match="finite number"):
            mk.push("fraud", [files.make()], metrics={"auc": value})
    with mk.start_run("fraud") as run:
        run.log_metric("loss", float("nan"))
        run.log_metric("auc", 0.9)
        version = run.push_model("fraud", [files.make()])
    assert mk.run(run.id).metrics["loss"] != mk.run(run.id).metrics["loss"]  # NaN, kept
    assert "loss" not in mk.show(version.ref).metadata.metrics
