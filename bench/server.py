"""Benchmark `modelkeep server` against `mlflow server` over HTTP (both on SQLite), in one run.

Scenarios:
  resolve   resolve an alias: requests/s and p50/p99 latency with 16 concurrent clients
            (target: modelkeep rps >= 5x MLflow's, with a lower p99)
  register  register a version with a 1 KiB file: the same measures and target
  transfer  push and pull a 1 GiB file with the SDK over loopback HTTP, against an in-process
            push into a local store (target: HTTP push and HTTP pull >= 0.5x the local push)
  health    (opt-in) GET /healthz resp. /health: the servers' per-request floor

Method: each server runs in its own process group on 127.0.0.1 with a fresh data directory; the
load comes from another process (bench/_load.py: N threads, one keep-alive connection each)
that warms up for a while (discarded) and then measures for a fixed time. A warm-up round of
every tool is discarded; then the tools alternate round by round (who goes first rotates), a
ratio is computed per round, and the median of the per-round ratios is reported next to every
round's raw numbers. Data directories are deleted and `sync` is called after every server.

Usage: python3.11 bench/server.py [--quick] [--rounds N] [--scenarios resolve,register,transfer]
One JSON document goes to stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _load
from registry import (
    BENCH,
    GIB,
    MIB,
    MLFLOW_VERSION,
    REPO,
    WORK,
    check_disk,
    ensure_mlflow_venv,
    installed_mlflow,
    log,
    median_or_none,
    modelkeep_python,
    stamp,
    write_random,
)

SERVER_WORK = WORK / "server"
START_TIMEOUT_S = 180.0
SETTLE_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
TRANSFER_TIMEOUT_S = 1800
ALL_TOOLS = ("modelkeep", "mlflow")
ALL_SCENARIOS = ("resolve", "register", "transfer", "health")
DEFAULT_SCENARIOS = ("resolve", "register", "transfer")
LOAD_OPS = ("health", "resolve", "register")
SETUP_ERRORS = (
    RuntimeError,
    OSError,
    KeyError,
    ValueError,
    subprocess.SubprocessError,
    _load.HttpError,
)
MLFLOW_DEFAULT_WORKERS = 4  # `mlflow server --workers` default (uvicorn) in 3.17


@dataclass(frozen=True)
class Sizes:
    """How much work one round does."""

    rounds: int
    duration_s: float
    warmup_s: float
    max_ops: int
    transfer_bytes: int


FULL = Sizes(rounds=5, duration_s=10.0, warmup_s=2.0, max_ops=200_000, transfer_bytes=GIB)
QUICK = Sizes(rounds=3, duration_s=3.0, warmup_s=1.0, max_ops=50_000, transfer_bytes=64 * MIB)
WARM = Sizes(rounds=1, duration_s=1.0, warmup_s=0.5, max_ops=10_000, transfer_bytes=8 * MIB)

TITLES = {
    "health": "health check over HTTP (framework floor, informational)",
    "resolve": "resolve an alias over HTTP",
    "register": "register a version with a 1 KiB file over HTTP",
    "transfer": "push and pull a big file over loopback HTTP vs a local push",
}

# (scenario, ratio, threshold): every ratio is "higher is better for modelkeep"
TARGETS = (
    ("resolve", "rps modelkeep/mlflow", 5.0),
    ("resolve", "p99 mlflow/modelkeep", 1.0),
    ("register", "rps modelkeep/mlflow", 5.0),
    ("register", "p99 mlflow/modelkeep", 1.0),
    ("transfer", "http_push/local_push", 0.5),
    ("transfer", "http_pull/local_push", 0.5),
)


@dataclass
class Options:
    clients: int
    mk_python: Path
    mk_workers: int | None
    mlflow_workers: int
    mlflow_python: Path | None


@dataclass
class Run:
    sizes: Sizes
    tools: list[str]
    options: Options
    errors: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((_load.HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A server process (its own process group) with the data directory it owns."""

    tool: str
    port: int
    workdir: Path
    process: subprocess.Popen[bytes]
    token: str | None = None
    context: dict[str, str] = field(default_factory=dict)
    startup_s: float = 0.0

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 15) -> str:
        path = self.workdir / "server.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM to the group this script started, then SIGKILL if it lingers."""
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, sig)
            try:
                self.process.wait(STOP_TIMEOUT_S)
                time.sleep(0.5)  # let the group's children exit too
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.pid, signal.SIGKILL)
                return
            except subprocess.TimeoutExpired:
                continue


