"""Runs, metric points, datasets and lineage: the same behaviour in process, over HTTP
served in process, and against a live server."""

from __future__ import annotations

import array
import base64
import hashlib
import math
import random
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pandas as pd
import pytest

import modelkeep
from modelkeep.client.metrics_buffer import check_metric, pack_points
from modelkeep.client.reproduce import reproduce
from modelkeep.config import Settings
from modelkeep.content import chunking
from modelkeep.errors import (
    DatasetNotFound,
    InvalidInput,
    MissingMetadata,
    ModelNotFound,
    RunEnded,
    RunNotFound,
)
from modelkeep.services import maintenance
from modelkeep.services.context import ServiceContext
from tests.conftest import served_app

# Also on the in-memory store (tests/conftest.py); a test that reaches into SQL says so.
pytestmark = pytest.mark.backends("sqlite", "postgresql", "memory")

MIB = 1024 * 1024


@pytest.mark.transport  # metrics sent from a background thread beside the main one
def test_a_run_records_params_metrics_and_how_it_ended(mk: modelkeep.Client) -> None:
    with mk.start_run("fraud", seed=7, params={"lr": 0.1}, name="baseline") as run:
        run.log_params({"depth": 6})
        for step in range(250):
            run.log_metric("loss", 1 / (step + 1), step=step)
        run.log_metrics({"auc": 0.91, "odd": math.nan, "big": math.inf})
    done = mk.run(run.id)
    assert (done.status, done.seed, done.name, done.experiment) == (
        "finished",
        7,
        "baseline",
        "fraud",
    )
    assert dict(done.params) == {"lr": 0.1, "depth": 6}
    assert done.metrics["loss"] == pytest.approx(1 / 250)
    assert done.metrics["auc"] == 0.91
    assert math.isnan(done.metrics["odd"] or 0.0) and done.metrics["big"] == math.inf
    assert done.environment.python and done.environment.packages_digest
    assert done.ended_at is not None and done.ended_at >= done.started_at
    assert [r.id for r in mk.runs("fraud")] == [run.id]


def test_the_sdk_reproduces_a_run_as_the_cli_does(mk: modelkeep.Client, tmp_path: Path) -> None:
    with mk.start_run("fraud", seed=3, params={"lr": 0.1}) as run:
        pass
    plan = reproduce(mk, run.id)
    assert (plan["run"], plan["seed"], plan["params"], plan["checkout"]) == (
        run.id,
        3,
        {"lr": 0.1},
        None,
    )
    assert plan == reproduce(mk, mk.run(run.id))
    done = reproduce(mk, run.id, tmp_path / "rerun")
    files = done["checkout"]["files"]
    assert done["checkout"]["dir"] == str(tmp_path / "rerun")
    assert files[0] == "lock.txt" and files[-3:] == ["params.json", "run.json", "reproduce.sh"]
    lock = (tmp_path / "rerun" / "lock.txt").read_bytes()
    assert (
        "sha256:" + hashlib.sha256(lock).hexdigest() == mk.run(run.id).environment.packages_digest
    )


def test_points_logged_before_an_exception_are_kept_and_the_run_failed(
    mk: modelkeep.Client,
) -> None:
    def train() -> str:
        with mk.start_run("fraud") as run:
            for step in range(100):
                run.log_metric("loss", 1.0, step=step)
            ids.append(run.id)
            return str(1 / 0)

    ids: list[str] = []
    with pytest.raises(ZeroDivisionError):
        train()
    run = mk.run(ids[0])
    failed = run
    assert failed.status == "failed"
    assert failed.error == "ZeroDivisionError: division by zero"
    assert mk.metric_series("loss", [run.id])[0].total == 100


def test_an_ended_run_takes_nothing_more(mk: modelkeep.Client) -> None:
    run = mk.start_run("fraud")
    run.end()
    with pytest.raises(RunEnded, match="has ended"):
        mk.log_run_params(run.id, {"x": 1})
    with pytest.raises(RunEnded):
        mk.log_run_metrics(run.id, {"loss": 1.0})
    with pytest.raises(RunNotFound):
        mk.run("0123456789ab")


def test_a_param_keeps_its_value_and_limits_are_clear(mk: modelkeep.Client) -> None:
    with mk.start_run("fraud", params={"lr": 0.1}) as run:
        with pytest.raises(InvalidInput, match="'lr'"):
            run.log_params({"lr": 0.2})
        with pytest.raises(InvalidInput, match="250"):
            run.log_metric("x" * 10_000, 1.0)
        with pytest.raises(Exception, match="8192"):
            run.log_params({"blob": "y" * 100_000})


