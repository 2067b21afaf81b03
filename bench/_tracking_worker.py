"""Workers of bench/tracking.py: one measurement per process, for modelkeep (run with the
project's .venv/bin/python) or MLflow (bench/.venv-mlflow/bin/python), chosen by ``--tool``.

``--scenario points``  warm up with ``--warmup`` points in a run of its own, then time
                       ``--count`` points of one metric logged into one new run until they are
                       stored: modelkeep ``run.log_metric`` per point + ``run.flush()``; MLflow
                       ``log_batch`` of 1000 ``Metric`` objects at a time (its best; the
                       objects are built in the timed loop, as modelkeep's points are). The
                       stored count is checked afterwards (untimed).
``--scenario runs``    warm up with ``--warmup`` runs in experiment ``warmup``, then time
                       ``--count`` runs in experiment ``bench``, each with 20 params and 20
                       metrics (one value each), created and ended: modelkeep ``with
                       mk.start_run(experiment, params=p) as run: run.log_metrics(m, step=0)``;
                       MLflow ``create_run`` + ``log_batch(params, metrics)`` +
                       ``set_terminated``. Then time the query of metric ``m0`` across those
                       runs, ``--reps`` times after one untimed call: modelkeep
                       ``mk.metric_series("m0", ids, max_points=1000)`` (and ``mk.runs(...)``,
                       informational); MLflow ``search_runs([bench])`` (latest values) and
                       ``get_metric_history(id, "m0")`` for every run (the full series).

``--uri`` is a server URL (``--token`` for modelkeep); without it the tool runs in process on
a fresh store in ``--workdir`` (modelkeep: embedded SQLite + local blobs under ``store``;
MLflow: ``_mlflow_worker.connect``, SQLite + local artifacts). The process first moves into
a new temporary directory outside any git work tree, so modelkeep's run start (which records
git state and the installed packages, and is timed) does the same work as MLflow's there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import WorkerArgs, summarize_ns, write_result

BATCH = 1000  # MLflow's log_batch limit of metrics per call
METRIC = "loss"
QUERIED = "m0"
EXPERIMENT = "bench"
WARM_EXPERIMENT = "warmup"
WIDTH = 20  # params and metrics per run


def params_of(i: int) -> dict[str, float]:
    return {f"p{j}": round(i * 0.001 + j, 6) for j in range(WIDTH)}


def metrics_of(i: int) -> dict[str, float]:
    return {f"m{j}": 1.0 / (i + j + 1) for j in range(WIDTH)}


def values_of(count: int) -> list[float]:
    return [1.0 / (i + 1) for i in range(count)]


def clocked(op: Callable[[], Any]) -> tuple[float, float, Any]:
    """(wall seconds, process CPU seconds of all threads, result) of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    result = op()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def repeat_ms(op: Callable[[], Any], reps: int) -> tuple[dict[str, float], Any]:
    """One untimed call, then ``reps`` timed ones: a latency summary in ms, and the result."""
    result = op()
    samples = []
    for _ in range(reps):
        start = time.perf_counter_ns()
        result = op()
        samples.append(time.perf_counter_ns() - start)
    return summarize_ns(samples), result


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


# ---------------------------------------------------------------- modelkeep


