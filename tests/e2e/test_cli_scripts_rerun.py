"""The first hour of a new user (issue 12), part 2, through the CLI on an embedded store (SQLite and
PostgreSQL): scripts that push the same files again, archived versions brought back,
versions pushed from a run, pushing to a model that does not exist."""

from __future__ import annotations

import re

from tests.conftest import CliRunnerInProcess, FileMaker
from tests.e2e.conftest import Pusher
from tests.e2e.support import assert_json_error, ok, ok_json, ok_json_lines, refused


def actions(cli: CliRunnerInProcess) -> list[str]:
    return [e["action"] for e in ok_json_lines(cli, "audit", "log")]


# pushing the same files again ---------------------------------------------------------------


def test_a_duplicate_push_names_the_version_it_duplicates(
    cli: CliRunnerInProcess, model: str, push: Pusher, files: FileMaker
) -> None:
    first = push(model, b"weights")
    path = str(files.make("model.bin", b"weights"))
    line = refused(cli, "push", model, path, code="duplicate_version")
    assert "m@1" in line and "--if-exists reuse" in line
    error = assert_json_error(cli("--json", "push", model, path), "duplicate_version")
    assert error["details"] == {
        "ref": "m@1",
        "number": 1,
        "digest": first["digest"],
        "archived": False,
    }
    explicit = cli("push", model, path, "--if-exists", "fail")
    assert explicit.code == 1 and "duplicate_version" in explicit.err  # fail is the default


def test_if_exists_reuse_returns_the_existing_version_and_records_nothing(
    cli: CliRunnerInProcess, model: str, push: Pusher, files: FileMaker
) -> None:
    first = push(model, b"weights", "--version", "1.0.0")
    before = actions(cli)
    path = str(files.make("model.bin", b"weights"))
    again = ok_json(cli, "push", model, path, "--if-exists", "reuse")
    assert (again["number"], again["digest"], again["reused"]) == (1, first["digest"], True)
    same_semver = ok_json(cli, "push", model, path, "--if-exists", "reuse", "--version", "1.0.0")
    assert same_semver["number"] == 1 and same_semver["reused"] is True
    plain = ok(cli("push", model, path, "--if-exists", "reuse"))
    assert plain.out.startswith("reused m@1 (1.0.0) ") and "nothing was pushed" in plain.out
    assert [v["number"] for v in ok_json(cli, "versions", model)] == [1]
    assert actions(cli) == before
    assert "reused" not in ok_json(cli, "show", "m@1")  # only a push that reused says so
    # a semver the existing version does not have is another version: refused, not reused
    refused(
        cli, "push", model, path, "--if-exists", "reuse", "--version", "2.0.0",
        code="duplicate_version",
    )  # fmt: skip
    new = ok_json(cli, "push", model, str(files.make("model.bin", b"new")), "--if-exists", "reuse")
    assert new["number"] == 2 and "reused" not in new


def test_datasets_push_reuses_a_version_with_the_same_files(
    cli: CliRunnerInProcess, files: FileMaker
) -> None:
    data = str(files.make("data.csv", b"a,b\n1,2\n"))
    first = ok_json(cli, "datasets", "push", "tx", data)
    error = assert_json_error(cli("--json", "datasets", "push", "tx", data), "duplicate_version")
    assert error["details"]["ref"] == "tx@1" and error["details"]["number"] == 1
    assert "alias" not in error["hint"]  # datasets have no aliases
    before = actions(cli)
    again = ok_json(cli, "datasets", "push", "tx", data, "--if-exists", "reuse")
    assert (again["number"], again["digest"], again["reused"]) == (1, first["digest"], True)
    assert ok(cli("datasets", "push", "tx", data, "--if-exists", "reuse")).out.startswith(
        "reused dataset tx@1 "
    )
    assert actions(cli) == before
    assert [v["number"] for v in ok_json(cli, "datasets", "versions", "tx")] == [1]


def test_if_exists_takes_only_fail_or_reuse(
    cli: CliRunnerInProcess, model: str, files: FileMaker
) -> None:
    result = cli("push", model, str(files.make()), "--if-exists", "skip")
    assert result.code == 2 and "'skip' is not one of" in result.err


# archived versions can be used again --------------------------------------------------------


