"""MLflow side of bench/registry.py; run with bench/.venv-mlflow/bin/python.

Tracking and registry both on ``sqlite:///<workdir>/mlflow.db``, artifacts under
``<workdir>/artifacts`` (local file store). Set-up, schema creation and warm-up are not timed.
"""

from __future__ import annotations

import os
import time

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import mlflow
from _common import (
    ALIAS,
    METRICS,
    MODEL,
    PARAMS,
    WorkerArgs,
    big_result,
    make_small_files,
    parse_args,
    summarize_ns,
    time_once,
    time_ops,
    write_result,
)
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

STEPS = ("create_run", "log_batch", "log_artifact", "create_model_version")


def connect(args: WorkerArgs) -> tuple[MlflowClient, str]:
    uri = f"sqlite:///{args.workdir / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    artifacts = (args.workdir / "artifacts").as_uri()
    experiment_id = client.create_experiment("bench", artifact_location=artifacts)
    client.create_registered_model(MODEL)
    return client, experiment_id


class Registrar:
    """One "register a version with a 1 KB file", the MLflow way, with per-step timings."""

    def __init__(self, client: MlflowClient, experiment_id: str) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.steps: dict[str, list[int]] = {step: [] for step in STEPS}

    def register(self, path: os.PathLike[str]) -> str:
        marks = [time.perf_counter_ns()]
        run = self.client.create_run(self.experiment_id)
        run_id = run.info.run_id
        marks.append(time.perf_counter_ns())
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in METRICS.items()]
        params = [Param(k, str(v)) for k, v in PARAMS.items()]
        self.client.log_batch(run_id, metrics=metrics, params=params)
        marks.append(time.perf_counter_ns())
        self.client.log_artifact(run_id, str(path), artifact_path="model")
        marks.append(time.perf_counter_ns())
        version = self.client.create_model_version(
            MODEL, f"{run.info.artifact_uri}/model", run_id=run_id
        )
        marks.append(time.perf_counter_ns())
        for step, start, end in zip(STEPS, marks, marks[1:], strict=False):
            self.steps[step].append(end - start)
        return str(version.version)


def scenario_a(args: WorkerArgs) -> dict[str, object]:
    # Timed per op: create_run + log_batch(params, metrics) + log_artifact(1 KB file)
    # + create_model_version(source=<run artifact dir>, run_id). Not timed: writing the file,
    # ending the run (set_terminated), which would only make MLflow slower.
    client, experiment_id = connect(args)
    files = make_small_files(args.workdir / "in", args.warmup + args.ops)
    registrar = Registrar(client, experiment_id)
    for path in files[: args.warmup]:
        registrar.register(path)
    registrar.steps = {step: [] for step in STEPS}
    timed = files[args.warmup :]
    samples = time_ops(lambda i: registrar.register(timed[i]), args.ops, args.budget)
    steps = {step: summarize_ns(values) for step, values in registrar.steps.items()}
    return {"latency": summarize_ns(samples), "steps": steps}


def scenario_b(args: WorkerArgs) -> dict[str, object]:
    # Timed per op: client.get_model_version_by_alias(name, "champion").
    client, experiment_id = connect(args)
    (path,) = make_small_files(args.workdir / "in", 1)
    number = Registrar(client, experiment_id).register(path)
    client.set_registered_model_alias(MODEL, ALIAS, number)
    for _ in range(args.warmup):
        client.get_model_version_by_alias(MODEL, ALIAS)
    got = client.get_model_version_by_alias(MODEL, ALIAS)
    if str(got.version) != number:
        raise RuntimeError(f"alias resolved to {got.version}, expected {number}")
    samples = time_ops(
        lambda _: client.get_model_version_by_alias(MODEL, ALIAS), args.ops, args.budget
    )
    return {"latency": summarize_ns(samples)}


def scenario_c(args: WorkerArgs) -> dict[str, object]:
    # Timed: one client.log_artifact(run_id, <big file>) into a fresh run (local artifact store:
    # MLflow copies the file with shutil, no hashing, no fsync).
    if args.file is None:
        raise SystemExit("--file is required for scenario c")
    client, experiment_id = connect(args)
    run_id = client.create_run(experiment_id).info.run_id
    for path in make_small_files(args.workdir / "in", max(args.warmup, 1), size=1024 * 1024):
        client.log_artifact(run_id, str(path), artifact_path="warmup")
    big = str(args.file)
    seconds = time_once(lambda: client.log_artifact(run_id, big, artifact_path="model"))
    return big_result(seconds, args.file)


def main() -> None:
    args = parse_args()
    run = {"a": scenario_a, "b": scenario_b, "c": scenario_c}[args.scenario]
    write_result(args, "mlflow", mlflow.__version__, run(args))


if __name__ == "__main__":
    main()