class Modelkeep:
    def __init__(self, ns: argparse.Namespace) -> None:
        import _modelkeep_worker

        import modelkeep

        self.version = _modelkeep_worker.version()
        uri = ns.uri or str((ns.workdir / "store").resolve())
        self.mk = modelkeep.connect(uri, token=ns.token)

    def log_points(self, experiment: str, values: list[float]) -> dict[str, Any]:
        run = self.mk.start_run(experiment=experiment)
        cpu, start = time.process_time(), time.perf_counter()
        for i, value in enumerate(values):
            run.log_metric(METRIC, value, step=i)
        enqueued = time.perf_counter()
        run.flush()
        end = time.perf_counter()
        cpu = time.process_time() - cpu
        run.end()
        return {
            "run": run.id,
            "seconds": end - start,
            "client_cpu_seconds": cpu,
            "enqueue_seconds": enqueued - start,
            "flush_seconds": end - enqueued,
        }

    def points(self, ns: argparse.Namespace) -> dict[str, Any]:
        self.log_points(WARM_EXPERIMENT, values_of(ns.warmup))
        timed = self.log_points(EXPERIMENT, values_of(ns.count))
        run_id = timed.pop("run")
        (series,) = self.mk.metric_series(METRIC, [run_id], max_points=1000)
        if series.total != ns.count:
            raise SystemExit(f"stored {series.total} points, expected {ns.count}")
        return {
            "timed": "run.log_metric(name, value, step=i) per point, then run.flush(); the "
            "run is started before and ended after the clock",
            "points": ns.count,
            "points_per_s": rate(ns.count, timed["seconds"]),
            **timed,
            "stored_points": series.total,
        }

    def one_run(self, experiment: str, i: int, steps: dict[str, list[int]]) -> str:
        t0 = time.perf_counter_ns()
        run = self.mk.start_run(experiment=experiment, params=params_of(i))
        t1 = time.perf_counter_ns()
        with run:
            run.log_metrics(metrics_of(i), step=0)
        t2 = time.perf_counter_ns()
        steps["start_run"].append(t1 - t0)
        steps["log_metrics_and_end"].append(t2 - t1)
        return str(run.id)

    def runs(self, ns: argparse.Namespace) -> dict[str, Any]:
        steps: dict[str, list[int]] = {"start_run": [], "log_metrics_and_end": []}
        for i in range(ns.warmup):
            self.one_run(WARM_EXPERIMENT, i, steps)
        steps = {name: [] for name in steps}
        ids: list[str] = []
        seconds, cpu, _ = clocked(
            lambda: ids.extend(self.one_run(EXPERIMENT, i, steps) for i in range(ns.count))
        )
        query, series = repeat_ms(
            lambda: self.mk.metric_series(QUERIED, ids, max_points=1000), ns.reps
        )
        listing, found = repeat_ms(lambda: self.mk.runs(experiment=EXPERIMENT), ns.reps)
        check_series(series, ids, [metrics_of(i)[QUERIED] for i in range(ns.count)])
        if len(found) != ns.count:
            raise SystemExit(f"mk.runs found {len(found)} runs, expected {ns.count}")
        return {
            "timed": "with mk.start_run(experiment='bench', params=<20>) as run: "
            "run.log_metrics(<20>, step=0)",
            "runs": ns.count,
            "seconds": seconds,
            "runs_per_s": rate(ns.count, seconds),
            "cpu_seconds": cpu,
            "steps": {name: summarize_ns(values) for name, values in steps.items()},
            "query": {
                "metric_series": {
                    "timed": f"mk.metric_series('{QUERIED}', <{ns.count} run ids>, "
                    "max_points=1000)",
                    **query,
                },
                "runs_list": {
                    "timed": "mk.runs(experiment='bench') (informational)",
                    **listing,
                },
            },
        }

    def close(self) -> None:
        self.mk.close()


def check_series(series: list[Any], ids: list[str], expected: list[float]) -> None:
    if [s.run for s in series] != ids:
        raise SystemExit("metric_series did not answer one series per run, in order")
    for s, value in zip(series, expected, strict=True):
        if s.total != 1 or len(s.points) != 1 or s.points[0][1] != value:
            raise SystemExit(f"run {s.run}: series {s.points} (total {s.total}), expected {value}")


# ---------------------------------------------------------------- MLflow