def mk_cli(options: Options) -> Path:
    return options.mk_python.parent / "modelkeep"


def mk_token(options: Options, store: Path) -> str:
    """An admin token, created with the CLI before the server starts."""
    cmd = [str(mk_cli(options)), "--json", "users", "create", "bench", "--role", "admin"]
    env = {**os.environ, "MODELKEEP_URI": str(store)}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"`modelkeep users create` exited {proc.returncode}: {proc.stderr}")
    return str(json.loads(proc.stdout)["token"])


def mk_command(options: Options, port: int) -> list[str]:
    cmd = [str(mk_cli(options)), "server", "--host", _load.HOST, "--port", str(port)]
    if options.mk_workers is not None:
        cmd += ["--workers", str(options.mk_workers)]
    return cmd


def mlflow_command(options: Options, workdir: Path, port: int) -> list[str]:
    assert options.mlflow_python is not None
    return [
        str(options.mlflow_python.parent / "mlflow"),
        "server",
        "--backend-store-uri",
        f"sqlite:///{workdir / 'mlflow.db'}",
        "--artifacts-destination",
        str(workdir / "artifacts"),
        "--serve-artifacts",
        "--host",
        _load.HOST,
        "--port",
        str(port),
        "--workers",
        str(options.mlflow_workers),
    ]


def spawn(tool: str, options: Options, workdir: Path) -> Server:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    token = None
    if tool == "modelkeep":
        store = workdir / "store"
        token = mk_token(options, store)
        env["MODELKEEP_URI"] = str(store)
        cmd = mk_command(options, port)
    else:
        cmd = mlflow_command(options, workdir, port)
    with (workdir / "server.log").open("wb") as out:
        process = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Server(tool, port, workdir, process, token)


def wait_healthy(server: Server) -> None:
    path = "/healthz" if server.tool == "modelkeep" else "/health"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.tool} server exited:\n{server.log_tail()}")
        conn = _load.Conn(server.port, None)
        try:
            conn.call("GET", path)
            return
        except _load.HttpError:
            time.sleep(0.25)
        finally:
            conn.close()
    raise RuntimeError(f"{server.tool} server not healthy in {START_TIMEOUT_S:.0f} s")


