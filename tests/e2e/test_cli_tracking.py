"""``runs``, ``datasets`` and ``lineage`` through the CLI, on SQLite and PostgreSQL: the
round trips, the JSON documents, the errors, and ``runs reproduce --checkout`` run for
real (with a stand-in for the venv's pip, so no network is needed)."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import modelkeep
from modelkeep.config import Settings
from tests.conftest import CliRunnerInProcess
from tests.e2e.support import assert_error_line, ok, ok_json, refused, sha256

GIT = [
    "git",
    "-c",
    "user.name=t",
    "-c",
    "user.email=t@example.com",
    "-c",
    "init.defaultBranch=main",
]
RUN_KEYS = {
    "id",
    "experiment",
    "name",
    "status",
    "error",
    "seed",
    "params",
    "metrics",
    "datasets",
    "artifacts",
    "code",
    "environment",
    "notes",
    "started_at",
    "ended_at",
    "created_by",
    "model_versions",
}
CSV = b"amount,kind\n1.5,card\n2.5,cash\n,card\n"


def git(repo: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository with one commit and uncommitted changes; the working directory."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "train.py").write_text(TRAIN.format(version="committed"))
    git(root, "add", "train.py")
    git(root, "commit", "-q", "-m", "first")
    (root / "train.py").write_text(TRAIN.format(version="changed after the commit"))
    (root / "extra.txt").write_text("an untracked file\n")
    monkeypatch.chdir(root)
    return root


TRAIN = """\
import json, os, sys
result = {{
    "version": "{version}",
    "seed": os.environ["SEED"],
    "argv": sys.argv[1:],
    "extra": open("extra.txt").read(),
    "data": sorted(os.listdir(os.environ["DATASETS"])),
}}
with open(os.environ["OUT"], "w") as out:
    json.dump(result, out)