def test_unarchive_makes_an_archived_version_usable_and_is_audited(
    cli: CliRunnerInProcess, model: str, push: Pusher, files: FileMaker
) -> None:
    push(model, b"weights")
    ok(cli("archive", "m@1", "--reason", "old"))
    path = str(files.make("model.bin", b"weights"))
    # both hints point at the one way back
    for options in ((), ("--if-exists", "reuse")):
        line = refused(cli, "push", model, path, *options, code="duplicate_version")
        assert "'modelkeep unarchive m@1'" in line
    error = assert_json_error(cli("--json", "push", model, path), "duplicate_version")
    assert error["details"]["archived"] is True
    line = refused(cli, "alias", "set", "m@1", "champion", code="version_archived")
    assert "'modelkeep unarchive m@1'" in line and "push a new version" not in line
    line = refused(cli, "promote", "m@1", "--to", "staging", code="version_archived")
    assert "'modelkeep unarchive m@1'" in line

    back = ok(cli("unarchive", "m@1", "--reason", "needed again"))
    assert back.out.startswith("unarchived m@1 sha256:")
    shown = ok_json(cli, "show", "m@1")
    assert (shown["status"], shown["archived_at"]) == ("active", None)
    event = ok_json_lines(cli, "audit", "log")[-1]
    assert (event["action"], event["subject"]) == ("version.unarchive", "m@1")
    assert event["details"]["reason"] == "needed again"
    assert event["details"]["digest"] == shown["digest"]
    ok(cli("alias", "set", "m@1", "champion"))
    assert ok_json(cli, "push", model, path, "--if-exists", "reuse")["number"] == 1
    ok(cli("audit", "verify"))


def test_unarchive_of_an_active_version_changes_nothing(
    cli: CliRunnerInProcess, model: str, push: Pusher
) -> None:
    push(model, b"weights")
    before = actions(cli)
    assert "not archived; nothing changed" in ok(cli("unarchive", "m@1")).out
    assert ok_json(cli, "unarchive", "m@1")["status"] == "active"
    assert actions(cli) == before
    refused(cli, "unarchive", "m@9", code="version_not_found")
    refused(cli, "unarchive", "nope@1", code="model_not_found")


# pushing to a model that does not exist -----------------------------------------------------


def test_pushing_to_a_missing_model_says_the_one_command_that_creates_it(
    cli: CliRunnerInProcess, files: FileMaker
) -> None:
    line = refused(cli, "push", "fraud", str(files.make()), code="model_not_found")
    assert "'modelkeep models create fraud'" in line
    ok(cli("models", "create", "fraud"))
    ok(cli("push", "fraud", str(files.make())))


# a version pushed from a run ----------------------------------------------------------------


def start_run(cli: CliRunnerInProcess, *options: str) -> str:
    run_id = ok(cli("runs", "start", "--experiment", "m", *options)).out.strip()
    assert re.fullmatch(r"[0-9a-f]{12}", run_id)
    return run_id


def test_a_version_pushed_from_a_run_shows_what_the_run_logged(
    cli: CliRunnerInProcess, model: str, push: Pusher
) -> None:
    first = start_run(cli, "--param", "lr=0.1")
    ok(cli("runs", "log", first, "--metric", "auc=0.9"))
    push(model, b"one", "--run", first)
    second = start_run(cli, "--param", "lr=0.2")
    ok(cli("runs", "log", second, "--metric", "auc=0.95"))
    push(model, b"two", "--run", second, "--metric", "acc=0.5")
    push(model, b"three")  # no run

    shown = ok_json(cli, "show", "m@1")
    assert shown["metadata"]["metrics"] == {}  # the version's own metadata is unchanged
    assert (shown["run_params"], shown["run_metrics"]) == ({"lr": 0.1}, {"auc": 0.9})
    listed = {v["number"]: v for v in ok_json(cli, "versions", model)}
    assert listed[2]["run_metrics"] == {"auc": 0.95}
    assert listed[2]["metadata"]["metrics"] == {"acc": 0.5}
    assert "run_metrics" not in listed[3]
    assert f"0.9 (from run {first})" in ok(cli("show", "m@1")).out

    diff = ok_json(cli, "diff", "m@1", "m@2")
    metrics = {c["key"]: c for c in diff["metrics"]}
    assert metrics["auc"] == {
        "key": "auc",
        "old": 0.9,
        "new": 0.95,
        "old_from_run": first,
        "new_from_run": second,
        "delta": metrics["auc"]["delta"],
    }
    assert "old_from_run" not in metrics["acc"]  # m@2 recorded acc itself
    params = {c["key"]: c for c in diff["metadata"]}
    assert (params["params.lr"]["old"], params["params.lr"]["new"]) == (0.1, 0.2)
    text = ok(cli("diff", "m@1", "m@2")).out
    assert f"(from run {first})" in text and f"(from run {second})" in text

    run = ok_json(cli, "runs", "show", first)
    assert run["model_versions"] == ["m@1"]
    assert re.search(r"pushed\s+m@1", ok(cli("runs", "show", first)).out)
    assert ok_json(cli, "runs", "show", start_run(cli))["model_versions"] == []