class Mlflow:
    def __init__(self, ns: argparse.Namespace) -> None:
        import _mlflow_worker
        import mlflow
        from mlflow import MlflowClient
        from mlflow.entities import Metric, Param

        self.version = mlflow.__version__
        self.Metric, self.Param = Metric, Param
        if ns.uri:
            mlflow.set_tracking_uri(ns.uri)
            self.client = MlflowClient(tracking_uri=ns.uri)
            self.experiment = self.client.create_experiment(EXPERIMENT)
        else:
            args = WorkerArgs(ns.scenario, ns.workdir, ns.out, ns.count, ns.warmup, 0.0, None)
            self.client, self.experiment = _mlflow_worker.connect(args)
        self.warm_experiment = self.client.create_experiment(WARM_EXPERIMENT)

    def log_points(self, experiment: str, values: list[float]) -> dict[str, Any]:
        run_id = str(self.client.create_run(experiment).info.run_id)
        metric, log_batch = self.Metric, self.client.log_batch
        cpu, start = time.process_time(), time.perf_counter()
        batch = []
        for i, value in enumerate(values):
            batch.append(metric(METRIC, value, int(time.time() * 1000), i))
            if len(batch) == BATCH:
                log_batch(run_id, metrics=batch)
                batch = []
        if batch:
            log_batch(run_id, metrics=batch)
        end = time.perf_counter()
        cpu = time.process_time() - cpu
        return {"run": run_id, "seconds": end - start, "client_cpu_seconds": cpu}

    def points(self, ns: argparse.Namespace) -> dict[str, Any]:
        self.log_points(self.warm_experiment, values_of(ns.warmup))
        timed = self.log_points(self.experiment, values_of(ns.count))
        run_id = timed.pop("run")
        stored = len(self.client.get_metric_history(run_id, METRIC))
        if stored != ns.count:
            raise SystemExit(f"stored {stored} points, expected {ns.count}")
        result: dict[str, Any] = {
            "timed": f"log_batch(run_id, metrics=<{BATCH} Metric objects>) per {BATCH} points "
            "(building the Metric objects included); create_run before the clock",
            "points": ns.count,
            "points_per_s": rate(ns.count, timed["seconds"]),
            **timed,
            "stored_points": stored,
        }
        if ns.single:
            run_id = str(self.client.create_run(self.experiment).info.run_id)
            log = self.client.log_metric
            single_s, _, _ = clocked(
                lambda: [log(run_id, "single", 1.0 / (i + 1), step=i) for i in range(ns.single)]
            )
            result["single_log_metric"] = {
                "timed": "client.log_metric(run_id, name, value, step=i) per point (informational)",
                "points": ns.single,
                "seconds": single_s,
                "points_per_s": rate(ns.single, single_s),
            }
        return result

    def one_run(self, experiment: str, i: int, steps: dict[str, list[int]]) -> str:
        metric, param = self.Metric, self.Param
        t0 = time.perf_counter_ns()
        run_id = str(self.client.create_run(experiment).info.run_id)
        t1 = time.perf_counter_ns()
        now = int(time.time() * 1000)
        metrics = [metric(k, v, now, 0) for k, v in metrics_of(i).items()]
        params = [param(k, str(v)) for k, v in params_of(i).items()]
        self.client.log_batch(run_id, metrics=metrics, params=params)
        t2 = time.perf_counter_ns()
        self.client.set_terminated(run_id)
        t3 = time.perf_counter_ns()
        steps["create_run"].append(t1 - t0)
        steps["log_batch"].append(t2 - t1)
        steps["set_terminated"].append(t3 - t2)
        return run_id

    def runs(self, ns: argparse.Namespace) -> dict[str, Any]:
        steps: dict[str, list[int]] = {"create_run": [], "log_batch": [], "set_terminated": []}
        for i in range(ns.warmup):
            self.one_run(self.warm_experiment, i, steps)
        steps = {name: [] for name in steps}
        ids: list[str] = []
        seconds, cpu, _ = clocked(
            lambda: ids.extend(self.one_run(self.experiment, i, steps) for i in range(ns.count))
        )
        client = self.client
        search, found = repeat_ms(
            lambda: client.search_runs([self.experiment], max_results=max(ns.count, 1)), ns.reps
        )
        history, series = repeat_ms(
            lambda: [client.get_metric_history(r, QUERIED) for r in ids], ns.reps
        )
        if len(found) != ns.count or any(QUERIED not in r.data.metrics for r in found):
            raise SystemExit(f"search_runs found {len(found)} runs, expected {ns.count} with m0")
        if [len(s) for s in series] != [1] * ns.count:
            raise SystemExit("get_metric_history did not answer one point per run")
        return {
            "timed": "create_run + log_batch(20 params, 20 metrics) + set_terminated",
            "runs": ns.count,
            "seconds": seconds,
            "runs_per_s": rate(ns.count, seconds),
            "cpu_seconds": cpu,
            "steps": {name: summarize_ns(values) for name, values in steps.items()},
            "query": {
                "search_runs": {
                    "timed": "client.search_runs([bench], max_results=<runs>): every run with "
                    "its latest metric values",
                    **search,
                },
                "get_metric_history": {
                    "timed": f"client.get_metric_history(run_id, '{QUERIED}') for each of the "
                    f"{ns.count} runs: the full series, like modelkeep's metric_series",
                    **history,
                },
            },
        }

    def close(self) -> None:
        pass


# ---------------------------------------------------------------- main


def in_git_work_tree(path: Path) -> bool:
    git = shutil.which("git")
    if git is None:
        return False
    cmd = [git, "-C", str(path), "rev-parse", "--is-inside-work-tree"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    return done.returncode == 0 and done.stdout.strip() == "true"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="one tracking measurement (see tracking.py)")
    parser.add_argument("--scenario", choices=["points", "runs"], required=True)
    parser.add_argument("--tool", choices=["modelkeep", "mlflow"], required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--uri", default=None, help="server URL; default: in process")
    parser.add_argument("--token", default=None)
    parser.add_argument("--count", type=int, required=True, help="points or runs timed")
    parser.add_argument("--warmup", type=int, default=0, help="points or runs, untimed")
    parser.add_argument("--reps", type=int, default=5, help="timed query repetitions")
    parser.add_argument("--single", type=int, default=0, help="MLflow single log_metric points")
    ns = parser.parse_args()
    ns.workdir = ns.workdir.resolve()
    ns.out = ns.out.resolve()
    ns.workdir.mkdir(parents=True, exist_ok=True)
    return ns


def main() -> None:
    ns = parse_args()
    cwd = Path(tempfile.mkdtemp(prefix="modelkeep-bench-cwd-"))
    os.chdir(cwd)
    cwd_in_git = in_git_work_tree(cwd)
    try:
        side = Modelkeep(ns) if ns.tool == "modelkeep" else Mlflow(ns)
        result = side.points(ns) if ns.scenario == "points" else side.runs(ns)
        side.close()
    finally:
        os.chdir(ns.workdir)
        shutil.rmtree(cwd, ignore_errors=True)
    result["transport"] = "http" if ns.uri else "inproc"
    result["warmup"] = ns.warmup
    result["cwd"] = {"path": str(cwd), "in_git_work_tree": cwd_in_git}
    args = WorkerArgs(ns.scenario, ns.workdir, ns.out, ns.count, ns.warmup, 0.0, None)
    write_result(args, ns.tool, side.version, result)


if __name__ == "__main__":
    main()