"""


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "tx.csv").write_bytes(CSV)
    (folder / "x.csv").write_bytes(b"\x00\x01 not a table \xff")
    return folder


def start(cli: CliRunnerInProcess, *options: str) -> str:
    run_id = ok(cli("runs", "start", *options)).out.strip()
    assert re.fullmatch(r"[0-9a-f]{12}", run_id), run_id
    return run_id


def test_runs_start_log_end_show_list_compare(cli: CliRunnerInProcess, repo: Path) -> None:
    document = ok_json(
        cli, "runs", "start", "--experiment", "fraud", "--param", "lr=0.1", "--seed", "7"
    )
    assert set(document) == RUN_KEYS
    assert document["status"] == "running"
    assert document["params"] == {"lr": 0.1}
    assert document["seed"] == 7
    assert document["code"]["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert document["code"]["dirty"] is True
    first = document["id"]
    second = start(cli, "--experiment", "fraud", "--param", "lr=0.3", "--name", "wide")

    logged = ok_json(
        cli,
        *("runs", "log", first, "--param", "layers=2", "--metric", "loss=nan"),
        *("--metric", "auc=0.91", "--step", "3"),
    )
    assert logged["params"] == {"lr": 0.1, "layers": 2}
    assert logged["metrics"] == {"loss": "NaN", "auc": 0.91}
    out = ok(cli("runs", "log", second, "--metric", "auc=0.95", "--metric", "f1=-inf")).out
    assert out == f"logged 0 params, 2 metrics at step 0, 0 datasets to run {second}\n"

    shown = ok(cli("runs", "show", first)).out
    assert re.search(r"metric loss +NaN", shown), shown
    assert re.search(r"metric auc +0\.91", shown), shown
    assert re.search(r"param layers +2", shown), shown
    assert re.search(r"changes +uncommitted, patch sha256:", shown), shown
    assert ok_json(cli, "runs", "show", first)["metrics"]["loss"] == "NaN"

    listed = ok_json(cli, "runs", "list", "--experiment", "fraud")
    assert sorted(r["id"] for r in listed) == sorted([first, second])
    assert ok_json(cli, "runs", "list", "--experiment", "other") == []
    table = ok(cli("runs", "list")).out
    assert table.splitlines()[0].split() == [
        "id", "experiment", "name", "status", "started", "auc", "f1", "loss"
    ]  # fmt: skip
    assert re.search(rf"{first} +fraud +running .* 0\.91 +- +NaN", table), table
    assert re.search(rf"{second} +fraud +wide +running .* 0\.95 +-Infinity +-", table), table

    compared = ok_json(cli, "runs", "compare", first, second)
    assert [r["id"] for r in compared["runs"]] == [first, second]
    assert compared["params"] == {"layers": {first: 2}, "lr": {first: 0.1, second: 0.3}}
    assert compared["metrics"] == {
        "auc": {first: 0.91, second: 0.95},
        "f1": {second: "-Infinity"},
        "loss": {first: "NaN"},
    }
    side = ok(cli("runs", "compare", first, second)).out
    assert side.splitlines()[0].split() == [first, second]
    assert re.search(r"param lr +0\.1 +0\.3", side), side
    assert re.search(r"metric loss +NaN +-", side), side
    assert_error_line(cli("runs", "compare", first), "usage", exit_code=2)

    ended = ok_json(cli, "runs", "end", first)
    assert ended["status"] == "finished"
    assert ended["ended_at"] is not None
    assert ok(cli("runs", "end", second, "--status", "failed", "--error", "oom")).out == (
        f"run {second} failed\n"
    )
    assert ok_json(cli, "runs", "show", second)["error"] == "oom"

    refused(cli, "runs", "log", first, "--metric", "loss=1", code="run_ended")
    refused(cli, "runs", "log", first, "--param", "x=1", code="run_ended")
    refused(cli, "runs", "end", first, code="run_ended")
    refused(cli, "runs", "show", "0123456789ab", code="run_not_found")
    refused(cli, "runs", "show", "nope", code="invalid_input")
    refused(cli, "runs", "log", second, code="usage", exit_code=2)  # nothing to log
    refused(cli, "runs", "end", second, "--error", "x", code="usage", exit_code=2)
    refused(cli, "runs", "log", second, "--metric", "loss=high", code="invalid_metadata")


def test_a_param_keeps_its_value(cli: CliRunnerInProcess, repo: Path) -> None:
    run_id = start(cli, "--experiment", "e", "--param", "lr=0.1")
    ok(cli("runs", "log", run_id, "--param", "lr=0.1"))  # the same value again is fine
    line = refused(cli, "runs", "log", run_id, "--param", "lr=0.2", code="invalid_input")
    assert "is 0.1 already" in line


def test_datasets_push_show_versions_list_pull(
    cli: CliRunnerInProcess, data: Path, tmp_path: Path
) -> None:
    pushed = ok_json(
        cli,
        *("datasets", "push", "tx", str(data / "tx.csv"), str(data / "x.csv")),
        *("--version", "1.0.0", "--source", "s3://raw/tx", "--step", "dedupe"),
        *("--step", "drop test rows", "--sampling", "all rows", "--message", "first"),
    )
    assert (pushed["dataset"], pushed["number"], pushed["semver"]) == ("tx", 1, "1.0.0")
    assert pushed["steps"] == ["dedupe", "drop test rows"]
    assert pushed["source"] == "s3://raw/tx"
    assert pushed["sampling"] == "all rows"
    assert {f["path"]: f["digest"] for f in pushed["files"]}["tx.csv"] == sha256(CSV)
    profile = pushed["profiles"]["tx.csv"]
    assert profile["rows"] == 3
    assert [(c["name"], c["kind"]) for c in profile["columns"]] == [
        ("amount", "number"),
        ("kind", "category"),
    ]
    assert "not valid CSV" in pushed["profiles"]["x.csv"]["reason"]

    again = tmp_path / "again"
    again.mkdir()
    (again / "tx.csv").write_bytes(CSV + b"3.5,cash\n")
    lines = ok(cli("datasets", "push", "tx", str(again / "tx.csv"))).out.splitlines()
    assert re.fullmatch(r"pushed dataset tx@2 sha256:[0-9a-f]{64} \(1 file, 45 B\)", lines[0])
    assert lines[1:] == ["  tx.csv: profiled: 4 rows, 2 columns"]

    shown = ok(cli("datasets", "show", "tx@1.0.0")).out
    assert re.search(r"source +s3://raw/tx", shown), shown
    assert re.search(r"step 2 +drop test rows", shown), shown
    assert "tx.csv (csv, 3 rows)" in shown
    assert re.search(r"amount +double +1 \(33\.3%\) +1\.5 +2\.5 +2 +-", shown), shown
    assert re.search(r"kind +string +0 \(0\.0%\) +- +- +- +card \(2\), cash \(1\)", shown), shown
    assert re.search(r"x\.csv .* not profiled: x\.csv is not valid CSV", shown), shown
    assert ok_json(cli, "datasets", "show", "tx@1") == pushed

    assert [v["number"] for v in ok_json(cli, "datasets", "versions", "tx")] == [1, 2]
    assert ok_json(cli, "datasets", "list") == [{"name": "tx", "versions": 2}]
    table = ok(cli("datasets", "versions", "tx")).out.splitlines()
    assert table[0].split() == [
        "#",
        "semver",
        "digest",
        "files",
        "size",
        "created",
        "by",
        "message",
    ]
    assert table[1].split()[:6] == ["1", "1.0.0", pushed["digest"][:19], "2", "52", "B"]

    dest = tmp_path / "pulled"
    result = ok_json(cli, "datasets", "pull", "tx@1", str(dest))
    assert sorted(result["written"]) == ["tx.csv", "x.csv"]
    assert (dest / "tx.csv").read_bytes() == CSV
    assert (dest / "x.csv").read_bytes() == (data / "x.csv").read_bytes()
    assert ok_json(cli, "datasets", "pull", "tx@1", str(dest))["written"] == []
    (dest / "tx.csv").write_bytes(b"edited")
    refused(cli, "datasets", "pull", "tx@1", str(dest), code="destination_conflict")
    ok(cli("datasets", "pull", "tx@1", str(dest), "--force"))
    assert (dest / "tx.csv").read_bytes() == CSV

    refused(cli, "datasets", "show", "nope@1", code="dataset_not_found")
    refused(cli, "datasets", "show", "tx@9", code="dataset_not_found")


def test_a_file_named_csv_that_is_not_csv_says_why_it_has_no_profile(
    cli: CliRunnerInProcess, data: Path
) -> None:
    out = ok(cli("datasets", "push", "junk", str(data / "x.csv"))).out
    assert out.splitlines()[1].startswith("  x.csv: not profiled: x.csv is not valid CSV")
    shown = ok(cli("datasets", "show", "junk@latest")).out
    assert "not profiled: x.csv is not valid CSV" in shown
    assert "(csv," not in shown  # no profile table


def parse_dot(text: str) -> tuple[set[str], set[tuple[str, str]]]:
    """The nodes and edges of the digraph ``to_dot`` writes; fails on anything else."""
    lines = text.splitlines()
    assert lines[0] == "digraph lineage {" and lines[-1] == "}", text
    nodes: set[str] = set()
    edges: set[tuple[str, str]] = set()
    for line in lines[1:-1]:
        if edge := re.fullmatch(r'  "([^"]+)" -> "([^"]+)";', line):
            edges.add((edge.group(1), edge.group(2)))
        elif node := re.fullmatch(r'  "([^"]+)" \[shape=\w+(, style=bold)?\];', line):
            nodes.add(node.group(1))
        else:
            assert re.fullmatch(r"  \w+=\w+;", line), line
    assert {n for edge in edges for n in edge} <= nodes
    return nodes, edges


def test_lineage_dataset_run_model(
    cli: CliRunnerInProcess, repo: Path, data: Path, tmp_path: Path
) -> None:
    ok(cli("datasets", "push", "tx", str(data / "tx.csv")))
    run_id = start(cli, "--experiment", "fraud")
    ok(cli("runs", "log", run_id, "--metric", "auc=0.9", "--dataset", "tx@latest"))
    assert ok_json(cli, "runs", "show", run_id)["datasets"] == ["tx@1"]
    ok(cli("models", "create", "m"))
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"weights")
    ok(cli("push", "m", str(weights), "--run", run_id))
    ok(cli("runs", "end", run_id))

    run_node = f"run:{run_id}"
    graph = ok_json(cli, "lineage", "m@1")
    assert graph["root"] == "model:m@1"
    assert graph["direction"] == "upstream"
    assert {(n["id"], n["kind"]) for n in graph["nodes"]} == {
        ("dataset:tx@1", "dataset"),
        (run_node, "run"),
        ("model:m@1", "model"),
    }
    expected = {("dataset:tx@1", run_node), (run_node, "model:m@1")}
    assert {(e["from"], e["to"]) for e in graph["edges"]} == expected
    assert ok(cli("lineage", "m@1")).out == (f"model:m@1\n  <- {run_node}\n    <- dataset:tx@1\n")

    nodes, edges = parse_dot(ok(cli("lineage", "m@1", "--dot")).out)
    assert nodes == {"dataset:tx@1", run_node, "model:m@1"}
    assert edges == expected

    down = ok_json(cli, "lineage", "dataset:tx@1", "--downstream")
    assert {(e["from"], e["to"]) for e in down["edges"]} == expected
    assert ok(cli("lineage", f"run:{run_id}", "--both")).out == (
        f"{run_node}\n  <- dataset:tx@1\n  -> model:m@1\n"
    )
    assert ok(cli("lineage", "m@1", "--downstream")).out == "model:m@1\n  (nothing downstream)\n"
    assert_error_line(cli("lineage", "m@1", "--dot", "--json"), "usage", exit_code=2)
    refused(cli, "runs", "log", run_id, "--dataset", "tx@1", code="run_ended")
    other = start(cli, "--experiment", "fraud")
    refused(cli, "runs", "log", other, "--dataset", "nope@1", code="dataset_not_found")


FAKE_PYTHON = """\
#!/bin/sh
# A stand-in interpreter for reproduce.sh: '-m venv DIR' makes a venv whose pip does
# nothing (no network in tests) and whose python is the real one.
if [ "$1" = "-m" ]; then
  mkdir -p "$3/bin"
  printf '#!/bin/sh\\necho "pip $*" >> "$PIP_LOG"\\n' > "$3/bin/pip"
  chmod +x "$3/bin/pip"
  ln -s {real} "$3/bin/python"
  exit 0
