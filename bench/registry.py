"""Benchmark modelkeep against MLflow (both on SQLite) on this machine, in one run.

Scenarios:
  a  register a version with a 1 KB file   (per-op median latency, target mlflow/modelkeep >= 10)
  b  resolve an alias in-process            (per-op median latency, target mlflow/modelkeep >= 10)
  c  push a 1 GiB file                      (seconds, target modelkeep/baseline <= 1.5; the
                                             baseline is read 4 MiB + sha256 + write + fsync)

Method: each tool runs in its own worker process (modelkeep in the project's .venv, MLflow in
bench/.venv-mlflow, which this script creates and fills with a pinned MLflow). A worker does its
own warm-up and then times many operations, so process start-up is never timed. A warm-up round
of every tool is run first and discarded; then the tools alternate round by round (the first
of a round rotates), a ratio is computed per round and the median of the per-round ratios is
reported with the raw per-round numbers. Stores are deleted after every measurement
and `sync` is called (untimed) before each one, so one tool's dirty pages do not slow the next.

Usage: python bench/registry.py [--quick] [--rounds N] [--scenarios a,b,c] > result.json
One JSON document goes to stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# 3.18.0 is listed on the index here, but its dependency mlflow-skinny==3.18.0 is not served,
# so the newest installable release is pinned.
MLFLOW_VERSION = "3.17.2"
REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
WORK = BENCH / ".work"
MLFLOW_VENV = BENCH / ".venv-mlflow"
WORKER_TIMEOUT_S = 1800
MIB = 1 << 20
GIB = 1 << 30
ALL_TOOLS = ("modelkeep", "mlflow", "baseline")


@dataclass(frozen=True)
class Sizes:
    """How much work one round does."""

    rounds: int
    a_ops: int
    a_warmup: int
    b_ops: int
    b_warmup: int
    budget_s: float
    c_bytes: int


FULL = Sizes(rounds=5, a_ops=200, a_warmup=20, b_ops=3000, b_warmup=200, budget_s=20.0, c_bytes=GIB)
QUICK = Sizes(
    rounds=3, a_ops=40, a_warmup=5, b_ops=500, b_warmup=50, budget_s=3.0, c_bytes=64 * MIB
)
WARM = Sizes(rounds=1, a_ops=10, a_warmup=3, b_ops=50, b_warmup=20, budget_s=2.0, c_bytes=8 * MIB)


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    unit: str
    metric: str  # key of a worker result holding the per-round number
    tools: tuple[str, ...]
    ratios: tuple[tuple[str, str], ...]  # (numerator tool, denominator tool)
    timed: dict[str, str]


SCENARIOS = {
    "a": Scenario(
        key="a",
        title="register a version with a 1 KB file",
        unit="ms per op (median of the round's ops)",
        metric="median_ms",
        tools=("modelkeep", "mlflow"),
        ratios=(("mlflow", "modelkeep"),),
        timed={
            "modelkeep": "mk.push('bench', [1 KB file], params={'lr': 0.1}, metrics={'auc': 0.9})",
            "mlflow": "client.create_run + log_batch(params, metrics) + log_artifact(1 KB file) "
            "+ create_model_version(source=run artifact dir, run_id); run not terminated",
        },
    ),
    "b": Scenario(
        key="b",
        title="resolve an alias in-process",
        unit="ms per op (median of the round's ops)",
        metric="median_ms",
        tools=("modelkeep", "mlflow"),
        ratios=(("mlflow", "modelkeep"),),
        timed={
            "modelkeep": "mk.resolve('bench@champion')",
            "mlflow": "client.get_model_version_by_alias('bench', 'champion')",
        },
    ),
    "c": Scenario(
        key="c",
        title="push a big file",
        unit="seconds for one push",
        metric="seconds",
        tools=("modelkeep", "mlflow", "baseline"),
        ratios=(("modelkeep", "baseline"), ("mlflow", "modelkeep")),
        timed={
            "modelkeep": "mk.push('bench', [big file]) into a fresh store",
            "mlflow": "client.log_artifact(run_id, big file) into a fresh run (shutil copy, "
            "no hash, no fsync)",
            "baseline": "read 4 MiB blocks + hashlib.sha256 + write to a new file + fsync",
        },
    ),
}

# (scenario, numerator, denominator, comparison, threshold)
TARGETS = (
    ("a", "mlflow", "modelkeep", ">=", 10.0),
    ("b", "mlflow", "modelkeep", ">=", 10.0),
    ("c", "modelkeep", "baseline", "<=", 1.5),
)


@dataclass
class Tool:
    name: str
    python: Path
    script: Path


@dataclass
class Run:
    """State of one benchmark run."""

    sizes: Sizes
    tools: dict[str, Tool]
    errors: list[str] = field(default_factory=list)
    versions: dict[str, dict[str, str]] = field(default_factory=dict)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- environments


def find_python311() -> str:
    found = shutil.which("python3.11")
    if found:
        return found
    if sys.version_info[:2] == (3, 11):
        return sys.executable
    raise SystemExit("python3.11 is needed to create bench/.venv-mlflow")


def installed_mlflow(python: Path) -> str | None:
    code = "import importlib.metadata as m; print(m.version('mlflow'))"
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure_mlflow_venv() -> Path:
    """bench/.venv-mlflow with mlflow==MLFLOW_VERSION, created on first use."""
    python = MLFLOW_VENV / "bin" / "python"
    if python.exists() and installed_mlflow(python) == MLFLOW_VERSION:
        return python
    if not python.exists():
        log(f"creating {MLFLOW_VENV.relative_to(REPO)}")
        subprocess.run([find_python311(), "-m", "venv", str(MLFLOW_VENV)], check=True)
    log(f"installing mlflow=={MLFLOW_VERSION} into {MLFLOW_VENV.relative_to(REPO)} (~1 min)")
    pip = [str(python), "-m", "pip", "install", "--quiet", f"mlflow=={MLFLOW_VERSION}"]
    subprocess.run(pip, check=True, stdout=sys.stderr)
    return python


def modelkeep_python(override: str | None) -> Path:
    python = Path(override) if override else REPO / ".venv" / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} not found: run `make test` (or `make run`) first")
    check = "import modelkeep; modelkeep.connect"
    proc = subprocess.run([str(python), "-c", check], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = proc.stderr.strip().splitlines()[-1:] or ["?"]
        raise SystemExit(f"modelkeep is not usable from {python}: {tail[0]}; run `make test`")
    return python


def make_tools(names: list[str], mk_python: str | None) -> dict[str, Tool]:
    """Worker interpreters; the baseline uses modelkeep's interpreter when modelkeep runs."""
    pythons: dict[str, Path] = {}
    if "modelkeep" in names:
        pythons["modelkeep"] = modelkeep_python(mk_python)
    if "mlflow" in names:
        pythons["mlflow"] = ensure_mlflow_venv()
    if "baseline" in names:
        pythons["baseline"] = pythons.get("modelkeep", Path(sys.executable))
    return {name: Tool(name, pythons[name], BENCH / f"_{name}_worker.py") for name in names}


