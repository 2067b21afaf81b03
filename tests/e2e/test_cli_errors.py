"""Bad input: exit code 1 (2 for usage), one ``error[code]: what; fix`` line on stderr, the
stable code, ``{"error": {...}}`` with ``--json``, and the store unchanged afterwards."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import CliRunnerInProcess, FileMaker
from tests.e2e.conftest import Pusher
from tests.e2e.support import (
    assert_error_line,
    assert_json_error,
    ok,
    ok_json,
    refused,
    store_unchanged,
)


@pytest.fixture
def two_versions(cli: CliRunnerInProcess, model: str, push: Pusher) -> list[dict[str, object]]:
    """``m@1`` (1.0.0, alias champion, production) and ``m@2``."""
    first = push(model, b"one", "--version", "1.0.0")
    second = push(model, b"two")
    ok(cli("alias", "set", "m@1", "champion"))
    ok(cli("promote", "m@1", "--to", "production"))
    return [first, second]


def test_invalid_names(cli: CliRunnerInProcess, two_versions: object, files: FileMaker) -> None:
    path = str(files.make())
    with store_unchanged(cli):
        for args in (
            ("models", "create", "Fraud"),
            ("models", "create", "--", "-fraud"),
            ("models", "create", "a" * 129),
            ("models", "create", "has space"),
            ("push", "Fraud", path),
            ("show", "Fraud@1"),
            ("versions", "M"),
            ("models", "show", "M"),
            ("alias", "set", "m@2", "Champion"),
            ("alias", "set", "m@2", "latest"),
            ("alias", "set", "m@2", "1st"),
            ("alias", "rm", "m", "Champion"),
        ):
            refused(cli, *args, code="invalid_name")
        refused(cli, "models", "create", "m", code="model_exists")


def test_unknown_models(cli: CliRunnerInProcess, two_versions: object, files: FileMaker) -> None:
    path = str(files.make())
    with store_unchanged(cli):
        for args in (
            ("models", "show", "nope"),
            ("versions", "nope"),
            ("show", "nope@1"),
            ("show", "nope"),
            ("resolve", "nope@production"),
            ("push", "nope", path),
            ("alias", "set", "nope@1", "champion"),
            ("alias", "rm", "nope", "champion"),
            ("alias", "history", "nope"),
            ("promote", "nope@1", "--to", "staging"),
            ("rollback", "nope", "--stage", "production"),
            ("archive", "nope@1"),
            ("verify", "nope@1"),
        ):
            refused(cli, *args, code="model_not_found")


def test_unknown_and_invalid_refs(
    cli: CliRunnerInProcess, two_versions: list[dict[str, object]], tmp_path: Path
) -> None:
    digest = str(two_versions[0]["digest"]).removeprefix("sha256:")
    unused = "0123456789ab" if not digest.startswith("0123456789ab") else "ba9876543210"
    with store_unchanged(cli):
        for ref in ("m@9", "m@9.9.9", f"m@sha256:{unused}"):
            line = refused(cli, "show", ref, code="version_not_found")
            assert ref.split("@")[1] in line
        refused(cli, "diff", "m@1", "m@9", code="version_not_found")
        refused(cli, "pull", "m@9", str(tmp_path / "dest"), code="version_not_found")
        assert not (tmp_path / "dest").exists()
        refused(cli, "show", "m@candidate", code="alias_not_found")
        refused(cli, "resolve", "m@staging", code="alias_not_found")
        refused(cli, "alias", "rm", "m", "candidate", code="alias_not_found")
        for ref in ("m@", "m@0", "m@07", "m@1.2", "m@-x", "m@sha256:zzzzzzzzzzzz"):
            refused(cli, "show", ref, code="invalid_ref")
        refused(cli, "archive", "m", code="invalid_ref")  # changes need an explicit version
        refused(cli, "promote", "m", "--to", "staging", code="invalid_ref")

        # a digest prefix needs at least 12 hex digits; 12 that match one version work
        refused(cli, "show", f"m@sha256:{digest[:11]}", code="invalid_ref")
        refused(cli, "resolve", f"m@sha256:{digest[:4]}", code="invalid_ref")
        assert ok_json(cli, "resolve", f"m@sha256:{digest[:12]}")["number"] == 1

        refused(cli, "resolve", "m@1", "--at", "yesterday", code="invalid_input")
        refused(cli, "audit", "log", "--since", "last week", code="invalid_input")


def test_refused_pushes(
    cli: CliRunnerInProcess, two_versions: object, files: FileMaker, tmp_path: Path
) -> None:
    new = str(files.make("new.bin", b"new content"))
    with store_unchanged(cli):
        line = refused(cli, "push", "m", new, "--version", "1.0.0", code="semver_exists")
        assert "1.0.0" in line
        line = refused(cli, "push", "m", str(files.make(content=b"two")), code="duplicate_version")
        assert "m@2" in line
        for bad in (
            ("--version", "1.0"),
            ("--version", "v2"),
            ("--version", "2.0.0", "--bump", "patch"),
        ):
            refused(cli, "push", "m", new, *bad, code="invalid_input")
        for bad in (
            ("--metric", "auc=high"),
            ("--metric", "auc=nan"),
            ("--metric", "auc"),
            ("--param", "novalue"),
            ("--param", "=1"),
            ("--meta", "bad key=1"),
            ("--metric", "auc=1", "--metric", "auc=2"),  # never silently keep the last
            ("--param", "lr=0.1", "--param", "lr=0.2"),
        ):
            refused(cli, "push", "m", new, *bad, code="invalid_metadata")
        refused(cli, "push", "m", new, "--dataset", "transactions", code="invalid_ref")
        line = refused(
            cli, "push", "m", new, "--metric", "auc=1", "--metric", "auc=2", code="invalid_metadata"
        )
        assert "auc=1 and auc=2" in line

        empty = tmp_path / "empty"
        (empty / "also-empty").mkdir(parents=True)
        refused(cli, "push", "m", str(empty), code="empty_push")
        line = refused(cli, "push", "m", str(tmp_path / "missing.bin"), code="invalid_input")
        assert "missing.bin" in line
        clash = str(files.make("new.bin", b"other content"))
        refused(cli, "push", "m", new, clash, code="invalid_input")


def test_missing_required_metadata(cli: CliRunnerInProcess, files: FileMaker, push: Pusher) -> None:
    ok(cli("models", "create", "strict", "--require", "commit", "--require", "params.lr"))
    path = str(files.make())
    with store_unchanged(cli):
        line = refused(cli, "push", "strict", path, code="missing_metadata")
        assert "commit" in line
        assert "params.lr" in line
        line = refused(cli, "push", "strict", path, "--commit", "abc", code="missing_metadata")
        assert "params.lr" in line
        refused(
            cli,
            "push",
            "strict",
            path,
            "--commit",
            "abc",
            "--param",
            "lr=",
            code="missing_metadata",
        )
    version = push("strict", b"w", "--commit", "abc", "--param", "lr=0.1")
    assert version["number"] == 1
    refused(cli, "models", "create", "odd", "--require", "colour", code="invalid_metadata")


def test_symlinks_out_of_a_pushed_directory_are_refused(
    cli: CliRunnerInProcess, model: str, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not for the registry")
    to_file, to_dir = tmp_path / "to_file", tmp_path / "to_dir"
    for directory in (to_file, to_dir):
        directory.mkdir()
        (directory / "model.bin").write_bytes(b"weights")
    os.symlink(outside / "secret", to_file / "link")
    os.symlink(outside, to_dir / "linked")
    with store_unchanged(cli):
        line = refused(cli, "push", model, str(to_file), code="unsafe_path")
        assert "link" in line
        refused(cli, "push", model, str(to_dir), code="unsafe_path")

    inside = tmp_path / "inside"
    inside.mkdir()
    (inside / "model.bin").write_bytes(b"weights")
    os.symlink("model.bin", inside / "alias.bin")
    version = ok_json(cli, "push", model, str(inside))
    assert [f["path"] for f in version["files"]] == ["alias.bin", "model.bin"]


def test_pull_into_a_destination_holding_a_different_file(
    cli: CliRunnerInProcess, model: str, push: Pusher, tmp_path: Path
) -> None:
    push(model, b"registry bytes")
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "model.bin").write_bytes(b"local bytes")
    with store_unchanged(cli):
        refused(cli, "pull", "m@1", str(dest), code="destination_conflict")
    assert (dest / "model.bin").read_bytes() == b"local bytes"
    ok(cli("pull", "m@1", str(dest), "--force"))
    assert (dest / "model.bin").read_bytes() == b"registry bytes"
    ok(cli("pull", "m@1", str(dest)))
    assert (dest / "model.bin").read_bytes() == b"registry bytes"


def test_stages_move_only_by_promote_and_rollback(
    cli: CliRunnerInProcess, two_versions: object
) -> None:
    with store_unchanged(cli):
        for stage in ("production", "staging"):
            line = refused(cli, "alias", "set", "m@2", stage, code="protected_alias")
            assert "promote" in line
            refused(cli, "alias", "rm", "m", stage, code="protected_alias")
    assert ok_json(cli, "resolve", "m@production")["number"] == 1


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(("push",), id="missing-name"),
        pytest.param(("push", "m"), id="missing-path"),
        pytest.param(("show",), id="missing-ref"),
        pytest.param(("pull", "m@1"), id="missing-dest"),
        pytest.param(("alias", "set", "m@1"), id="missing-alias"),
        pytest.param(("promote", "m@1"), id="missing-to"),
        pytest.param(("show", "m@1", "--bogus"), id="unknown-option"),
        pytest.param(("--bogus", "models", "list"), id="unknown-global-option"),
        pytest.param(("nosuch",), id="unknown-command"),
        pytest.param(("promote", "m@1", "--to", "dev"), id="bad-choice"),
        pytest.param(("rollback", "m", "--stage", "qa"), id="bad-stage"),
        pytest.param(("push", "m", "f", "--bump", "huge"), id="bad-bump"),
        pytest.param(("push", "m", "f", "--seed", "abc"), id="seed-not-int"),
        pytest.param(("verify", "m@1", "--all"), id="ref-and-all"),
        pytest.param(("show", "m@1", "m@2"), id="extra-argument"),
    ],
)
def test_usage_errors_exit_2(cli: CliRunnerInProcess, model: str, args: tuple[str, ...]) -> None:
    with store_unchanged(cli):
        line = refused(cli, *args, code="usage", exit_code=2)
        assert "--help" in line
        assert_json_error(cli(*args, "--json"), "usage", exit_code=2)


def test_a_group_without_its_subcommand_is_a_usage_error(cli: CliRunnerInProcess) -> None:
    for group in ("models", "alias", "audit"):
        assert_json_error(cli("--json", group), "usage", exit_code=2)


def test_a_database_of_another_store_is_refused(
    cli: CliRunnerInProcess, model: str, tmp_path: Path
) -> None:
    with store_unchanged(cli):
        refused(cli, "--uri", str(tmp_path / "other"), "models", "list", code="store_mismatch")


def test_uri_option_chooses_the_store(
    cli: CliRunnerInProcess, model: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODELKEEP_DATABASE_URL")
    other = tmp_path / "other"
    created = cli("--uri", str(other), "models", "create", "elsewhere")
    assert (created.code, created.err) == (0, f"made a new store at {other}\n"), created
    assert (other / "modelkeep.db").is_file()
    listed = one_of(ok_json(cli, "--uri", str(other), "models", "list"))
    assert listed["name"] == "elsewhere"
    # a server URL that nothing answers on: the registry is unavailable, said in one line
    assert_error_line(cli("--uri", "http://127.0.0.1:9", "models", "list"), "store_unavailable")
    assert_error_line(cli("--uri", "ftp://host/x", "models", "list"), "unsupported_uri")
    # a server address without its scheme: said so, and no folder named like it is made
    monkeypatch.chdir(tmp_path)
    for address in ("127.0.0.1:8801", "localhost:8080", "models.example.com:443/x", "[::1]:80"):
        line = assert_error_line(cli("--uri", address, "models", "list"), "unsupported_uri")
        assert f"http://{address}" in line
    assert not [p for p in tmp_path.iterdir() if ":" in p.name]


def one_of(documents: object) -> dict[str, object]:
    assert isinstance(documents, list)
    assert len(documents) == 1, documents
    found = documents[0]
    assert isinstance(found, dict)
    return found


def test_a_busy_sqlite_database_is_reported_as_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    monkeypatch.setenv("MODELKEEP_URI", str(store))
    monkeypatch.setenv("MODELKEEP_SQLITE_BUSY_TIMEOUT_MS", "200")
    cli = CliRunnerInProcess(capsys)
    assert cli("models", "create", "m").code == 0
    other_writer = sqlite3.connect(store / "modelkeep.db", isolation_level=None)
    try:
        other_writer.execute("BEGIN IMMEDIATE")
        refused(cli, "models", "create", "x", code="store_unavailable")
        other_writer.execute("ROLLBACK")
    finally:
        other_writer.close()
    assert [m["name"] for m in ok_json(cli, "models", "list")] == ["m"]
