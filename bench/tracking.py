"""Benchmark modelkeep's experiment tracking against MLflow's (both on SQLite), in one run.

Scenarios (sizes of a full run; --quick: 20,000 points, 100 runs, one round):
  a  log 100,000 points of one metric into one run, until stored: points/s
     in process (modelkeep run.log_metric + run.flush vs MLflow log_batch of 1000) and over
     HTTP (`modelkeep server` vs `mlflow server`)   (target modelkeep/MLflow >= 20, both)
  b  create and end 1,000 runs with 20 params and 20 metrics each, in process: runs/s
                                                    (target modelkeep/MLflow >= 10)
  c  query metric m0 across the runs of b: modelkeep mk.metric_series, median of 5
     (target < 200 ms); MLflow search_runs and get_metric_history per run, for comparison

Method: every measurement runs in its own worker process (bench/_tracking_worker.py, with
modelkeep's .venv or bench/.venv-mlflow, which bench/registry.py creates) with a fresh store,
its working directory a new temporary directory outside any git work tree; a worker warms up,
then times. HTTP servers are started per measurement as bench/server.py starts them (fresh
directory, waited for until idle, stopped and deleted afterwards). A warm-up round of every
tool is discarded; then the tools alternate round by round (who goes first rotates), a
ratio is computed per round, and the median of the per-round ratios is reported with the raw
per-round numbers.

Usage: python3.11 bench/tracking.py [--quick] [--rounds N] [--scenarios a,b,c] > result.json
One JSON document goes to stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import _load
import registry
from registry import (
    BENCH,
    MLFLOW_VERSION,
    WORK,
    Tool,
    all_pass,
    ensure_mlflow_venv,
    exit_code,
    log,
    machine_info,
    median_or_none,
    modelkeep_python,
    run_worker,
)
from server import (
    MLFLOW_DEFAULT_WORKERS,
    SETUP_ERRORS,
    Options,
    check_server_command,
    running,
    server_config,
)

TRACK_WORK = WORK / "tracking"
WORKER = BENCH / "_tracking_worker.py"
ALL_TOOLS = ("modelkeep", "mlflow")
ALL_SCENARIOS = ("a", "b", "c")
ALL_TRANSPORTS = ("inproc", "http")


@dataclass(frozen=True)
class Sizes:
    """How much work one round does."""

    rounds: int
    points: int  # a: points logged into one run
    warmup_points: int
    runs: int  # b: runs created (and queried in c)
    warmup_runs: int
    reps: int  # c: timed repetitions of a query
    single: int  # a: MLflow single log_metric calls (informational)


FULL = Sizes(
    rounds=3, points=100_000, warmup_points=2000, runs=1000, warmup_runs=20, reps=5, single=300
)
QUICK = Sizes(
    rounds=1, points=20_000, warmup_points=1000, runs=100, warmup_runs=10, reps=5, single=100
)
WARM = Sizes(rounds=1, points=2000, warmup_points=200, runs=20, warmup_runs=5, reps=2, single=0)

POINT_RATIOS = {"inproc": "inproc modelkeep/mlflow", "http": "http modelkeep/mlflow"}
RUNS_RATIO = "modelkeep/mlflow"
QUERY_RATIOS = {
    "mlflow get_metric_history/modelkeep metric_series": "get_metric_history",
    "mlflow search_runs/modelkeep metric_series": "search_runs",
}


@dataclass
class State:
    """Tools, server options, versions and errors (machine_info reads .tools and .versions)."""

    sizes: Sizes
    tools: dict[str, Tool]
    transports: list[str]
    options: Options
    errors: list[str] = field(default_factory=list)
    versions: dict[str, dict[str, str]] = field(default_factory=dict)


# ---------------------------------------------------------------- one measurement


def measure(
    state: State, tool: str, scenario: str, label: str, args: list[str], transport: str
) -> dict[str, Any]:
    """One worker, in process or against a fresh server; errors are logged and recorded."""
    workdir = TRACK_WORK / label
    if transport == "inproc":
        result = run_worker(state.tools[tool], scenario, workdir, ["--tool", tool, *args])
    else:
        result = measure_http(state, tool, scenario, label, args)
    if "error" in result:
        state.errors.append(f"{label}: {result['error']}")
        log(f"{label}: {result['error']}")
    else:
        state.versions.setdefault(
            tool, {"version": result["tool_version"], "python": result["python"]}
        )
    return result


def measure_http(
    state: State, tool: str, scenario: str, label: str, args: list[str]
) -> dict[str, Any]:
    try:
        with running(tool, state.options, TRACK_WORK / f"{label}-server", setup=False) as server:
            uri = ["--uri", f"http://{_load.HOST}:{server.port}"]
            uri += ["--token", server.token] if server.token else []
            args = ["--tool", tool, *uri, *args]
            result = run_worker(state.tools[tool], scenario, TRACK_WORK / label, args)
            if "error" in result:
                result["error"] += f"\nserver log:\n{server.log_tail()}"
            else:
                result["server_startup_s"] = round(server.startup_s, 2)
            return result
    except SETUP_ERRORS as exc:
        return {"error": f"{tool} server: {exc}"}


def number(result: dict[str, Any] | None, *keys: str) -> float | None:
    """``result[k1][k2]...`` as a float, None when the measurement failed."""
    if not result or "error" in result:
        return None
    value: Any = result
    for key in keys:
        value = value[key]
    return float(value)


def ratio(top: float | None, bottom: float | None) -> float | None:
    return top / bottom if top and bottom else None


def rotated(names: list[str], round_no: int) -> list[str]:
    shift = round_no % len(names) if names else 0
    return names[shift:] + names[:shift]


# ---------------------------------------------------------------- a: metric points


def points_round(state: State, round_no: int, sizes: Sizes) -> dict[str, Any]:
    modes = [f"{tool}-{t}" for t in state.transports for tool in state.tools]
    row: dict[str, Any] = {"round": round_no, "order": rotated(modes, round_no)}
    row["points_per_s"], row["detail"] = {}, {}
    for mode in row["order"]:
        tool, transport = mode.split("-")
        args = ["--count", str(sizes.points), "--warmup", str(sizes.warmup_points)]
        if tool == "mlflow" and transport == "inproc" and sizes.single:
            args += ["--single", str(sizes.single)]
        result = measure(state, tool, "points", f"a-r{round_no}-{mode}", args, transport)
        row["points_per_s"][mode] = number(result, "points_per_s")
        row["detail"][mode] = result
        shown = row["points_per_s"][mode]
        log(f"a round {round_no} {mode}: {'error' if shown is None else f'{shown:,.0f}'} points/s")
    row["ratios"] = {
        name: ratio(
            row["points_per_s"].get(f"modelkeep-{t}"), row["points_per_s"].get(f"mlflow-{t}")
        )
        for t, name in POINT_RATIOS.items()
        if t in state.transports
    }
    return row


def summarize_points(state: State, rows: list[dict[str, Any]]) -> dict[str, Any]:
    modes = [f"{tool}-{t}" for t in state.transports for tool in state.tools]
    names = [POINT_RATIOS[t] for t in state.transports]
    single = [
        number(r["detail"].get("mlflow-inproc"), "single_log_metric", "points_per_s") for r in rows
    ]
    return {
        "title": "log metric points into one run until they are stored",
        "unit": "points/s",
        "points": state.sizes.points,
        "timed": {
            "modelkeep": "run.log_metric('loss', value, step=i) for every point, then "
            "run.flush() (returns once every buffered point is stored); mk.start_run before "
            "and run.end() after the clock",
            "mlflow": "client.log_batch(run_id, metrics=[1000 Metric objects]) per 1000 points, "
            "building the Metric objects included; create_run before the clock",
            "inproc": "modelkeep: embedded store (SQLite + local blobs); MLflow: "
            "MlflowClient on sqlite:///<dir>/mlflow.db with local artifacts",
            "http": "the same client calls against a fresh server in another process "
            "(see config.servers)",
        },
        "median_over_rounds": {
            mode: median_or_none([r["points_per_s"].get(mode) for r in rows]) for mode in modes
        },
        "mlflow_single_log_metric_points_per_s": median_or_none(single),
        "median_of_per_round_ratios": {
            name: median_or_none([r["ratios"].get(name) for r in rows]) for name in names
        },
        "rounds": rows,
    }


# ---------------------------------------------------------------- b, c: runs and the query


def query_ms(result: dict[str, Any] | None, query: str) -> float | None:
    return number(result, "query", query, "median_ms")


def runs_round(state: State, round_no: int, sizes: Sizes) -> dict[str, Any]:
    row: dict[str, Any] = {"round": round_no, "order": rotated(list(state.tools), round_no)}
    row["runs_per_s"], row["detail"] = {}, {}
    for tool in row["order"]:
        args = ["--count", str(sizes.runs), "--warmup", str(sizes.warmup_runs)]
        args += ["--reps", str(sizes.reps)]
        result = measure(state, tool, "runs", f"b-r{round_no}-{tool}", args, "inproc")
        row["runs_per_s"][tool] = number(result, "runs_per_s")
        row["detail"][tool] = result
        if "error" not in result:
            queries = ", ".join(f"{q} {v['median_ms']:.1f} ms" for q, v in result["query"].items())
            log(f"b/c round {round_no} {tool}: {result['runs_per_s']:.1f} runs/s; {queries}")
    mk, ml = row["detail"].get("modelkeep"), row["detail"].get("mlflow")
    row["query_ms"] = {
        "modelkeep metric_series": query_ms(mk, "metric_series"),
        "modelkeep runs_list": query_ms(mk, "runs_list"),
        "mlflow search_runs": query_ms(ml, "search_runs"),
        "mlflow get_metric_history": query_ms(ml, "get_metric_history"),
    }
    series = row["query_ms"]["modelkeep metric_series"]
    row["ratios"] = {
        RUNS_RATIO: ratio(row["runs_per_s"].get("modelkeep"), row["runs_per_s"].get("mlflow")),
        **{name: ratio(query_ms(ml, q), series) for name, q in QUERY_RATIOS.items()},
    }
    return row


def summarize_runs(state: State, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "title": "create and end runs with 20 params and 20 metrics, in process",
        "unit": "runs/s",
        "runs": state.sizes.runs,
        "timed": {
            "modelkeep": "with mk.start_run(experiment='bench', params=<20>) as run: "
            "run.log_metrics(<20>, step=0); every start records git state (none: the cwd is "
            "not a git work tree) and the installed packages",
            "mlflow": "client.create_run + log_batch(20 params, 20 metrics) + set_terminated",
        },
        "median_over_rounds": {
            tool: median_or_none([r["runs_per_s"].get(tool) for r in rows]) for tool in state.tools
        },
        "median_of_per_round_ratios": {
            RUNS_RATIO: median_or_none([r["ratios"][RUNS_RATIO] for r in rows])
        },
        "rounds": rows,
    }


def summarize_query(state: State, rows: list[dict[str, Any]]) -> dict[str, Any]:
    names = list(rows[0]["query_ms"]) if rows else []
    return {
        "title": "query metric m0 across the runs of scenario b",
        "unit": "ms per query (median of the worker's timed repetitions, then over rounds)",
        "runs": state.sizes.runs,
        "repetitions": state.sizes.reps,
        "timed": {
            "modelkeep metric_series": "mk.metric_series('m0', <run ids>, max_points=1000)",
            "modelkeep runs_list": "mk.runs(experiment='bench') (informational)",
            "mlflow search_runs": "client.search_runs([bench], max_results=<runs>): latest "
            "values only",
            "mlflow get_metric_history": "client.get_metric_history(run_id, 'm0') for every "
            "run: full series, the like-for-like comparison",
        },
        "median_over_rounds": {
            name: median_or_none([r["query_ms"][name] for r in rows]) for name in names
        },
        "median_of_per_round_ratios": {
            name: median_or_none([r["ratios"][name] for r in rows]) for name in QUERY_RATIOS
        },
        "rounds": [
            {"round": r["round"], "query_ms": r["query_ms"], "detail": "scenarios.b.rounds"}
            for r in rows
        ],
    }


# ---------------------------------------------------------------- rounds


def run_rounds(
    state: State, title: str, one_round: Callable[[State, int, Sizes], dict[str, Any]], rounds: int
) -> list[dict[str, Any]]:
    log(f"{title}: warm-up round, discarded")
    one_round(state, 0, WARM)
    return [one_round(state, round_no, state.sizes) for round_no in range(1, rounds + 1)]


def run_scenarios(state: State, selected: list[str], rounds: int) -> dict[str, Any]:
    scenarios: dict[str, Any] = {}
    if "a" in selected:
        rows = run_rounds(state, f"a ({state.sizes.points:,} points)", points_round, rounds)
        scenarios["a"] = summarize_points(state, rows)
    if "b" in selected or "c" in selected:
        rows = run_rounds(state, f"b/c ({state.sizes.runs:,} runs)", runs_round, rounds)
        if "b" in selected:
            scenarios["b"] = summarize_runs(state, rows)
        if "c" in selected:
            scenarios["c"] = summarize_query(state, rows)
            if "b" not in selected:
                scenarios["c"]["rounds"] = rows
    return scenarios


# ---------------------------------------------------------------- report


def target_value(scenarios: dict[str, Any], key: str, name: str, field_: str) -> float | None:
    return cast(float | None, scenarios.get(key, {}).get(field_, {}).get(name))


# (scenario, measure, where the value is, comparison, threshold)
TARGETS = (
    ("a", POINT_RATIOS["inproc"], "median_of_per_round_ratios", ">=", 20.0),
    ("a", POINT_RATIOS["http"], "median_of_per_round_ratios", ">=", 20.0),
    ("b", RUNS_RATIO, "median_of_per_round_ratios", ">=", 10.0),
    ("c", "modelkeep metric_series", "median_over_rounds", "<", 200.0),
)


def evaluate_targets(state: State, scenarios: dict[str, Any]) -> list[dict[str, Any]]:
    targets = []
    for key, name, field_, comparison, threshold in TARGETS:
        if key not in scenarios or (key == "a" and name not in scenarios[key][field_]):
            continue
        value = target_value(scenarios, key, name, field_)
        passed = None
        if value is not None:
            passed = value >= threshold if comparison == ">=" else value < threshold
        entry: dict[str, Any] = {
            "scenario": key,
            "measure": name,
            "target": f"{comparison} {threshold:g}" + (" ms" if key == "c" else ""),
            "value": value,
            "pass": passed,
        }
        if key == "a":
            transport = name.split()[0]
            entry["modelkeep_points_per_s"] = target_value(
                scenarios, "a", f"modelkeep-{transport}", "median_over_rounds"
            )
            entry["mlflow_points_per_s"] = target_value(
                scenarios, "a", f"mlflow-{transport}", "median_over_rounds"
            )
        elif key == "b":
            entry["modelkeep_runs_per_s"] = target_value(
                scenarios, "b", "modelkeep", "median_over_rounds"
            )
            entry["mlflow_runs_per_s"] = target_value(
                scenarios, "b", "mlflow", "median_over_rounds"
            )
        else:
            entry["runs_queried"] = state.sizes.runs
            entry["mlflow_get_metric_history_ms"] = target_value(
                scenarios, "c", "mlflow get_metric_history", "median_over_rounds"
            )
        targets.append(entry)
    return targets


def split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def parse_cli(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=None, help="default 3, quick 1")
    parser.add_argument("--quick", action="store_true", help="20,000 points, 100 runs, 1 round")
    parser.add_argument("--scenarios", default="a,b,c", help="subset of a,b,c")
    parser.add_argument("--tools", default=",".join(ALL_TOOLS), help="subset of modelkeep,mlflow")
    parser.add_argument(
        "--transports", default=",".join(ALL_TRANSPORTS), help="scenario a: subset of inproc,http"
    )
    parser.add_argument("--points", type=int, default=None, help="scenario a points per run")
    parser.add_argument("--runs", type=int, default=None, help="scenario b/c runs")
    parser.add_argument("--mlflow-workers", type=int, default=MLFLOW_DEFAULT_WORKERS)
    parser.add_argument("--modelkeep-python", default=None, help="default: <repo>/.venv/bin/python")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    ns = parser.parse_args(argv)
    ns.scenarios, ns.tools, ns.transports = map(split, (ns.scenarios, ns.tools, ns.transports))
    bad = [s for s in ns.scenarios if s not in ALL_SCENARIOS]
    bad += [t for t in ns.tools if t not in ALL_TOOLS]
    bad += [t for t in ns.transports if t not in ALL_TRANSPORTS]
    if bad:
        parser.error(f"unknown scenario, tool or transport: {', '.join(bad)}")
    if not ns.scenarios or not ns.tools or not ns.transports:
        parser.error("--scenarios, --tools and --transports need at least one name each")
    if ns.rounds is not None and ns.rounds < 1:
        parser.error("--rounds must be at least 1")
    if (ns.points is not None and ns.points < 1) or (ns.runs is not None and ns.runs < 1):
        parser.error("--points and --runs must be at least 1")
    return ns


def build_state(ns: argparse.Namespace) -> State:
    sizes = QUICK if ns.quick else FULL
    if ns.points is not None:
        sizes = dataclasses.replace(sizes, points=ns.points)
    if ns.runs is not None:
        sizes = dataclasses.replace(sizes, runs=ns.runs)
    tools: dict[str, Tool] = {}
    mk_python = registry.REPO / ".venv" / "bin" / "python"
    if "modelkeep" in ns.tools:
        mk_python = modelkeep_python(ns.modelkeep_python)
        if "a" in ns.scenarios and "http" in ns.transports:
            check_server_command(mk_python)
        tools["modelkeep"] = Tool("modelkeep", mk_python, WORKER)
    mlflow_python = ensure_mlflow_venv() if "mlflow" in ns.tools else None
    if mlflow_python:
        tools["mlflow"] = Tool("mlflow", mlflow_python, WORKER)
    options = Options(
        clients=1,
        mk_python=mk_python,
        mk_workers=None,
        mlflow_workers=ns.mlflow_workers,
        mlflow_python=mlflow_python,
    )
    return State(sizes=sizes, tools=tools, transports=ns.transports, options=options)


def main(argv: list[str] | None = None) -> int:
    ns = parse_cli(argv)
    state = build_state(ns)
    rounds = ns.rounds or state.sizes.rounds
    started = dt.datetime.now(dt.UTC)
    TRACK_WORK.mkdir(parents=True, exist_ok=True)
    try:
        scenarios = run_scenarios(state, ns.scenarios, rounds)
    finally:
        shutil.rmtree(TRACK_WORK, ignore_errors=True)
    targets = evaluate_targets(state, scenarios)
    servers = server_config(cast(Any, state))
    servers.pop("load_generator", None)
    servers["client"] = "bench/_tracking_worker.py in its own process: one client, one thread"
    servers["cores"] = f"{os.cpu_count()} (the server and the client share them)"
    report = {
        "benchmark": "modelkeep vs MLflow experiment tracking, both on SQLite, same machine, "
        "one run",
        "started_at_utc": started.isoformat(timespec="seconds"),
        "duration_s": round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1),
        "config": {
            "quick": ns.quick,
            "rounds": rounds,
            "scenarios": ns.scenarios,
            "tools": ns.tools,
            "transports": ns.transports,
            "sizes": {k: v for k, v in dataclasses.asdict(state.sizes).items() if k != "rounds"},
            "servers": servers,
            "mlflow_pin": MLFLOW_VERSION,
        },
        "method": "warm-up round discarded; tools alternate per round (who goes first rotates) "
        "in separate worker processes with fresh stores (and fresh servers over HTTP), cwd a "
        "temporary directory outside any git work tree; each worker warms up, then times; "
        "ratio computed per round, median of per-round ratios reported",
        "machine": machine_info(cast(registry.Run, state)),  # reads .tools and .versions only
        "scenarios": scenarios,
        "targets": targets,
        "all_targets_pass": all_pass(targets),
        "errors": state.errors,
    }
    print(json.dumps(report, indent=2))
    return exit_code(report, ns.strict)


if __name__ == "__main__":
    sys.exit(main())