# ---------------------------------------------------------------- workers


def worker_args(scenario: str, sizes: Sizes, source: Path | None) -> list[str]:
    if scenario == "a":
        counts = [sizes.a_ops, sizes.a_warmup]
    elif scenario == "b":
        counts = [sizes.b_ops, sizes.b_warmup]
    else:
        counts = [1, 2]
    args = ["--ops", str(counts[0]), "--warmup", str(counts[1]), "--budget", str(sizes.budget_s)]
    return [*args, "--file", str(source)] if source else args


def run_worker(tool: Tool, scenario: str, workdir: Path, args: list[str]) -> dict[str, Any]:
    """One measurement in a fresh worker process and a fresh work dir (deleted afterwards)."""
    out = workdir.with_suffix(".json")
    cmd = [str(tool.python), str(tool.script), "--scenario", scenario]
    cmd += ["--workdir", str(workdir), "--out", str(out), *args]
    os.sync()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S, check=False
        )
        if proc.returncode != 0:
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            return {"error": f"{tool.name} worker exited {proc.returncode}:\n{tail}"}
        result: dict[str, Any] = json.loads(out.read_text())
        return result
    except subprocess.TimeoutExpired:
        return {"error": f"{tool.name} worker timed out after {WORKER_TIMEOUT_S} s"}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        out.unlink(missing_ok=True)
        os.sync()


def value_of(scenario: Scenario, result: dict[str, Any]) -> float | None:
    if "error" in result:
        return None
    source = result["latency"] if scenario.metric == "median_ms" else result
    return float(source[scenario.metric])


# ---------------------------------------------------------------- big file (scenario c)