fi
exec {real} "$@"
"""


def reproduced_run(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> str:
    """A run started by a training script (its command line recorded) that read tx@1."""
    monkeypatch.setattr(sys, "argv", ["train.py", "--lr", "0.1"])
    with (
        modelkeep.connect(settings=settings) as mk,
        mk.start_run("fraud", params={"lr": 0.1}, seed=7) as run,
    ):
        run.use_dataset("tx@1")
        run.log_metric("loss", math.nan)
        return run.id


def test_reproduce_prints_and_prepares_a_checkout_that_reruns(
    cli: CliRunnerInProcess,
    settings: Settings,
    repo: Path,
    data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ok(cli("datasets", "push", "tx", str(data / "tx.csv")))
    run_id = reproduced_run(settings, monkeypatch)
    commit = git(repo, "rev-parse", "HEAD").strip()

    plan = ok_json(cli, "runs", "reproduce", run_id)
    assert plan["code"]["commit"] == commit
    assert plan["code"]["dirty"] is True
    assert plan["command"] == "python train.py --lr 0.1"
    assert plan["seed"] == 7
    assert plan["params"] == {"lr": 0.1}
    assert plan["datasets"] == [
        {"ref": "tx@1", "dir": "datasets/tx", "pull": "modelkeep datasets pull tx@1 datasets/tx"}
    ]
    assert plan["checkout"] is None
    human = ok(cli("runs", "reproduce", run_id)).out
    assert f"commit    {commit} on main" in human
    assert "command   python train.py --lr 0.1" in human
    assert "datasets  modelkeep datasets pull tx@1 datasets/tx" in human

    target = tmp_path / "checkout"
    prepared = ok_json(cli, "runs", "reproduce", run_id, "--checkout", str(target))
    assert prepared["checkout"]["files"] == [
        "lock.txt",
        "changes.patch",
        "params.json",
        "run.json",
        "datasets/tx/",
        "reproduce.sh",
    ]
    run: dict[str, Any] = json.loads((target / "run.json").read_text())
    assert sha256((target / "lock.txt").read_bytes()) == run["environment"]["packages_digest"]
    assert sha256((target / "changes.patch").read_bytes()) == run["code"]["diff_digest"]
    assert "modelkeep==" in (target / "lock.txt").read_text()
    assert json.loads((target / "params.json").read_text()) == {"lr": 0.1}
    assert (target / "datasets" / "tx" / "tx.csv").read_bytes() == CSV
    refused(
        cli, "runs", "reproduce", run_id, "--checkout", str(target), code="destination_conflict"
    )

    # reproduce.sh, run from the repository: a worktree of the commit with the patch
    # applied, a venv (pip stands in), and the recorded command with the seed.
    fake = tmp_path / "fake-python"
    fake.write_text(FAKE_PYTHON.format(real=sys.executable))
    fake.chmod(0o755)
    out = tmp_path / "out.json"
    environ = {
        "PATH": "/usr/bin:/bin",
        "PYTHON": str(fake),
        "PIP_LOG": str(tmp_path / "pip.log"),
        "OUT": str(out),
        "HOME": str(tmp_path),
    }
    subprocess.run(
        ["sh", str(target / "reproduce.sh")], cwd=repo, env=environ, check=True, capture_output=True
    )
    assert json.loads(out.read_text()) == {
        "version": "changed after the commit",
        "seed": "7",
        "argv": ["--lr", "0.1"],
        "extra": "an untracked file\n",
        "data": ["tx"],
    }
    assert git(target / "src", "rev-parse", "HEAD").strip() == commit
    pip = (tmp_path / "pip.log").read_text().splitlines()
    assert pip == [f"pip install --no-deps -r {target / 'lock.txt'}"]


def test_reproduce_says_what_a_cli_started_run_did_not_record(
    cli: CliRunnerInProcess, repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["/venv/bin/modelkeep", "runs", "start", "--experiment", "e"])
    run_id = start(cli, "--experiment", "e")
    plan = ok_json(cli, "runs", "reproduce", run_id)
    assert plan["command"] is None
    assert plan["recorded_command"][:3] == ["/venv/bin/modelkeep", "runs", "start"]
    assert any("'modelkeep runs start'" in note for note in plan["notes"])
    assert "command   not recorded" in ok(cli("runs", "reproduce", run_id)).out
    target = tmp_path / "co"
    ok(cli("runs", "reproduce", run_id, "--checkout", str(target)))
    script = (target / "reproduce.sh").read_text()
    assert script.rstrip().endswith("exit 1")
    assert "no command line was recorded" in script


def test_tracking_page_commands_parse() -> None:
    """Every ``modelkeep ...`` line of docs/tracking.md is a real command line."""
    from tests.test_docs import check_parses, modelkeep_invocations, read, shell_commands

    found = [
        args for line in shell_commands(read("tracking.md")) for args in modelkeep_invocations(line)
    ]
    assert len(found) >= 10
    for args in found:
        check_parses(args)
