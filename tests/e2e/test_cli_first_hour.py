"""The first hour with the CLI (issue 12): what a new user meets before reading the docs.

A read never makes a store: on an embedded store that does not exist every read-only
command says ``no store at X`` and leaves nothing behind; a write makes the store and
says so."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from modelkeep.entrypoints.cli import cli as root_command
from modelkeep.entrypoints.cli.context import READ_ONLY_COMMANDS
from tests.conftest import CliRunnerInProcess
from tests.e2e.support import assert_error_line

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
    assert READ_ONLY_COMMANDS <= leaf_commands(root_command)
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
