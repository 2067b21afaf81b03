"""The first hour with the CLI (issue 12): what a new user meets before reading the docs.

A read never makes a store: on an embedded store that does not exist every read-only
command says ``no store at X`` and leaves nothing behind; a write makes the store and
says so."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click
import pytest

from modelkeep.entrypoints.cli import cli as root_command
from modelkeep.entrypoints.cli.context import READ_ONLY_COMMANDS
from modelkeep.entrypoints.cli.help import TASKS, Task
from tests.conftest import CliRunnerInProcess, FileMaker
from tests.e2e.conftest import Pusher
from tests.e2e.support import assert_error_line, ok, ok_json

READ_ARGUMENTS: dict[str, tuple[str, ...]] = {
    "models list": (),
    "models show": ("m",),
    "versions": ("m",),
    "show": ("m@1",),
    "pull": ("m@1", "out"),
    "diff": ("m@1", "m@2"),
    "resolve": ("m@1",),
    "alias history": ("m",),
    "verify": (),
    "storage": (),
    "retention show": ("m",),
    "audit log": (),
    "audit verify": (),
    "audit key": (),
    "audit head": (),
    "audit checkpoints": (),
    "users list": (),
    "tokens list": (),
    "runs show": ("r1",),
    "runs list": (),
    "runs compare": ("r1", "r2"),
    "runs reproduce": ("r1",),
    "datasets show": ("d@1",),
    "datasets list": (),
    "datasets versions": ("d",),
    "datasets pull": ("d@1", "out"),
    "lineage": ("m@1",),
    "policy show": (),
    "policy history": (),
    "policy test": ("m@1", "--to", "staging"),
    "checks": ("m@1",),
    "gate": ("m@1", "--to", "staging"),
    "attest list": ("m@1",),
    "attest export": ("m@1", "out.json"),
    "attest verify": ("m@1",),
    "card": ("m@1",),
    "report governance": (),
    "deploy status": ("m", "--env", "prod"),
    "deploy history": ("m", "--env", "prod"),
    "deploy export": ("m", "--env", "prod", "--kserve", "--oci-repo", "r.example.com/m"),
    "bundle build": ("m@1", "-o", "b.tgz"),
    "bundle verify": ("b.tgz", "--store-key"),
    "bundle export-oci": ("m@1", "oci"),
    "sign": ("m@1", "-o", "m.sig"),
}
"""Arguments that parse for each read-only command (what they name need not exist)."""


def leaf_commands(command: click.Command, path: tuple[str, ...] = ()) -> set[str]:
    if isinstance(command, click.Group):
        return {
            leaf
            for name, sub in command.commands.items()
            for leaf in leaf_commands(sub, (*path, name))
        }
    return {" ".join(path)}


@pytest.fixture
def nowhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with no store, and no store configured."""
    for name in ("MODELKEEP_URI", "MODELKEEP_DATABASE_URL", "MODELKEEP_BLOB_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_every_read_only_command_exists_and_is_exercised() -> None:
    assert leaf_commands(root_command) >= READ_ONLY_COMMANDS
    assert set(READ_ARGUMENTS) == READ_ONLY_COMMANDS


@pytest.mark.parametrize("command", sorted(READ_ARGUMENTS))
def test_a_read_never_makes_a_store(
    command: str, nowhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = CliRunnerInProcess(capsys)
    result = cli(*command.split(), *READ_ARGUMENTS[command])
    line = assert_error_line(result, "store_not_found")
    assert f"no store at {nowhere / '.modelkeep'}" in line
    assert list(nowhere.iterdir()) == []


def test_a_mistyped_uri_makes_no_directories(
    nowhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = CliRunnerInProcess(capsys)
    deep = nowhere / "nonexistent" / "deep" / "store"
    result = cli("--json", "--uri", str(deep), "models", "list")
    assert result.code == 1
    assert json.loads(result.out)["error"]["code"] == "store_not_found"
    assert not (nowhere / "nonexistent").exists()


def test_a_write_makes_the_store_and_says_so(
    nowhere: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = CliRunnerInProcess(capsys)
    created = cli("models", "create", "fraud")
    assert (created.code, created.out) == (0, "created model fraud\n"), created
    assert created.err == "made a new store at .modelkeep\n"
    again = cli("models", "create", "other")
    assert (again.code, again.err) == (0, ""), again  # said once, when it was made
    listed = cli("models", "list")
    assert listed.code == 0 and "fraud" in listed.out


def test_a_file_is_not_a_store(nowhere: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cli = CliRunnerInProcess(capsys)
    (nowhere / "passwd").write_text("root:x:0:0\n")
    line = assert_error_line(
        cli("--uri", str(nowhere / "passwd"), "models", "create", "m"), "unsupported_uri"
    )
    assert "is a file, not a store directory" in line
    assert "free space" not in line


# did you mean, and hints that point the right way ------------------------------------------


def test_misspelt_names_get_the_closest_one(
    cli: CliRunnerInProcess, push: Pusher, files: FileMaker
) -> None:
    ok(cli("models", "create", "fraud"))
    push("fraud", b"weights")
    ok(cli("promote", "fraud@1", "--to", "staging"))
    model = assert_error_line(cli("show", "frau@1"), "model_not_found")
    assert "did you mean 'fraud'?" in model
    assert "models create" not in model  # a typo is not a reason to make a model
    alias = assert_error_line(cli("show", "fraud@lates"), "alias_not_found")
    assert "did you mean 'latest'?" in alias
    out = str(files.root / "out")
    stage = assert_error_line(cli("pull", "fraud@stagin", out), "alias_not_found")
    assert "did you mean 'staging'?" in stage
    empty = assert_error_line(cli("show", "fraud@production"), "alias_not_found")
    assert "nothing was promoted to production of fraud yet" in empty
    assert "did you mean" not in empty and "modelkeep promote fraud@N --to production" in empty
    choice = assert_error_line(cli("promote", "fraud@1", "--to", "prod"), "usage", 2)
    assert "did you mean 'production'?" in choice
    command = assert_error_line(cli("pus", "fraud", "x"), "usage", 2)
    assert "Did you mean 'push'?" in command


def test_pushing_to_a_model_that_does_not_exist_says_how_to_create_it(
    cli: CliRunnerInProcess, files: FileMaker
) -> None:
    path = files.make("model.bin", b"weights")
    line = assert_error_line(cli("push", "churn", str(path)), "model_not_found")
    assert "create it with 'modelkeep models create churn'" in line


def test_alias_name_hints_say_what_is_wrong(cli: CliRunnerInProcess, push: Pusher) -> None:
    ok(cli("models", "create", "fraud"))
    push("fraud", b"weights")
    latest = assert_error_line(cli("alias", "set", "fraud@1", "latest"), "invalid_name")
    assert "reserved" in latest and "lowercase" not in latest
    upper = assert_error_line(cli("alias", "set", "fraud@1", "Champion"), "invalid_name")
    assert "write 'champion'" in upper


def test_one_idea_one_option_both_spellings_work(cli: CliRunnerInProcess, push: Pusher) -> None:
    ok(cli("models", "create", "fraud"))
    push("fraud", b"v1")
    push("fraud", b"v2")
    ok(cli("promote", "fraud@1", "--stage", "staging", "--comment", "first"))
    ok(cli("promote", "fraud@2", "--to", "staging", "--reason", "second"))
    ok(cli("rollback", "fraud", "--to", "staging", "--comment", "back"))
    history = ok_json(cli, "alias", "history", "fraud", "staging")
    assert [event["reason"] for event in history] == ["first", "second", "back"]
    assert ok_json(cli, "resolve", "fraud@staging")["number"] == 1
    help_text = ok(cli("promote", "--help")).out
    assert "--to [staging|production]" in help_text and "--stage" not in help_text


# --help ---------------------------------------------------------------------------------------


def test_help_groups_every_command_under_one_task(capsys: pytest.CaptureFixture[str]) -> None:
    grouped = [name for task in TASKS for name in task.commands]
    assert len(grouped) == len(set(grouped))
    assert set(root_command.commands) <= set(grouped)
    text = ok(CliRunnerInProcess(capsys)("--help")).out
    assert "Other commands" not in text
    for task in TASKS:
        assert f"{task.title}:" in text
        assert f"e.g. {task.example}" in text


@pytest.mark.parametrize("task", TASKS, ids=lambda task: task.title)
def test_each_help_example_is_a_command_line_that_parses(task: Task) -> None:
    words = shlex.split(task.example)
    assert words[0] == "modelkeep"
    command: click.Command = root_command
    args = words[1:]
    while isinstance(command, click.Group):
        found = command.get_command(click.Context(command), args[0])
        assert found is not None, task.example
        command, args = found, args[1:]
    command.make_context(command.name or "", list(args))  # raises on a bad option


def test_server_help_says_what_it_serves_and_how_to_get_a_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = " ".join(ok(CliRunnerInProcess(capsys)("server", "--help")).out.split())
    assert "MODELKEEP_DATABASE_URL" in text and "./.modelkeep" in text
    assert "users create alice --role admin" in text