def settle(server: Server) -> float:
    """Wait until the server's process tree is idle (MLflow starts job consumers after it
    answers); returns the CPU seconds it used in the last second."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    quiet = 0
    used = 0.0
    while time.monotonic() < deadline and quiet < 2:
        before = _load.process_tree_cpu(server.pid)
        time.sleep(1.0)
        used = _load.process_tree_cpu(server.pid) - before
        quiet = quiet + 1 if used < 0.05 else 0
    return used


@contextlib.contextmanager
def running(tool: str, options: Options, workdir: Path, setup: bool = True) -> Iterator[Server]:
    """A fresh server on a fresh data directory, set up, settled; stopped and deleted after."""
    os.sync()
    started = time.perf_counter()
    server = spawn(tool, options, workdir)
    try:
        wait_healthy(server)
        server.startup_s = time.perf_counter() - started
        settle(server)
        if setup and tool == "modelkeep":
            assert server.token is not None
            server.context = _load.setup_modelkeep(server.port, server.token)
        elif setup:
            server.context = _load.setup_mlflow(server.port)
        yield server
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        os.sync()


# ---------------------------------------------------------------- load


def run_load(server: Server, op: str, sizes: Sizes, clients: int, out: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(BENCH / "_load.py"), "--tool", server.tool, "--op", op]
    cmd += ["--port", str(server.port), "--context", json.dumps(server.context)]
    cmd += ["--clients", str(clients), "--warmup", str(sizes.warmup_s)]
    cmd += ["--duration", str(sizes.duration_s), "--max-ops", str(sizes.max_ops)]
    cmd += ["--server-pid", str(server.pid), "--out", str(out)]
    if server.token:
        cmd += ["--token", server.token]
    timeout = sizes.warmup_s + sizes.duration_s + 300
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"load generator timed out after {timeout:.0f} s"}
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        return {"error": f"load generator exited {proc.returncode}:\n{tail}"}
    result: dict[str, Any] = json.loads(out.read_text())
    out.unlink(missing_ok=True)
    return result


def measure_server(
    run: Run, tool: str, ops: list[str], round_no: int, sizes: Sizes
) -> dict[str, Any]:
    """One server: every requested op measured against it in turn (resolve before register)."""
    workdir = SERVER_WORK / f"r{round_no}-{tool}"
    results: dict[str, Any] = {}
    try:
        with running(tool, run.options, workdir) as server:
            for op in ops:
                loadavg = os.getloadavg()
                result = run_load(server, op, sizes, run.options.clients, workdir / "l.json")
                result["server_startup_s"] = round(server.startup_s, 2)
                result["loadavg_1m_before"] = round(loadavg[0], 2)
                if "error" in result:
                    result["error"] += f"\nserver log:\n{server.log_tail()}"
                results[op] = result
    except SETUP_ERRORS as exc:
        for op in ops:
            results.setdefault(op, {"error": f"{tool} server: {exc}"})
    return results


def shown(result: dict[str, Any]) -> str:
    if "error" in result:
        return "error"
    lat, cpu = result["latency"], result["cpu_seconds_in_window"]
    return (
        f"{result['rps']:.1f} ops/s, p50 {lat.get('p50_ms', float('nan')):.2f} ms, "
        f"p99 {lat.get('p99_ms', float('nan')):.2f} ms, errors {result['errors']}; "
        f"server CPU {cpu.get('server_ms_per_op', float('nan')):.2f} ms/op, "
        f"load avg {result['loadavg_1m_before']:.1f}"
    )


def http_round(run: Run, ops: list[str], round_no: int, sizes: Sizes) -> dict[str, dict[str, Any]]:
    """Per op: a row with every tool's numbers and the round's ratios."""
    tools = list(run.tools)
    shift = round_no % len(tools)
    order = tools[shift:] + tools[:shift]
    rows: dict[str, dict[str, Any]] = {op: {"round": round_no, "order": order} for op in ops}
    for tool in order:
        results = measure_server(run, tool, ops, round_no, sizes)
        for op in ops:
            result = results[op]
            if "error" in result:
                run.errors.append(f"{op} round {round_no} {tool}: {result['error']}")
            log(f"{op} round {round_no} {tool}: {shown(result)}")
            rows[op][tool] = result
    for row in rows.values():
        row["ratios"] = http_ratios(row)
    return rows


def metric(result: dict[str, Any] | None, name: str) -> float | None:
    if not result or "error" in result or not result.get("ops"):
        return None
    if name == "rps":
        return float(result["rps"])
    if name == "cpu":
        return float(result["cpu_seconds_in_window"]["server_ms_per_op"])
    return float(result["latency"][f"{name}_ms"])


def ratio(top: float | None, bottom: float | None) -> float | None:
    return top / bottom if top and bottom else None


def http_ratios(row: dict[str, Any]) -> dict[str, float | None]:
    mk, ml = row.get("modelkeep"), row.get("mlflow")
    return {
        "rps modelkeep/mlflow": ratio(metric(mk, "rps"), metric(ml, "rps")),
        "p50 mlflow/modelkeep": ratio(metric(ml, "p50"), metric(mk, "p50")),
        "p99 mlflow/modelkeep": ratio(metric(ml, "p99"), metric(mk, "p99")),
        "server CPU per op mlflow/modelkeep": ratio(metric(ml, "cpu"), metric(mk, "cpu")),
    }


def summarize_http(run: Run, op: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    per_tool = {}
    for tool in run.tools:
        results = [r.get(tool) for r in rows]
        per_tool[tool] = {
            "rps": median_or_none([metric(x, "rps") for x in results]),
            "p50_ms": median_or_none([metric(x, "p50") for x in results]),
            "p99_ms": median_or_none([metric(x, "p99") for x in results]),
            "server_cpu_ms_per_op": median_or_none([metric(x, "cpu") for x in results]),
            "errors_total": sum(int(x.get("errors", 0)) for x in results if x),
            "requests_per_op": _load.OPS[(tool, op)],
        }
    names = list(rows[0]["ratios"]) if rows else []
    return {
        "title": TITLES[op],
        "unit": "ops/s (an op may be several requests: requests_per_op) and ms per op",
        "clients": run.options.clients,
        "median_over_rounds": per_tool,
        "median_of_per_round_ratios": {
            name: median_or_none([r["ratios"][name] for r in rows]) for name in names
        },
        "rounds": rows,
    }


def run_http(run: Run, ops: list[str], rounds: int) -> dict[str, Any]:
    log(f"{', '.join(ops)}: warm-up round, discarded")
    http_round(run, ops, 0, WARM)
    collected: dict[str, list[dict[str, Any]]] = {op: [] for op in ops}
    for round_no in range(1, rounds + 1):
        for op, row in http_round(run, ops, round_no, run.sizes).items():
            collected[op].append(row)
    return {op: summarize_http(run, op, rows) for op, rows in collected.items()}


# ---------------------------------------------------------------- transfer


def transfer_worker(
    run: Run, uri: str, token: str | None, source: Path, workdir: Path
) -> dict[str, Any]:
    out = workdir / "transfer.json"
    cmd = [str(run.options.mk_python), str(BENCH / "_transfer.py"), "--uri", uri]
    cmd += ["--file", str(source), "--workdir", str(workdir / "client"), "--out", str(out)]
    if token:
        cmd += ["--token", token]
    os.sync()
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=TRANSFER_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        return {"error": f"transfer worker timed out after {TRANSFER_TIMEOUT_S} s"}
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        return {"error": f"transfer worker exited {proc.returncode}:\n{tail}"}
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def transfer_local(run: Run, round_no: int, source: Path) -> dict[str, Any]:
    workdir = SERVER_WORK / f"t{round_no}-local"
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return transfer_worker(run, str(workdir / "store"), None, source, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        os.sync()


def transfer_http(run: Run, round_no: int, source: Path) -> dict[str, Any]:
    workdir = SERVER_WORK / f"t{round_no}-http"
    try:
        with running("modelkeep", run.options, workdir, setup=False) as server:
            url = f"http://{_load.HOST}:{server.port}"
            result = transfer_worker(run, url, server.token, source, workdir)
            if "error" in result:
                result["error"] += f"\nserver log:\n{server.log_tail()}"
            return result
    except SETUP_ERRORS as exc:
        return {"error": f"modelkeep server: {exc}"}


def speed_of(result: dict[str, Any] | None, key: str) -> float | None:
    if not result or "error" in result:
        return None
    return float(result[key]["mib_per_s"])


def transfer_round(run: Run, round_no: int, source: Path) -> dict[str, Any]:
    order = ["local", "http"] if round_no % 2 else ["http", "local"]
    row: dict[str, Any] = {"round": round_no, "order": order}
    for mode in order:
        result = (transfer_local if mode == "local" else transfer_http)(run, round_no, source)
        if "error" in result:
            run.errors.append(f"transfer round {round_no} {mode}: {result['error']}")
            log(f"transfer round {round_no} {mode}: error")
        else:
            push, pull = result["push"]["mib_per_s"], result["pull"]["mib_per_s"]
            log(f"transfer round {round_no} {mode}: push {push:.0f} MiB/s, pull {pull:.0f} MiB/s")
        row[mode] = result
    local_push = speed_of(row.get("local"), "push")
    row["ratios"] = {
        "http_push/local_push": ratio(speed_of(row.get("http"), "push"), local_push),
        "http_pull/local_push": ratio(speed_of(row.get("http"), "pull"), local_push),
        "local_pull/local_push": ratio(speed_of(row.get("local"), "pull"), local_push),
    }
    return row


def run_transfer(run: Run, rounds: int) -> dict[str, Any]:
    source = SERVER_WORK / "transfer-source.bin"
    rows = []
    try:
        log("transfer: warm-up round, discarded")
        write_random(source, WARM.transfer_bytes)
        transfer_round(run, 0, source)
        check_disk(run.sizes.transfer_bytes)
        log(f"writing a random {run.sizes.transfer_bytes / MIB:.0f} MiB source file")
        write_random(source, run.sizes.transfer_bytes)
        for round_no in range(1, rounds + 1):
            nonce = stamp(source, round_no)
            rows.append({**transfer_round(run, round_no, source), "content_nonce": nonce})
    finally:
        source.unlink(missing_ok=True)
    modes = {
        f"{mode}_{way}_mib_per_s": median_or_none([speed_of(r.get(mode), way) for r in rows])
        for mode in ("local", "http")
        for way in ("push", "pull")
    }
    names = ("http_push/local_push", "http_pull/local_push", "local_pull/local_push")
    return {
        "title": TITLES["transfer"],
        "unit": "MiB/s of one push or pull (median over rounds)",
        "bytes": run.sizes.transfer_bytes,
        "timed": {
            "local": "in one process: mk = modelkeep.connect(<new dir>); mk.push('bench', [file]); "
            "then mk.pull('bench@N', <new dir>) (pull informational)",
            "http": "SDK in a worker process: modelkeep.connect('http://127.0.0.1:PORT', token)"
            ".push('bench', [file]) then .pull('bench@N', <new dir>), against a fresh "
            "`modelkeep server` in another process",
        },
        "dedup": "defeated: new random source file per run, per-round nonce at 16 offsets "
        "(content_nonce), every store new",
        "page_cache": "the source file is hot in the page cache; sync() before each push and "
        "between push and pull (untimed)",
        "median_over_rounds": modes,
        "median_of_per_round_ratios": {
            name: median_or_none([r["ratios"][name] for r in rows]) for name in names
        },
        "rounds": rows,
    }


# ---------------------------------------------------------------- report


def evaluate_targets(scenarios: dict[str, Any]) -> list[dict[str, Any]]:
    """A p99 target needs a strictly lower p99; any failed modelkeep request fails a target."""
    targets = []
    for key, name, threshold in TARGETS:
        if key not in scenarios:
            continue
        value = scenarios[key]["median_of_per_round_ratios"].get(name)
        strict = name.startswith("p99")
        passed = None if value is None else (value > threshold if strict else value >= threshold)
        mk = scenarios[key]["median_over_rounds"].get("modelkeep", {})
        failed = int(mk.get("errors_total", 0)) if isinstance(mk, dict) else 0
        if failed:
            passed = False
        targets.append(
            {
                "scenario": key,
                "ratio": name,
                "target": f"{'>' if strict else '>='} {threshold}",
                "median_of_per_round_ratios": value,
                "modelkeep_failed_requests": failed,
                "pass": passed,
            }
        )
    return targets


def tool_version(python: Path, code: str) -> str | None:
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def machine_info(run: Run) -> dict[str, Any]:
    meminfo = Path("/proc/meminfo")
    mem = meminfo.read_text().splitlines()[0] if meminfo.exists() else "?"
    options = run.options
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "platform": platform.platform(),
        "memory": mem.split(":", 1)[-1].strip(),
        "loadavg_at_start": os.getloadavg(),
        "driver_and_load_generator_python": platform.python_version(),
        "modelkeep_version": tool_version(
            options.mk_python, "import modelkeep; print(modelkeep.__version__)"
        ),
        "mlflow_version": installed_mlflow(options.mlflow_python)
        if options.mlflow_python
        else None,
    }


def server_config(run: Run) -> dict[str, str]:
    mk_workers = run.options.mk_workers
    return {
        "modelkeep": "`modelkeep server --host 127.0.0.1 --port P`"
        + (f" --workers {mk_workers}" if mk_workers else "")
        + " (uvicorn; "
        + (f"{mk_workers} worker processes" if mk_workers else "one process, its default")
        + "); embedded SQLite + local blobs in a fresh directory; admin bearer token",
        "mlflow": f"`mlflow server --backend-store-uri sqlite:///<dir>/mlflow.db "
        f"--artifacts-destination <dir>/artifacts --serve-artifacts --workers "
        f"{run.options.mlflow_workers}` (uvicorn; {MLFLOW_DEFAULT_WORKERS} workers is "
        "MLflow's default; its job runner and huey consumers run too, as by default); "
        "no auth",
        "load_generator": f"bench/_load.py in its own process: {run.options.clients} threads, "
        "one keep-alive HTTP/1.1 connection each (http.client), to 127.0.0.1 only",
        "cores": f"{os.cpu_count()} (servers and load generator share them)",
    }


def parse_cli(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=None, help="default 5, quick 3")
    parser.add_argument("--quick", action="store_true", help="3 s windows, 64 MiB transfer")
    parser.add_argument("--scenarios", default=None, help="subset of " + ",".join(ALL_SCENARIOS))
    parser.add_argument("--tools", default=",".join(ALL_TOOLS), help="subset of modelkeep,mlflow")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (16)")
    parser.add_argument("--duration", type=float, default=None, help="measured s (10, quick 3)")
    parser.add_argument("--modelkeep-workers", type=int, default=None, help="default: its own")
    parser.add_argument("--mlflow-workers", type=int, default=MLFLOW_DEFAULT_WORKERS)
    parser.add_argument("--modelkeep-python", default=None, help="default: <repo>/.venv/bin/python")
    parser.add_argument("--strict", action="store_true", help="exit 1 if a target fails")
    ns = parser.parse_args(argv)
    ns.tools = [t.strip() for t in ns.tools.split(",") if t.strip()]
    if ns.scenarios is None:  # the transfer scenario needs modelkeep
        ns.scenarios = [s for s in DEFAULT_SCENARIOS if s != "transfer" or "modelkeep" in ns.tools]
    else:
        ns.scenarios = [s.strip() for s in ns.scenarios.split(",") if s.strip()]
    bad = [s for s in ns.scenarios if s not in ALL_SCENARIOS]
    bad += [t for t in ns.tools if t not in ALL_TOOLS]
    if bad:
        parser.error(f"unknown scenario or tool: {', '.join(bad)}")
    if ns.rounds is not None and ns.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not 1 <= ns.clients <= 256 or (ns.duration is not None and not 0 < ns.duration <= 120):
        parser.error("--clients must be 1..256 and --duration 0..120 s")
    if "transfer" in ns.scenarios and "modelkeep" not in ns.tools:
        parser.error("the transfer scenario measures modelkeep only")
    return ns


def all_pass(targets: list[dict[str, Any]]) -> bool | None:
    if not targets or any(t["pass"] is None for t in targets):
        return None
    return all(t["pass"] for t in targets)


def check_server_command(python: Path) -> None:
    cmd = [str(python.parent / "modelkeep"), "server", "--help"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["?"]
        raise SystemExit(f"`modelkeep server` is not usable: {tail[0]}")


def build_run(ns: argparse.Namespace) -> Run:
    sizes = QUICK if ns.quick else FULL
    if ns.duration is not None:
        sizes = dataclasses.replace(sizes, duration_s=ns.duration)
    mk_python = REPO / ".venv" / "bin" / "python"
    if "modelkeep" in ns.tools:
        mk_python = modelkeep_python(ns.modelkeep_python)
        check_server_command(mk_python)
    options = Options(
        clients=ns.clients,
        mk_python=mk_python,
        mk_workers=ns.modelkeep_workers,
        mlflow_workers=ns.mlflow_workers,
        mlflow_python=ensure_mlflow_venv() if "mlflow" in ns.tools else None,
    )
    return Run(sizes=sizes, tools=list(ns.tools), options=options)


def main(argv: list[str] | None = None) -> int:
    ns = parse_cli(argv)
    run = build_run(ns)
    rounds = ns.rounds or run.sizes.rounds
    started = dt.datetime.now(dt.UTC)
    SERVER_WORK.mkdir(parents=True, exist_ok=True)
    machine = machine_info(run)
    scenarios: dict[str, Any] = {}
    http_ops = [op for op in LOAD_OPS if op in ns.scenarios]
    if http_ops:
        scenarios.update(run_http(run, http_ops, rounds))
    if "transfer" in ns.scenarios:
        scenarios["transfer"] = run_transfer(run, rounds)
    targets = evaluate_targets(scenarios)
    report = {
        "benchmark": "modelkeep server vs mlflow server over HTTP, both on SQLite, same machine",
        "started_at_utc": started.isoformat(timespec="seconds"),
        "duration_s": round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1),
        "config": {
            "quick": ns.quick,
            "rounds": rounds,
            "scenarios": ns.scenarios,
            "tools": ns.tools,
            "sizes": {k: v for k, v in dataclasses.asdict(run.sizes).items() if k != "rounds"},
            "servers": server_config(run),
            "mlflow_pin": MLFLOW_VERSION,
        },
        "method": "warm-up round discarded; per round every tool gets a fresh server and data "
        "dir (who goes first rotates); the load generator warms up (discarded) then measures "
        "a fixed window; ratio per round, median of per-round ratios reported; rps counts "
        "successful ops only; latency percentiles are nearest-rank over the window's ops",
        "machine": machine,
        "scenarios": scenarios,
        "targets": targets,
        "all_targets_pass": all_pass(targets),
        "errors": run.errors,
    }
    print(json.dumps(report, indent=2))
    if run.errors:
        return 2
    if ns.strict and any(t["pass"] is not True for t in targets):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