def write_random(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        for offset in range(0, size, 4 * MIB):
            f.write(os.urandom(min(4 * MIB, size - offset)))


def stamp(path: Path, round_no: int) -> str:
    """Make the file's content unique for this round: a nonce at 16 spread-out offsets."""
    nonce = f"round-{round_no}-{secrets.token_hex(8)}"
    size = path.stat().st_size
    with path.open("r+b") as f:
        for k in range(16):
            f.seek(k * (size // 16))
            f.write(nonce.encode())
    return nonce


def check_disk(size: int) -> None:
    usage = shutil.disk_usage(WORK)
    log(f"disk {WORK}: {usage.free / GIB:.1f} GiB free of {usage.total / GIB:.1f} GiB")
    need = 4 * size + GIB
    if usage.free < need:
        raise SystemExit(f"scenario c needs about {need / GIB:.1f} GiB free under {WORK}")


# ---------------------------------------------------------------- rounds


def measure_round(
    run: Run, scenario: Scenario, round_no: int, sizes: Sizes, source: Path | None
) -> dict[str, Any]:
    row: dict[str, Any] = {"round": round_no}
    details: dict[str, Any] = {}
    present = [name for name in scenario.tools if name in run.tools]
    # Rotate who goes first each round: no tool always inherits the previous one's I/O.
    shift = round_no % len(present) if present else 0
    row["order"] = present[shift:] + present[:shift]
    for name in row["order"]:
        workdir = WORK / f"{scenario.key}-r{round_no}-{name}"
        result = run_worker(
            run.tools[name], scenario.key, workdir, worker_args(scenario.key, sizes, source)
        )
        if "error" in result:
            run.errors.append(f"{scenario.key} round {round_no}: {result['error']}")
            log(result["error"])
        else:
            run.versions.setdefault(
                name, {"version": result["tool_version"], "python": result["python"]}
            )
        row[name] = value_of(scenario, result)
        details[name] = result
        shown = "error" if row[name] is None else f"{row[name]:.4g}"
        log(f"{scenario.key} round {round_no} {name}: {shown} {scenario.unit}")
    row["ratios"] = round_ratios(scenario, row)
    row["detail"] = details
    return row


def ratio_name(numerator: str, denominator: str) -> str:
    return f"{numerator}/{denominator}"


def round_ratios(scenario: Scenario, row: dict[str, Any]) -> dict[str, float | None]:
    ratios: dict[str, float | None] = {}
    for numerator, denominator in scenario.ratios:
        top, bottom = row.get(numerator), row.get(denominator)
        ratios[ratio_name(numerator, denominator)] = top / bottom if top and bottom else None
    return ratios


def median_or_none(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def run_scenario(run: Run, scenario: Scenario, rounds: int) -> dict[str, Any]:
    source = WORK / "c-source.bin" if scenario.key == "c" else None
    try:
        log(f"scenario {scenario.key} ({scenario.title}): warm-up round, discarded")
        if source:
            write_random(source, WARM.c_bytes)
        measure_round(run, scenario, 0, WARM, source)
        if source:
            check_disk(run.sizes.c_bytes)
            log(f"writing a random {run.sizes.c_bytes / MIB:.0f} MiB source file")
            write_random(source, run.sizes.c_bytes)
        rows = []
        for round_no in range(1, rounds + 1):
            nonce = stamp(source, round_no) if source else None
            row = measure_round(run, scenario, round_no, run.sizes, source)
            rows.append({**row, "content_nonce": nonce} if nonce else row)
    finally:
        if source:
            source.unlink(missing_ok=True)
    return summarize_scenario(run, scenario, rows)


def summarize_scenario(run: Run, scenario: Scenario, rows: list[dict[str, Any]]) -> dict[str, Any]:
    tools = [name for name in scenario.tools if name in run.tools]
    summary: dict[str, Any] = {
        "title": scenario.title,
        "unit": scenario.unit,
        "timed": {name: scenario.timed[name] for name in tools},
        "median_over_rounds": {name: median_or_none([r[name] for r in rows]) for name in tools},
        "median_of_per_round_ratios": {
            ratio_name(n, d): median_or_none([r["ratios"][ratio_name(n, d)] for r in rows])
            for n, d in scenario.ratios
        },
        "rounds": rows,
    }
    if scenario.key == "c":
        summary["bytes"] = run.sizes.c_bytes
        summary["dedup"] = (
            "defeated: a new random source file per run with a per-round nonce written at 16 "
            "offsets (content_nonce), and every store is new per round"
        )
        summary["page_cache"] = "the source file is hot in the page cache for every tool"
    return summary


# ---------------------------------------------------------------- report


def evaluate_targets(scenarios: dict[str, Any]) -> list[dict[str, Any]]:
    targets = []
    for key, numerator, denominator, comparison, threshold in TARGETS:
        if key not in scenarios:
            continue
        name = ratio_name(numerator, denominator)
        value = scenarios[key]["median_of_per_round_ratios"].get(name)
        passed = None
        if value is not None:
            passed = value >= threshold if comparison == ">=" else value <= threshold
        targets.append(
            {
                "scenario": key,
                "ratio": name,
                "target": f"{comparison} {threshold}",
                "median_of_per_round_ratios": value,
                "pass": passed,
            }
        )
    return targets


def machine_info(run: Run) -> dict[str, Any]:
    meminfo = Path("/proc/meminfo")
    mem = meminfo.read_text().splitlines()[0] if meminfo.exists() else "?"
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "memory": mem.split(":", 1)[-1].strip(),
        "driver_python": platform.python_version(),
        "modelkeep_version": run.versions.get("modelkeep", {}).get("version"),
        "modelkeep_python": run.versions.get("modelkeep", {}).get("python"),
        "mlflow_version": run.versions.get("mlflow", {}).get("version"),
        "mlflow_python": run.versions.get("mlflow", {}).get("python"),
        "workers": {name: str(tool.python) for name, tool in run.tools.items()},
    }


def parse_cli(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--rounds", type=int, default=None, help="measured rounds (default 5, quick 3)"
    )
    parser.add_argument("--quick", action="store_true", help="64 MiB instead of 1 GiB, fewer ops")
    parser.add_argument("--scenarios", default="a,b,c", help="comma-separated subset of a,b,c")
    parser.add_argument(
        "--tools", default=",".join(ALL_TOOLS), help="subset of " + ",".join(ALL_TOOLS)
    )
    parser.add_argument("--modelkeep-python", default=None, help="default: <repo>/.venv/bin/python")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    ns = parser.parse_args(argv)
    ns.scenarios = [s.strip() for s in ns.scenarios.split(",") if s.strip()]
    ns.tools = [t.strip() for t in ns.tools.split(",") if t.strip()]
    bad = [s for s in ns.scenarios if s not in SCENARIOS] + [
        t for t in ns.tools if t not in ALL_TOOLS
    ]
    if ns.rounds is not None and ns.rounds < 1:
        parser.error("--rounds must be at least 1")
    if bad:
        parser.error(f"unknown scenario or tool: {', '.join(bad)}")
    return ns


def all_pass(targets: list[dict[str, Any]]) -> bool | None:
    """True or False when every target was measured, None when one could not be."""
    if not targets or any(t["pass"] is None for t in targets):
        return None
    return all(t["pass"] for t in targets)


def exit_code(report: dict[str, Any], strict: bool) -> int:
    if report["errors"]:
        return 2
    if strict and any(t["pass"] is not True for t in report["targets"]):
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    ns = parse_cli(argv)
    sizes = QUICK if ns.quick else FULL
    rounds = ns.rounds or sizes.rounds
    started = dt.datetime.now(dt.UTC)
    WORK.mkdir(parents=True, exist_ok=True)
    run = Run(sizes=sizes, tools=make_tools(ns.tools, ns.modelkeep_python))
    scenarios = {key: run_scenario(run, SCENARIOS[key], rounds) for key in ns.scenarios}
    targets = evaluate_targets(scenarios)
    report = {
        "benchmark": "modelkeep vs MLflow, both on SQLite, same machine, one run",
        "started_at_utc": started.isoformat(timespec="seconds"),
        "duration_s": round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1),
        "config": {
            "quick": ns.quick,
            "rounds": rounds,
            "scenarios": ns.scenarios,
            "tools": ns.tools,
            "sizes": {k: v for k, v in dataclasses.asdict(sizes).items() if k != "rounds"},
            "mlflow_pin": MLFLOW_VERSION,
        },
        "method": "warm-up round discarded; tools alternate per round (who goes first rotates) in "
        "separate worker processes "
        "that warm up and then time many ops; ratio computed per round; median of per-round "
        "ratios reported; stores deleted and sync() before every measurement",
        "machine": machine_info(run),
        "scenarios": scenarios,
        "targets": targets,
        "all_targets_pass": all_pass(targets),
        "errors": run.errors,
    }
    print(json.dumps(report, indent=2))
    return exit_code(report, ns.strict)


if __name__ == "__main__":
    sys.exit(main())
