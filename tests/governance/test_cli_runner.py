"""Evidence from a check runner, through the CLI against a live server, on SQLite and
PostgreSQL: ``modelkeep check`` run as the runner identity satisfies a policy that names
it; the same command run by the releaser does not, and the refusal says why; the
attestation shows who produced each result. And a command check that prints a
non-finite number records null, which fails the rule that needs it."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import modelkeep
from modelkeep.config import Settings
from tests.conftest import CliResult, CliRunnerInProcess, live_server
from tests.e2e.support import assert_error_line, ok, ok_json

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = {"carol": "contributor", "alice": "approver", "bob": "releaser", "ci": "runner"}
POLICY = """\
format: 1
stages:
  production:
    checks:
      - {rule: accuracy >= 0.8, dataset: tx, runner: ci}
    approvals: {count: 1, roles: [approver]}
"""


@pytest.fixture(scope="module")
def training(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/ci/train.py run once (deterministic): model.skops and data.csv."""
    build = tmp_path_factory.mktemp("training")
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "ci" / "train.py"), "--out", str(build)],
        check=True,
        capture_output=True,
    )
    return build


def test_modelkeep_check_as_the_runner_is_evidence_and_as_the_releaser_is_not(
    cli: CliRunnerInProcess,
    settings: Settings,
    training: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    build = shutil.copytree(training, tmp_path / "build")
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    with live_server(settings) as (url, admin_token):
        with modelkeep.connect(url, token=admin_token) as admin:
            tokens = {n: admin.create_user(n, role=r)[1].secret for n, r in PEOPLE.items()}
        tokens["admin"] = admin_token
        monkeypatch.setenv("MODELKEEP_URI", url)
        monkeypatch.delenv("MODELKEEP_DATABASE_URL")

        def as_(who: str) -> Callable[..., CliResult]:
            def run(*args: str) -> CliResult:
                monkeypatch.setenv("MODELKEEP_TOKEN", tokens[who])
                return cli(*args)

            return run

        ok(as_("admin")("policy", "set", str(policy)))
        ok(as_("admin")("models", "create", "fraud"))
        ok(as_("admin")("datasets", "push", "tx", str(build / "data.csv")))
        ok(as_("carol")("push", "fraud", str(build / "model.skops"), "--commit", "abc"))
        check = ("check", "fraud@1", "--dataset", "tx@1", "--target", "label")

        # the releaser runs the real suite, with the real dataset: still self-reported
        [by_bob, _] = ok_json(as_("bob"), *check)
        assert by_bob["producer"] == {"user": "bob", "runner": False, "source": "modelkeep check"}
        ok(as_("alice")("approve", "fraud@1", "--to", "production", "--comment", "ok"))
        line = assert_error_line(
            as_("bob")("promote", "fraud@1", "--to", "production"), "policy_not_met"
        )
        assert "accuracy >= 0.8 on tx by runner ci" in line and "bob is not a runner" in line

        [by_ci, _] = ok_json(as_("ci"), *check)
        assert by_ci["producer"] == {"user": "ci", "runner": True, "source": "modelkeep check"}
        listing = ok(as_("alice")("checks", "fraud@1")).out
        assert "runner ci via modelkeep check" in listing
        assert "bob (not a runner) via modelkeep check" in listing
        promoted = ok_json(as_("bob"), "promote", "fraud@1", "--to", "production")
        [rule] = [r for r in promoted["evaluation"]["rules"] if r["kind"] == "check"]
        assert rule["passed"] is True and f"check #{by_ci['id']}" in rule["detail"]

        card = ok(as_("bob")("card", "fraud@1")).out
        assert "runner ci via modelkeep check" in card
        assert "bob (not a runner) via modelkeep check" in card
        ok(as_("bob")("attest", "export", "fraud@1", str(tmp_path / "bundle")))
        (tmp_path / "store.pem").write_text(ok(as_("admin")("audit", "key")).out)
        ok(
            as_("bob")(
                "attest",
                "verify",
                "--bundle",
                str(tmp_path / "bundle"),
                "--public-key",
                str(tmp_path / "store.pem"),
            )
        )
    envelope = json.loads((tmp_path / "bundle" / "attestation.dsse.json").read_text())
    predicate = json.loads(base64.b64decode(envelope["payload"]))["predicate"]
    provenance = {c["id"]: (c["producer"], c["dataset"]) for c in predicate["checks"]}
    assert provenance[by_bob["id"]] == (by_bob["producer"], "tx@1")
    assert provenance[by_ci["id"]] == (by_ci["producer"], "tx@1")


def test_a_command_check_printing_infinity_records_null_which_fails_the_rule(
    cli: CliRunnerInProcess, tmp_path: Path
) -> None:
    (tmp_path / "score.py").write_text("print('{\"score\": Infinity}')\n")
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "checks:\n  - kind: command\n    name: score\n"
        f"    run: [{json.dumps(sys.executable)}, score.py]\n"
    )
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "format: 1\nmetrics: [score]\nstages:\n  production:\n    checks: ['score >= 0.5']\n"
    )
    data = tmp_path / "d.csv"
    data.write_text("x,label\n1,0\n")
    model = tmp_path / "m.bin"
    model.write_bytes(b"model")
    ok(cli("policy", "set", str(policy)))
    ok(cli("models", "create", "fraud"))
    ok(cli("datasets", "push", "tx", str(data)))
    ok(cli("push", "fraud", str(model)))

    [result] = ok_json(
        cli, "check", "fraud@1", "--dataset", "tx@1", "--target", "label", "--suite", str(suite)
    )
    gate = cli("gate", "fraud@1", "--to", "production", "--json")

    assert result["metrics"] == {"score": None}
    assert gate.code == 1
    [rule] = json.loads(gate.out)["rules"]
    assert rule["passed"] is False and "not a number" in rule["detail"]


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e999"])
def test_push_refuses_a_non_finite_metric(
    cli: CliRunnerInProcess, tmp_path: Path, value: str
) -> None:
    model = tmp_path / "m.bin"
    model.write_bytes(b"model")
    ok(cli("models", "create", "fraud"))
    line = assert_error_line(
        cli("push", "fraud", str(model), "--metric", f"auc={value}"), "invalid_metadata"
    )
    assert "auc" in line and "finite number" in line
    assert ok_json(cli, "versions", "fraud") == []