def test_metric_series_of_many_runs_are_downsampled_keeping_the_ends(
    mk: modelkeep.Client,
) -> None:
    ids = []
    for seed in range(3):
        with mk.start_run("sweep", seed=seed) as run:
            run.log_metrics({"loss": 1.0}, step=0)
            for step in range(1, 2000):
                run.log_metric("loss", float(seed * 10_000 + step), step=step)
        ids.append(run.id)
    series = mk.metric_series("loss", ids, max_points=50)
    assert [s.run for s in series] == ids
    for seed, one in enumerate(series):
        assert one.total == 2000 and len(one.points) == 50
        assert one.points[0] == (0, 1.0)
        assert one.points[-1] == (1999, float(seed * 10_000 + 1999))


def test_a_dataset_version_keeps_its_provenance_and_profile(
    mk: modelkeep.Client, tmp_path: Path
) -> None:
    frame = pd.DataFrame(
        {"amount": [1.5, 2.5, None, 10.0], "kind": ["a", "b", "a", None], "n": [1, 2, 3, 4]}
    )
    frame.to_csv(tmp_path / "tx.csv", index=False)
    (tmp_path / "notes.csv").write_bytes(b"\x00\x01\x02 not csv \xff")
    version = mk.push_dataset(
        "tx",
        [tmp_path / "tx.csv", tmp_path / "notes.csv"],
        source="s3://raw/tx/2026-11",
        steps=["drop duplicates", "clip amount"],
        sampling="all rows",
        version="1.0.0",
    )
    assert (version.ref, version.semver, version.steps) == (
        "tx@1",
        "1.0.0",
        ("drop duplicates", "clip amount"),
    )
    profile = version.profiles["tx.csv"]
    assert profile["rows"] == 4
    amount = next(c for c in profile["columns"] if c["name"] == "amount")
    assert amount["missing"] == 1
    assert amount["mean"] == pytest.approx(frame["amount"].mean())
    assert "reason" in version.profiles["notes.csv"]
    assert mk.dataset("tx@1.0.0").digest == version.digest == mk.dataset("tx").digest
    mk.pull_dataset("tx@1", tmp_path / "out")
    assert (tmp_path / "out" / "tx.csv").read_bytes() == (tmp_path / "tx.csv").read_bytes()
    with pytest.raises(DatasetNotFound):
        mk.dataset("tx@7")


