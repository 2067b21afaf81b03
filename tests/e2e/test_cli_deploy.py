"""``modelkeep deploy NAME@REF --env ENV [...]`` and ``deploy status|history|promote|rollback``
through the CLI, on SQLite and PostgreSQL: JSON and plain output, refusals that change
nothing, and the policy's environments."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import CliRunnerInProcess
from tests.e2e.conftest import Pusher
from tests.e2e.support import ok, ok_json, refused, store_unchanged


@pytest.fixture
def fraud(cli: CliRunnerInProcess, push: Pusher) -> list[str]:
    """fraud@1..3; their digests by number (index 0 unused)."""
    ok(cli("models", "create", "fraud"))
    return [""] + [str(push("fraud", f"w{n}".encode())["digest"]) for n in (1, 2, 3)]


def backends(document: dict[str, object]) -> list[tuple[object, ...]]:
    state = document.get("state", document)
    assert isinstance(state, dict)
    return [(b["ref"], b["role"], b["weight"]) for b in state["backends"]]


def test_a_rollout_through_the_cli(cli: CliRunnerInProcess, fraud: list[str]) -> None:
    first = ok_json(cli, "deploy", "fraud@1", "--env", "prod", "--reason", "first")
    assert first["revision"] == 1 and first["previous"] is None and first["reason"] == "first"
    assert first["state"]["backends"][0]["digest"] == fraud[1]
    canary = ok_json(cli, "deploy", "fraud@2", "--env", "prod", "--canary", "20")
    assert backends(canary) == [("fraud@1", "stable", 80), ("fraud@2", "canary", 20)]
    ab = ok_json(
        cli, "deploy", "fraud@3", "--env", "prod", "--ab", "50", "--sticky", "header:x-user"
    )
    assert ab["state"]["sticky"] == "header:x-user"
    status = ok_json(cli, "deploy", "status", "fraud", "--env", "prod")
    assert status == ab["state"]
    plain = ok(cli("deploy", "status", "fraud", "--env", "prod")).out
    assert "revision 3" in plain and "fraud@3" in plain and "header:x-user" in plain
    promoted = ok_json(cli, "deploy", "promote", "fraud", "--env", "prod", "--reason", "won")
    assert backends(promoted) == [("fraud@3", "stable", 100)]
    back = ok_json(cli, "deploy", "rollback", "fraud", "--env", "prod", "--expect-revision", "4")
    assert back["action"] == "rollback" and back["state"]["backends"] == ab["state"]["backends"]
    history = ok_json(cli, "deploy", "history", "fraud", "--env", "prod")
    assert [c["action"] for c in history] == ["deploy", "deploy", "deploy", "promote", "rollback"]
    listed = ok(cli("deploy", "history", "fraud", "--env", "prod")).out
    assert "rollback" in listed and "won" in listed
    ok(cli("deploy", "rollback", "fraud", "--env", "prod"))  # the A/B undone too
    line = ok(cli("deploy", "fraud@3", "--env", "prod", "--shadow", "10")).out
    assert line.startswith("fraud in prod (revision 7): ") and "fraud@3 shadow copy of 10%" in line


@pytest.mark.parametrize(
    ("args", "code", "exit_code", "says"),
    [
        (("deploy", "fraud@2", "--env", "prod", "--canary", "101"), "usage", 2, "0<=x<=100"),
        (("deploy", "fraud@2", "--env", "prod", "--ab", "10"), "invalid_input", 1, "sticky"),
        (
            ("deploy", "fraud@2", "--env", "prod", "--canary", "5", "--sticky", "header:u"),
            "invalid_input",
            1,
            "A/B tests only",
        ),
        (
            (
                "deploy",
                "fraud@2",
                "--env",
                "prod",
                "--ab",
                "5",
                "--sticky",
                "header:u",
                "--shadow",
                "5",
            ),
            "invalid_input",
            1,
            "cannot be given together",
        ),
        (
            ("deploy", "fraud@2", "--env", "prod", "--expect-revision", "0"),
            "deployment_moved",
            1,
            "revision 1",
        ),
        (("deploy", "fraud@9", "--env", "prod"), "version_not_found", 1, "fraud@9"),
        (("deploy", "fraud@2"), "usage", 2, "--env"),
        (("deploy", "fraud", "--env", "prod"), "usage", 2, "neither a version"),
        (("deploy", "promote", "fraud", "--env", "prod"), "invalid_input", 1, "no candidate"),
        (("deploy", "rollback", "fraud", "--env", "prod"), "nothing_to_roll_back", 1, "earlier"),
        (("deploy", "status", "fraud", "--env", "dev"), "deployment_not_found", 1, "not deployed"),
    ],
)
def test_refusals_say_why_and_change_nothing(
    cli: CliRunnerInProcess,
    fraud: list[str],
    args: tuple[str, ...],
    code: str,
    exit_code: int,
    says: str,
) -> None:
    ok(cli("deploy", "fraud@1", "--env", "prod"))
    before = ok_json(cli, "deploy", "history", "fraud", "--env", "prod")
    with store_unchanged(cli):
        line = refused(cli, *args, code=code, exit_code=exit_code)
    assert says in line
    assert ok_json(cli, "deploy", "history", "fraud", "--env", "prod") == before


def test_the_policy_decides_which_stage_each_environment_takes(
    cli: CliRunnerInProcess, fraud: list[str], tmp_path: Path
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "format: 1\nenvironments:\n  prod: {requires_stage: production, canary_from: staging}\n"
    )
    ok(cli("policy", "set", str(policy)))
    with store_unchanged(cli):
        line = refused(cli, "deploy", "fraud@1", "--env", "prod", code="policy_not_met")
    assert "fraud@1 is not in production" in line and "modelkeep promote fraud@1" in line
    ok(cli("deploy", "fraud@1", "--env", "staging"))  # not named: any version
    ok(cli("promote", "fraud@1", "--to", "production"))
    ok(cli("deploy", "fraud@1", "--env", "prod"))
    ok(cli("promote", "fraud@2", "--to", "staging"))
    ok(cli("deploy", "fraud@2", "--env", "prod", "--canary", "10"))
    shown = ok_json(cli, "policy", "show")
    assert "environments" in str(shown)


def test_deploy_help_explains_both_forms(cli: CliRunnerInProcess) -> None:
    text = ok(cli("deploy", "--help")).out
    assert "deploy NAME@REF --env ENV" in text and "COMMAND NAME --env ENV" in text
    for command in ("NAME@REF", "status", "history", "promote", "rollback"):
        assert command in text
    assert "--canary" in ok(cli("deploy", "NAME@REF", "--help")).out
