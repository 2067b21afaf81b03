"""Every registry command of DESIGN.md section 3 through the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.clock import FakeClock
from tests.conftest import CliRunnerInProcess, FileMaker
from tests.e2e.conftest import Pusher
from tests.e2e.support import (
    assert_error_line,
    assert_version_document,
    blob_files,
    blob_path,
    manifest_digest,
    ok,
    ok_json,
    ok_json_lines,
    refused,
    sha256,
)


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    return root


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# models -------------------------------------------------------------------------------


def test_models_create_list_show(cli: CliRunnerInProcess, push: Pusher) -> None:
    created = ok_json(
        cli,
        "models",
        "create",
        "fraud",
        "--description",
        "card fraud scores",
        "--require",
        "commit",
        "--require",
        "params.lr",
    )
    assert created["name"] == "fraud"
    assert created["description"] == "card fraud scores"
    assert created["required"] == ["commit", "params.lr"]
    assert (created["versions"], created["latest"]) == (0, None)
    plain = ok(cli("models", "create", "alpha"))
    assert "alpha" in plain.out

    assert [m["name"] for m in ok_json(cli, "models", "list")] == ["alpha", "fraud"]
    assert ok_json(cli, "models", "show", "fraud") == created

    push("fraud", b"w1", "--commit", "abc", "--param", "lr=0.1")
    shown = ok_json(cli, "models", "show", "fraud")
    assert (shown["versions"], shown["latest"]) == (1, 1)
    human = ok(cli("models", "show", "fraud"))
    assert "card fraud scores" in human.out
    assert "commit, params.lr" in human.out


# push ---------------------------------------------------------------------------------


def test_push_a_file_stores_it_under_its_base_name_with_all_metadata(
    cli: CliRunnerInProcess, model: str, files: FileMaker
) -> None:
    content = b"tensor bytes \x00\x01\x02"
    path = files.make("weights.bin", content)
    before = datetime.now(UTC)
    version = ok_json(
        cli,
        "push",
        model,
        str(path),
        "--version",
        "1.0.0",
        "--param",
        "lr=0.01",
        "--param",
        "layers=3",
        "--param",
        "activation=relu",
        "--param",
        "fast=true",
        "--metric",
        "auc=0.91",
        "--metric",
        "loss=1",
        "--meta",
        "team=risk",
        "--commit",
        "3f9a2b1",
        "--seed",
        "7",
        "--run",
        "run-42",
        "--dataset",
        "transactions@3",
        "--dataset",
        "users@1.0.0",
        "--message",
        "first cut",
    )
    assert_version_document(version)
    assert version["model"] == model
    assert (version["number"], version["semver"], version["status"]) == (1, "1.0.0", "active")
    assert version["files"] == [
        {"path": "weights.bin", "size": len(content), "digest": sha256(content)}
    ]
    assert version["digest"] == manifest_digest({"weights.bin": content})
    assert version["metadata"] == {
        "params": {"lr": 0.01, "layers": 3, "activation": "relu", "fast": True},
        "metrics": {"auc": 0.91, "loss": 1.0},
        "datasets": ["transactions@3", "users@1.0.0"],
        "commit": "3f9a2b1",
        "seed": 7,
        "run": "run-42",
        "meta": {"team": "risk"},
    }
    assert version["message"] == "first cut"
    assert version["aliases"] == []
    assert version["created_by"].startswith("local:")
    created = datetime.fromisoformat(version["created_at"])
    assert before - timedelta(seconds=1) <= created <= datetime.now(UTC)


def test_push_prints_a_human_summary(cli: CliRunnerInProcess, model: str, files: FileMaker) -> None:
    pushed = ok(cli("push", model, str(files.make()), "--version", "2.1.0"))
    assert pushed.out.startswith("pushed m@1 (2.1.0) sha256:")


def test_push_a_directory_keeps_relative_posix_paths(
    cli: CliRunnerInProcess, model: str, tmp_path: Path
) -> None:
    tree = {
        "config.json": b"{}",
        "sub/weights.bin": b"w" * 1000,
        "sub/deeper/vocab.txt": b"a\nb",
        "empty.txt": b"",
        "modèle final.bin": "ünïcode".encode(),
    }
    root = make_tree(tmp_path / "export", tree)
    version = ok_json(cli, "push", model, str(root))
    assert [f["path"] for f in version["files"]] == sorted(tree)
    assert {f["path"]: (f["size"], f["digest"]) for f in version["files"]} == {
        path: (len(content), sha256(content)) for path, content in tree.items()
    }
    assert version["digest"] == manifest_digest(tree)

    extra = make_tree(tmp_path / "other", {"README.md": b"readme"}) / "README.md"
    both = ok_json(cli, "push", model, str(root), str(extra))
    assert both["number"] == 2
    assert both["digest"] == manifest_digest({**tree, "README.md": b"readme"})


def test_push_numbers_and_semvers(cli: CliRunnerInProcess, model: str, push: Pusher) -> None:
    assert push(model, b"1", "--bump", "patch")["semver"] == "0.0.1"
    assert push(model, b"2", "--version", "1.2.3")["semver"] == "1.2.3"
    assert push(model, b"3", "--bump", "minor")["semver"] == "1.3.0"
    assert push(model, b"4", "--bump", "major")["semver"] == "2.0.0"
    assert push(model, b"5", "--bump", "patch")["semver"] == "2.0.1"
    plain = push(model, b"6")
    assert (plain["number"], plain["semver"]) == (6, None)
    listed = ok_json(cli, "versions", model)
    assert [v["number"] for v in listed] == [1, 2, 3, 4, 5, 6]
    assert [v["semver"] for v in listed] == ["0.0.1", "1.2.3", "1.3.0", "2.0.0", "2.0.1", None]
    for v in listed:
        assert_version_document(v)
    human = ok(cli("versions", model))
    assert "2.0.1" in human.out
    ok(cli("models", "create", "empty"))
    assert "no versions" in ok(cli("versions", "empty")).out
    assert ok_json(cli, "versions", "empty") == []


def test_identical_content_may_be_pushed_to_two_models(
    cli: CliRunnerInProcess, push: Pusher
) -> None:
    ok(cli("models", "create", "a"))
    ok(cli("models", "create", "b"))
    first, second = push("a", b"same"), push("b", b"same")
    assert first["digest"] == second["digest"]
    assert second["number"] == 1


# show and resolve ---------------------------------------------------------------------


def test_show_accepts_every_kind_of_reference(
    cli: CliRunnerInProcess, model: str, push: Pusher
) -> None:
    first = push(model, b"one", "--version", "1.0.0")
    second = push(model, b"two")
    ok(cli("alias", "set", "m@1", "champion"))
    hexpart = str(first["digest"]).removeprefix("sha256:")
    for ref in (
        "m@1",
        "m@1.0.0",
        f"m@sha256:{hexpart[:12]}",
        f"m@sha256:{hexpart[:12].upper()}",
        f"m@{first['digest']}",
        "m@champion",
    ):
        shown = ok_json(cli, "show", ref)
        assert (shown["number"], shown["digest"]) == (1, first["digest"]), ref
    for ref in ("m@2", "m@latest", "m"):
        assert ok_json(cli, "show", ref)["digest"] == second["digest"], ref
    assert ok_json(cli, "show", "m@1")["aliases"] == ["champion"]
    human = ok(cli("show", "m@1"))
    assert str(first["digest"]) in human.out
    assert "champion" in human.out


def test_resolve_prints_number_and_digest(
    cli: CliRunnerInProcess, model: str, push: Pusher
) -> None:
    first = push(model, b"one", "--version", "1.0.0")
    push(model, b"two")
    ok(cli("alias", "set", "m@1", "champion"))
    resolved = ok_json(cli, "resolve", "m@champion")
    assert resolved == {"model": "m", "ref": "champion", "number": 1, "digest": first["digest"]}
    assert ok_json(cli, "resolve", "m@1.0.0")["number"] == 1
    assert ok_json(cli, "resolve", "m@latest")["number"] == 2
    human = ok(cli("resolve", "m@champion"))
    assert "m@1" in human.out
    assert str(first["digest"]) in human.out


def _mid(a: str, b: str) -> str:
    start, end = datetime.fromisoformat(a), datetime.fromisoformat(b)
    assert start < end
    return (start + (end - start) / 2).isoformat()


def test_resolve_at_a_time_between_two_alias_moves(
    clock: FakeClock, cli: CliRunnerInProcess, model: str, push: Pusher
) -> None:
    first, second = push(model, b"one"), push(model, b"two")
    ok(cli("alias", "set", "m@1", "champion"))
    ok(cli("alias", "set", "m@2", "champion"))
    t1, t2 = (e["at"] for e in ok_json(cli, "alias", "history", model, "champion"))

    then = ok_json(cli, "resolve", "m@champion", "--at", _mid(t1, t2))
    assert (then["number"], then["digest"]) == (1, first["digest"])
    assert ok_json(cli, "resolve", "m@champion", "--at", t2)["number"] == 2
    now = ok_json(cli, "resolve", "m@champion", "--at", clock().isoformat())
    assert (now["number"], now["digest"]) == (2, second["digest"])
    before = (datetime.fromisoformat(t1) - timedelta(seconds=1)).isoformat()
    assert_error_line(cli("resolve", "m@champion", "--at", before), "alias_not_found")
    zulu = datetime.fromisoformat(_mid(t1, t2)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert ok_json(cli, "resolve", "m@champion", "--at", zulu)["number"] == 1


def test_resolve_at_for_stages_and_latest(
    clock: FakeClock, cli: CliRunnerInProcess, model: str, push: Pusher
) -> None:
    first = push(model, b"one")
    second = push(model, b"two")
    between_pushes = _mid(str(first["created_at"]), str(second["created_at"]))
    assert ok_json(cli, "resolve", "m@latest", "--at", between_pushes)["number"] == 1
    assert ok_json(cli, "resolve", "m@latest")["number"] == 2
    assert_error_line(cli("resolve", "m@2", "--at", between_pushes), "version_not_found")

    ok(cli("promote", "m@1", "--to", "production"))
    ok(cli("promote", "m@2", "--to", "production"))
    t1, t2 = (e["at"] for e in ok_json(cli, "alias", "history", model, "production"))
    assert ok_json(cli, "resolve", "m@production", "--at", _mid(t1, t2))["number"] == 1
    assert ok_json(cli, "resolve", "m@production")["number"] == 2


# aliases, stages, rollback ------------------------------------------------------------


def test_alias_set_rm_and_history(cli: CliRunnerInProcess, model: str, push: Pusher) -> None:
    push(model, b"one")
    push(model, b"two")
    moved = ok_json(cli, "alias", "set", "m@1", "champion", "--reason", "best auc")
    assert {k: moved[k] for k in ("model", "alias", "action", "old", "new", "reason")} == {
        "model": "m",
        "alias": "champion",
        "action": "set",
        "old": None,
        "new": 1,
        "reason": "best auc",
    }
    assert moved["actor"].startswith("local:")
    assert ok(cli("alias", "set", "m@2", "champion")).out.strip() == "champion: m@1 -> m@2"
    ok(cli("alias", "set", "m@2", "candidate"))
    assert ok_json(cli, "show", "m@2")["aliases"] == ["candidate", "champion"]
    assert ok_json(cli, "show", "m@1")["aliases"] == []
    assert [v["aliases"] for v in ok_json(cli, "versions", model)] == [
        [],
        ["candidate", "champion"],
    ]

    # pointing an alias where it already points records nothing
    ok(cli("alias", "set", "m@2", "champion"))
    assert len(ok_json(cli, "alias", "history", model, "champion")) == 2

    removed = ok_json(cli, "alias", "rm", model, "champion", "--reason", "retired")
    assert (removed["action"], removed["old"], removed["new"]) == ("rm", 2, None)
    assert ok_json(cli, "show", "m@2")["aliases"] == ["candidate"]
    assert_error_line(cli("resolve", "m@champion"), "alias_not_found")

    history = ok_json(cli, "alias", "history", model, "champion")
    assert [(e["action"], e["old"], e["new"], e["reason"]) for e in history] == [
        ("set", None, 1, "best auc"),
        ("set", 1, 2, None),
        ("rm", 2, None, "retired"),
    ]
    everything = ok_json(cli, "alias", "history", model)
    assert [e["alias"] for e in everything] == ["champion", "champion", "candidate", "champion"]
    assert "retired" in ok(cli("alias", "history", model)).out


def test_promote_then_rollback_walks_back_through_earlier_targets(
    cli: CliRunnerInProcess, model: str, push: Pusher
) -> None:
    for content in (b"one", b"two", b"three"):
        push(model, content)
    for number in (1, 2, 3):
        promoted = ok_json(cli, "promote", f"m@{number}", "--to", "production", "--reason", "ok")
        assert (promoted["action"], promoted["new"]) == ("promote", number)
    assert ok_json(cli, "show", "m@3")["aliases"] == ["production"]

    back = ok_json(cli, "rollback", model, "--stage", "production", "--reason", "bad canary")
    assert (back["action"], back["old"], back["new"], back["reason"]) == (
        "rollback",
        3,
        2,
        "bad canary",
    )
    assert ok_json(cli, "resolve", "m@production")["number"] == 2
    assert ok_json(cli, "show", "m@3")["aliases"] == []

    further = ok_json(cli, "rollback", model, "--stage", "production")
    assert (further["old"], further["new"]) == (2, 1)
    assert ok_json(cli, "resolve", "m@production")["number"] == 1

    refused(cli, "rollback", model, "--stage", "production", code="nothing_to_roll_back")
    assert ok_json(cli, "resolve", "m@production")["number"] == 1

    # stages are independent of each other
    ok(cli("promote", "m@3", "--to", "staging"))
    refused(cli, "rollback", model, "--stage", "staging", code="nothing_to_roll_back")
    assert ok_json(cli, "resolve", "m@production")["number"] == 1
    assert ok_json(cli, "resolve", "m@staging")["number"] == 3


def test_rollback_to_an_archived_version_is_refused(
    cli: CliRunnerInProcess, model: str, push: Pusher
) -> None:
    push(model, b"one")
    push(model, b"two")
    ok(cli("promote", "m@1", "--to", "production"))
    ok(cli("promote", "m@2", "--to", "production"))
    ok(cli("archive", "m@1"))
    line = refused(cli, "rollback", model, "--stage", "production", code="version_archived")
    assert "m@1" in line
    assert ok_json(cli, "resolve", "m@production")["number"] == 2


def test_promoting_to_where_the_stage_is_says_nothing_changed(
    cli: CliRunnerInProcess, model: str, push: Pusher
) -> None:
    push(model, b"one")
    assert ok(cli("promote", "m@1", "--to", "production")).out == "production: nothing -> m@1\n"
    again = ok(cli("promote", "m@1", "--to", "production"))
    assert again.out == "production is m@1 already; nothing changed\n"
    assert len(ok_json(cli, "alias", "history", model, "production")) == 1
    assert ok_json(cli, "promote", "m@1", "--to", "production")["attestation"] is None


def test_promote_after_rollback_then_rollback_again(
    cli: CliRunnerInProcess, model: str, push: Pusher
) -> None:
    for content in (b"one", b"two", b"three"):
        push(model, content)
    ok(cli("promote", "m@1", "--to", "staging"))
    ok(cli("promote", "m@2", "--to", "staging"))
    ok(cli("rollback", model, "--stage", "staging"))
    ok(cli("promote", "m@3", "--to", "staging"))
    assert ok_json(cli, "rollback", model, "--stage", "staging")["new"] == 1


# archive ------------------------------------------------------------------------------


def test_archived_version_can_be_shown_and_pulled_but_not_promoted_or_aliased(
    cli: CliRunnerInProcess, model: str, push: Pusher, tmp_path: Path
) -> None:
    push(model, b"one")
    second = push(model, b"two")
    archived = ok_json(cli, "archive", "m@2", "--reason", "superseded")
    assert_version_document(archived)
    assert archived["status"] == "archived"
    assert archived["digest"] == second["digest"]
    assert ok_json(cli, "show", "m@2")["status"] == "archived"
    assert [v["status"] for v in ok_json(cli, "versions", model)] == ["active", "archived"]

    ok(cli("pull", "m@2", str(tmp_path / "out")))
    assert (tmp_path / "out" / "model.bin").read_bytes() == b"two"

    assert ok_json(cli, "resolve", "m@latest")["number"] == 1
    assert ok_json(cli, "show", "m")["number"] == 1
    refused(cli, "promote", "m@2", "--to", "production", code="version_archived")
    refused(cli, "promote", "m@2", "--to", "staging", code="version_archived")
    refused(cli, "alias", "set", "m@2", "champion", code="version_archived")

    # archiving again changes nothing
    assert ok_json(cli, "archive", "m@2")["status"] == "archived"
    actions = [e["action"] for e in ok_json_lines(cli, "audit", "log")]
    assert actions.count("version.archive") == 1


def test_a_version_holding_a_stage_cannot_be_archived(
    cli: CliRunnerInProcess, model: str, push: Pusher
) -> None:
    push(model, b"one")
    ok(cli("promote", "m@1", "--to", "production"))
    line = refused(cli, "archive", "m@1", code="version_in_stage")
    assert "production" in line
    assert ok_json(cli, "show", "m@1")["status"] == "active"


# pull ---------------------------------------------------------------------------------


def test_pull_writes_every_file_and_pulling_again_is_fine(
    cli: CliRunnerInProcess, model: str, tmp_path: Path
) -> None:
    tree = {
        "a.bin": b"a" * 100,
        "sub/b.bin": b"b" * 10,
        "sub/deeper/c.txt": b"c",
        "empty": b"",
        "ü name.bin": b"u",
    }
    ok(cli("push", model, str(make_tree(tmp_path / "src", tree))))
    dest = tmp_path / "out" / "nested"
    pulled = ok_json(cli, "pull", "m@1", str(dest))
    assert (pulled["model"], pulled["number"]) == (model, 1)
    assert sorted(pulled["written"]) == sorted(tree)
    assert pulled["unchanged"] == []
    assert read_tree(dest) == tree
    assert [p.name for p in dest.iterdir() if p.name.startswith(".")] == []

    again = ok_json(cli, "pull", "m@latest", str(dest))
    assert (again["written"], sorted(again["unchanged"])) == ([], sorted(tree))
    assert read_tree(dest) == tree
    assert "already there" in ok(cli("pull", "m@1", str(dest))).out


def test_pull_refuses_to_overwrite_a_different_file_unless_forced(
    cli: CliRunnerInProcess, model: str, tmp_path: Path
) -> None:
    tree = {"a.bin": b"original a", "b.bin": b"original b"}
    ok(cli("push", model, str(make_tree(tmp_path / "src", tree))))
    dest = make_tree(tmp_path / "dest", {"a.bin": b"local edit", "notes.txt": b"mine"})

    line = refused(cli, "pull", "m@1", str(dest), code="destination_conflict")
    assert "a.bin" in line
    assert read_tree(dest) == {"a.bin": b"local edit", "notes.txt": b"mine"}

    forced = ok_json(cli, "pull", "m@1", str(dest), "--force")
    assert sorted(forced["written"]) == ["a.bin", "b.bin"]
    assert read_tree(dest) == {**tree, "notes.txt": b"mine"}


def test_pull_refuses_a_file_in_the_way_of_a_directory(
    cli: CliRunnerInProcess, model: str, tmp_path: Path
) -> None:
    tree = {"a.bin": b"a", "sub/b.bin": b"b"}
    ok(cli("push", model, str(make_tree(tmp_path / "src", tree))))
    dest = make_tree(tmp_path / "dest", {"sub": b"a file named like the directory"})
    refused(cli, "pull", "m@1", str(dest), code="destination_conflict")
    assert read_tree(dest) == {"sub": b"a file named like the directory"}


# diff ---------------------------------------------------------------------------------


def test_diff_reports_files_metadata_and_metrics(
    cli: CliRunnerInProcess, model: str, tmp_path: Path
) -> None:
    old = make_tree(tmp_path / "v1", {"a.bin": b"a1", "b.bin": b"b"})
    new = make_tree(tmp_path / "v2", {"a.bin": b"a2!", "c.bin": b"c"})
    common = ("--meta", "team=risk")
    ok(cli("push", model, str(old), "--param", "lr=0.1", "--metric", "auc=0.8", "--commit", "c1"))
    ok(
        cli(
            "push",
            model,
            str(new),
            "--param",
            "lr=0.2",
            "--metric",
            "auc=0.9",
            "--metric",
            "f1=0.5",
            "--commit",
            "c2",
            "--version",
            "1.0.0",
            *common,
        )
    )
    result = ok_json(cli, "diff", "m@1", "m@2")
    assert (result["old"], result["new"], result["identical"]) == ("m@1", "m@2", False)
    files = {c["key"]: (c["old"], c["new"]) for c in result["files"]}
    assert files == {
        "a.bin": ({"size": 2, "digest": sha256(b"a1")}, {"size": 3, "digest": sha256(b"a2!")}),
        "b.bin": ({"size": 1, "digest": sha256(b"b")}, None),
        "c.bin": (None, {"size": 1, "digest": sha256(b"c")}),
    }
    metadata = {c["key"]: (c["old"], c["new"]) for c in result["metadata"]}
    assert metadata["commit"] == ("c1", "c2")
    assert metadata["params.lr"] == (0.1, 0.2)
    assert metadata["meta.team"] == (None, "risk")
    assert metadata["semver"] == (None, "1.0.0")
    metrics = {c["key"]: c for c in result["metrics"]}
    assert metrics["auc"]["old"] == 0.8
    assert metrics["auc"]["new"] == 0.9
    assert metrics["auc"]["delta"] == pytest.approx(0.1)
    assert (metrics["f1"]["old"], metrics["f1"]["delta"]) == (None, None)

    human = ok(cli("diff", "m@1", "m@2"))
    assert "a.bin" in human.out
    assert "auc" in human.out
    same = ok_json(cli, "diff", "m@1", "m@1")
    assert same["identical"] is True
    assert "identical" in ok(cli("diff", "m@2", "m@1.0.0")).out


# verify, gc ---------------------------------------------------------------------------


def test_verify_reports_an_intact_store(cli: CliRunnerInProcess, model: str, push: Pusher) -> None:
    push(model, b"one")
    push(model, b"two")
    for args in (("verify",), ("verify", "--all")):
        report = ok_json(cli, *args)
        assert report["ok"] is True
        assert report["checked_versions"] == 2
        assert report["checked_blobs"] == 4  # two files and two manifests
        assert (report["damaged"], report["broken_versions"]) == ([], [])
    one = ok_json(cli, "verify", "m@1")
    assert (one["ok"], one["checked_versions"], one["checked_blobs"]) == (True, 1, 2)
    assert "no damage" in ok(cli("verify")).out


def test_gc_dry_run_reports_and_gc_deletes_only_unreferenced_blobs(
    cli: CliRunnerInProcess,
    model: str,
    push: Pusher,
    files: FileMaker,
    store: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kept = push(model, b"kept", "--version", "1.0.0")
    # a refused push leaves its uploaded blobs behind: the file and its manifest
    orphan = files.make("orphan.bin", b"orphan bytes")
    assert_error_line(cli("push", model, str(orphan), "--version", "1.0.0"), "semver_exists")
    orphan_blob = blob_path(store, sha256(b"orphan bytes"))
    assert orphan_blob.is_file()
    leftover = store / "tmp" / "upload-abandoned"
    leftover.write_bytes(b"x" * 50)
    hours_ago = time.time() - 7200
    os.utime(leftover, (hours_ago, hours_ago))
    blobs_before = blob_files(store)

    young = ok_json(cli, "gc", "--dry-run")
    assert (young["dry_run"], young["blobs"], young["kept_in_grace"]) == (True, 0, 2)
    assert (young["temporary_files"], young["temporary_bytes"]) == (1, 50)

    monkeypatch.setenv("MODELKEEP_GC_GRACE_SECONDS", "0")
    audit_before = ok_json_lines(cli, "audit", "log")
    dry = ok_json(cli, "gc", "--dry-run")
    assert (dry["dry_run"], dry["blobs"]) == (True, 2)
    assert dry["bytes"] > len(b"orphan bytes")
    assert blob_files(store) == blobs_before
    assert leftover.exists()
    assert ok_json_lines(cli, "audit", "log") == audit_before
    assert "would free" in ok(cli("gc", "--dry-run")).out

    done = ok_json(cli, "gc")
    assert (done["dry_run"], done["blobs"], done["bytes"]) == (False, 2, dry["bytes"])
    assert done["temporary_files"] == 1
    assert not orphan_blob.exists()
    assert not leftover.exists()
    assert blob_files(store) == {
        blob_path(store, str(kept["digest"])),
        blob_path(store, sha256(b"kept")),
    }
    assert ok_json(cli, "verify", "--all")["ok"] is True
    ok(cli("pull", "m@1.0.0", str(files.root / "pulled")))
    assert ok_json_lines(cli, "audit", "log")[-1]["action"] == "store.gc"
    assert ok_json(cli, "gc")["blobs"] == 0


# audit --------------------------------------------------------------------------------


def test_audit_log_records_every_change_in_a_chain(
    clock: FakeClock, cli: CliRunnerInProcess, push: Pusher
) -> None:
    ok(cli("models", "create", "a"))
    ok(cli("models", "create", "ab"))
    push("a", b"a1")
    push("ab", b"ab1")
    ok(cli("alias", "set", "a@1", "champion"))
    ok(cli("promote", "a@1", "--to", "production"))
    ok(cli("archive", "ab@1"))

    events = ok_json_lines(cli, "audit", "log")
    assert [(e["action"], e["subject"]) for e in events] == [
        ("model.create", "a"),
        ("model.create", "ab"),
        ("version.push", "a@1"),
        ("version.push", "ab@1"),
        ("alias.set", "a@champion"),
        ("alias.promote", "a@production"),
        ("version.archive", "ab@1"),
    ]
    assert [e["seq"] for e in events] == list(range(1, 8))
    assert events[0]["prev_hash"] == "0" * 64
    for previous, event in itertools.pairwise(events):
        assert event["prev_hash"] == previous["hash"]
        assert event["actor"].startswith("local:")
    assert events[2]["details"]["digest"] == ok_json(cli, "show", "a@1")["digest"]
    assert events[5]["details"]["new_digest"] == events[2]["details"]["digest"]

    only_a = ok_json_lines(cli, "audit", "log", "--model", "a")
    assert [e["seq"] for e in only_a] == [1, 3, 5, 6]
    since = ok_json_lines(cli, "audit", "log", "--since", _mid(events[4]["at"], events[5]["at"]))
    assert [e["seq"] for e in since] == [6, 7]
    exact = ok_json_lines(cli, "audit", "log", "--since", events[5]["at"])
    assert [e["seq"] for e in exact] == [6, 7]
    assert "alias.promote" in ok(cli("audit", "log")).out

    report = ok_json(cli, "audit", "verify")
    assert report == {
        "ok": True,
        "checked": 7,
        "first_bad_seq": None,
        "problem": None,
        "checkpoints": [],
        "checkpoint": None,
    }
    assert "intact" in ok(cli("audit", "verify")).out