def test_lineage_walks_data_to_run_to_model_and_back(mk: modelkeep.Client, tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("x\n1\n")
    mk.push_dataset("raw", [tmp_path / "d.csv"])
    mk.create_model("fraud", require=["seed"])
    (tmp_path / "m.bin").write_bytes(b"weights")
    with pytest.raises(MissingMetadata):
        mk.push("fraud", [tmp_path / "m.bin"])
    with mk.start_run("fraud", seed=3) as run:
        run.use_dataset("raw@1")
        version = run.push_model("fraud", [tmp_path / "m.bin"])  # seed met through the run
    assert version.metadata.run == run.id
    up = mk.lineage("fraud@1")
    assert set(up.edges) == {("dataset:raw@1", f"run:{run.id}"), (f"run:{run.id}", "model:fraud@1")}
    down = mk.lineage("dataset:raw@1", direction="downstream")
    assert "model:fraud@1" in down.nodes
    assert down.to_dot().startswith("digraph lineage {")
    with pytest.raises(ModelNotFound, match=r"a dataset 'raw' does.*write dataset:raw@1"):
        mk.lineage("raw@1")  # a dataset named without its kind
    with pytest.raises(ModelNotFound, match="'nothing' does not exist; "):
        mk.lineage("nothing@1")


def test_a_run_captures_its_git_commit_and_dirty_diff(
    mk: modelkeep.Client, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (repo / "train.py").write_text("print('v1')\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "v1"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True)
    (repo / "train.py").write_text("print('v2')\n")
    monkeypatch.chdir(repo)
    with mk.start_run("fraud") as run:
        pass
    done = mk.run(run.id)
    assert done.code.commit == head.stdout.strip()
    assert (done.code.branch, done.code.dirty) == ("main", True)
    assert done.code.diff_digest is not None


def test_gc_keeps_what_runs_and_datasets_need(
    settings: Settings, registry: ServiceContext, tmp_path: Path
) -> None:
    big = random.Random(1).randbytes(chunking.WHOLE_BELOW + MIB)  # stored as chunks
    (tmp_path / "big.parquet").write_bytes(big)
    (tmp_path / "small.csv").write_text("a\n1\n")
    (tmp_path / "report.txt").write_text("evaluation")
    with modelkeep.connect(settings=settings) as mk:
        mk.push_dataset("data", [tmp_path / "big.parquet", tmp_path / "small.csv"])
        with mk.start_run("e") as run:
            run.log_artifact(tmp_path / "report.txt")
        done = mk.run(run.id)
        report = maintenance.gc(registry, grace_seconds=0)
        assert report.blobs == 0, report
        assert registry.blobs.has(str(done.environment.packages_digest))
        mk.pull_dataset("data@1", tmp_path / "out")
        assert (tmp_path / "out" / "big.parquet").read_bytes() == big
        assert maintenance.verify(registry).ok


@pytest.mark.transport  # a non-ASCII metric name in the URL path
def test_the_points_left_at_the_end_are_stored_with_the_end(mk: modelkeep.Client) -> None:
    with mk.start_run("fraud") as run:
        run.log_metrics({"a": 1.0, "b": -math.inf}, step=0)
        run.log_metric("a", math.nan, step=1)
        run.log_metric("é" * 250, 2.5)
    done = mk.run(run.id)
    assert done.status == "finished"
    (a,) = mk.metric_series("a", [run.id])
    assert a.total == 2 and a.points[0] == (0, 1.0) and math.isnan(a.points[1][1])
    assert mk.metric_series("b", [run.id])[0].points == ((0, -math.inf),)
    assert mk.metric_series("é" * 250, [run.id])[0].points == ((0, 2.5),)
    with pytest.raises(InvalidInput, match="the run has ended"):
        run.log_metric("a", 1.0)


def test_end_answers_the_stored_run_and_a_second_end_changes_nothing(
    mk: modelkeep.Client,
) -> None:
    run = mk.start_run("fraud")
    run.log_metric("loss", 0.5)
    ended = run.end("failed", "diverged")
    assert (ended.status, ended.error, ended.metrics) == ("failed", "diverged", {"loss": 0.5})
    assert run.end().status == "failed"


def packed(code: str, items: Iterable[float]) -> str:
    """A column as ``pack_points`` writes it (this machine is little-endian)."""
    assert sys.byteorder == "little"
    return base64.b64encode(array.array(code, items).tobytes()).decode()


def test_packed_points_are_checked_and_stored_whole(settings: Settings) -> None:

    with served_app(settings, "contributor") as (http, token):
        auth = {"authorization": f"Bearer {token}"}
        run_id = http.post("/api/v1/runs", json={"experiment": "e"}, headers=auth).json()["id"]
        url = f"/api/v1/runs/{run_id}/metrics/packed"
        values = [1.5, math.nan, math.inf, -0.0, 1e-300]
        names = "abaab"
        good = pack_points([check_metric(names[s], v, s) for s, v in enumerate(values)])
        assert good["names"] == ["a", "b"]
        assert http.post(url, json=good, headers=auth).json() == {"stored": 5}
        one = pack_points([check_metric("a", 1.0, 0)])
        for bad in (
            {**good, "values": "not base64!"},
            {**good, "steps": packed("i", range(5))},  # 20 bytes: not whole int64 items
            {**good, "index": one["index"]},  # one point where the others have five
            {**good, "names": ["a"]},  # index 1 has no name
            {**good, "names": ["a", "x" * 251]},
            {**good, "names": ["a", "tab\there"]},
            {**good, "steps": packed("q", [0, 1, -1, 3, 4])},
            {**good, "at": packed("d", [1e9] * 4 + [math.nan])},
        ):
            answer = http.post(url, json=bad, headers=auth)
            assert (answer.status_code, answer.json()["error"]["code"]) == (400, "invalid_input")
        series = http.get("/api/v1/metrics/a", params={"runs": run_id}, headers=auth).json()
        assert series["series"][0]["values"] == [1.5, "Infinity", -0.0]
        finish = {"status": "killed", "error": "stop", "points": one}
        finished = http.post(f"/api/v1/runs/{run_id}/finish", json=finish, headers=auth)
        assert finished.json() == {"stored": 1}
        assert http.post(url, json=one, headers=auth).json()["error"]["code"] == "run_ended"
        run = http.get(f"/api/v1/runs/{run_id}", headers=auth).json()
        assert (run["status"], run["error"]) == ("killed", "stop")


def test_a_bad_metric_batch_is_refused_whole(settings: Settings) -> None:
    with served_app(settings, "contributor") as (http, token):
        auth = {"authorization": f"Bearer {token}"}
        started = http.post("/api/v1/runs", json={"experiment": "e"}, headers=auth)
        assert started.status_code == 201
        url = f"/api/v1/runs/{started.json()['id']}/metrics"
        good = {"names": ["a", "a"], "steps": [0, 1], "values": [1.0, "NaN"], "at": [1e9, 1e9]}
        assert http.post(url, json=good, headers=auth).json() == {"stored": 2}
        for bad in (
            {**good, "values": [1.0, "one"]},
            {**good, "steps": [0]},
            {**good, "at": [1e9, -5.0]},
        ):
            answer = http.post(url, json=bad, headers=auth)
            assert (answer.status_code, answer.json()["error"]["code"]) == (400, "invalid_input")
        series = http.get("/api/v1/metrics/a", params={"runs": started.json()["id"]}, headers=auth)
        assert series.json()["series"][0]["values"] == [1.0, "NaN"]
