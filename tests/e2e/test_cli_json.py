"""``--json``: every command prints exactly one JSON document with the contract's keys,
whether ``--json`` comes before the command or after it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.conftest import CliResult, CliRunnerInProcess, FileMaker
from tests.e2e.conftest import Pusher
from tests.e2e.support import (
    RESOLVE_KEYS,
    assert_version_document,
    json_lines,
    ok,
    one_document,
)


def both_positions(cli: CliRunnerInProcess, *args: str) -> Any:
    """Run a read-only command with ``--json`` first and last; both print the same one doc."""
    before, after = ok(cli("--json", *args)), ok(cli(*args, "--json"))
    document = one_document(before)
    assert one_document(after) == document, args
    return document


def both_positions_lines(cli: CliRunnerInProcess, *args: str) -> list[Any]:
    """``audit log`` prints JSON Lines, one event per line, the one exception."""
    before, after = ok(cli("--json", *args)), ok(cli(*args, "--json"))
    assert before.out == after.out, args
    return json_lines(before)


def json_ok(result: CliResult) -> Any:
    return one_document(ok(result))


def test_read_commands_print_one_document_in_either_position(
    cli: CliRunnerInProcess, model: str, push: Pusher
) -> None:
    push(model, b"one", "--version", "1.0.0", "--metric", "auc=0.8")
    push(model, b"two", "--metric", "auc=0.9")
    ok(cli("alias", "set", "m@1", "champion"))
    ok(cli("promote", "m@2", "--to", "staging"))

    assert [m["name"] for m in both_positions(cli, "models", "list")] == [model]
    assert both_positions(cli, "models", "show", model)["name"] == model
    listed = both_positions(cli, "versions", model)
    assert [v["number"] for v in listed] == [1, 2]
    for version in listed:
        assert_version_document(version)
    for ref in ("m@1", "m@1.0.0", "m@champion", "m@staging", "m@latest"):
        assert_version_document(both_positions(cli, "show", ref))
    assert both_positions(cli, "show", "m@2")["aliases"] == ["staging"]

    diff = both_positions(cli, "diff", "m@1", "m@2")
    assert {"old", "new", "files", "metadata", "metrics"} <= set(diff)

    for args in (("resolve", "m@champion"), ("resolve", "m@1", "--at", _now())):
        resolved = both_positions(cli, *args)
        assert set(resolved) >= RESOLVE_KEYS
        assert (resolved["model"], resolved["number"]) == (model, 1)
    assert both_positions(cli, "resolve", "m@champion")["ref"] == "champion"

    moves = both_positions(cli, "alias", "history", model)
    assert [(e["alias"], e["new"]) for e in moves] == [("champion", 1), ("staging", 2)]
    assert len(both_positions(cli, "alias", "history", model, "staging")) == 1

    for check in (("verify",), ("verify", "--all"), ("verify", "m@1")):
        assert both_positions(cli, *check)["ok"] is True
    assert both_positions(cli, "gc", "--dry-run")["dry_run"] is True
    log = both_positions_lines(cli, "audit", "log")
    assert {"seq", "at", "actor", "action", "subject", "details", "prev_hash", "hash"} <= set(
        log[0]
    )
    since = ("--since", "2000-01-01")
    assert len(both_positions_lines(cli, "audit", "log", "--model", model, *since)) == 5
    assert both_positions(cli, "audit", "verify")["ok"] is True


def _now() -> str:
    return datetime.now(UTC).isoformat()


def test_changing_commands_print_one_document_in_either_position(
    cli: CliRunnerInProcess, files: FileMaker, tmp_path: Path
) -> None:
    created = json_ok(cli("--json", "models", "create", "m", "--description", "d"))
    assert (created["name"], created["description"]) == ("m", "d")
    assert json_ok(cli("models", "create", "n", "--json"))["name"] == "n"

    first = json_ok(cli("--json", "push", "m", str(files.make()), "--version", "1.0.0"))
    second = json_ok(cli("push", "m", str(files.make()), "--json", "--bump", "minor"))
    for version in (first, second):
        assert_version_document(version)
    assert (first["number"], second["number"], second["semver"]) == (1, 2, "1.1.0")

    moved = json_ok(cli("--json", "alias", "set", "m@1", "champion"))
    assert {"model", "alias", "action", "old", "new", "actor", "at", "reason"} <= set(moved)
    assert json_ok(cli("alias", "rm", "m", "champion", "--json"))["action"] == "rm"
    assert json_ok(cli("--json", "promote", "m@1", "--to", "production"))["new"] == 1
    assert json_ok(cli("promote", "m@2", "--to", "production", "--json"))["new"] == 2
    assert json_ok(cli("--json", "rollback", "m", "--stage", "production"))["new"] == 1
    archived = json_ok(cli("archive", "m@2", "--json"))
    assert_version_document(archived)
    assert archived["status"] == "archived"

    pulled = json_ok(cli("--json", "pull", "m@1", str(tmp_path / "a")))
    assert {"model", "number", "digest", "written", "unchanged"} <= set(pulled)
    assert pulled["digest"] == first["digest"]
    assert json_ok(cli("pull", "m@1", str(tmp_path / "b"), "--json"))["written"] == ["model.bin"]
    assert json_ok(cli("--json", "gc"))["dry_run"] is False
    assert json_ok(cli("gc", "--json"))["dry_run"] is False
    assert json_ok(cli("--json", "verify", "--all", "--json"))["ok"] is True


def test_without_json_the_output_is_for_people(
    cli: CliRunnerInProcess, model: str, push: Pusher
) -> None:
    push(model, b"one")
    for args in (("show", "m@1"), ("versions", model), ("models", "list"), ("audit", "log")):
        human = ok(cli(*args)).out
        assert human.strip()
        assert not human.lstrip().startswith(("{", "[")), args
