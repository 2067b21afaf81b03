"""Benchmark model serving: `modelkeep gateway` against `mlflow models serve`, in one run.

Scenarios (one small scikit-learn model, 16 concurrent clients from another process):
  a/b  the gateway serving one stable version vs `mlflow models serve --env-manager local`
       (MLflow in bench/.venv-mlflow): requests/s and p50/p99 latency, both on POST
       /invocations with the same MLflow scoring body
       (target: gateway rps >= 3x MLflow's, with a lower p99)
  c    the cost of routing: a gateway whose environment has a stable version, a 10% canary
       and a 10% shadow (metrics are always on) vs a gateway serving one version
       (target: routed rps >= 0.9x plain rps)
  d    swap under load: redeploy the stable version back and forth while clients run
       (target: 0 failed requests)

Method: a registry (`modelkeep server`, SQLite) holds three fits of the model (skops); one
gateway follows env "plain" (v1 stable), another env "routed" (v1 stable, v2 canary 10%, v3
shadow 10%). MLflow serves the same fit saved with mlflow.sklearn. The load comes from
bench/_serving_load.py in its own process (one keep-alive connection per client), which warms
up (discarded) before it measures. A warm-up pass of every target is discarded; then the
targets alternate round by round (who goes first rotates), ratios are computed per round and
the median of the per-round ratios is reported next to every round's raw numbers.

Usage: python bench/serving.py [--quick] [--rounds N] [--no-mlflow] > result.json
One JSON document goes to stdout; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import http.client
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry import BENCH, MLFLOW_VERSION, REPO, WORK, ensure_mlflow_venv, log, median_or_none

SERVING_WORK = WORK / "serving"
HOST = "127.0.0.1"
MODEL = "bench-model"
START_TIMEOUT_S = 180.0
BODY = json.dumps({"dataframe_split": {"columns": ["amount", "hour"], "data": [[1000.0, 4.0]]}})
TARGETS = (  # (ratio, threshold): every ratio is "higher is better for modelkeep"
    ("rps gateway/mlflow", 3.0),
    ("p99 mlflow/gateway", 1.0),
    ("rps routed/plain", 0.9),
)


@dataclass(frozen=True)
class Sizes:
    rounds: int
    warmup_s: float
    duration_s: float
    swap_s: float
    swaps: int


FULL = Sizes(rounds=3, warmup_s=2.0, duration_s=10.0, swap_s=20.0, swaps=6)
QUICK = Sizes(rounds=2, warmup_s=1.0, duration_s=4.0, swap_s=10.0, swaps=4)


@dataclass
class Proc:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def spawn(name: str, cmd: list[str], env: dict[str, str], workdir: Path, port: int) -> Proc:
    log_path = workdir / f"{name}.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    return Proc(name, port, process, log_path)


def get(port: int, path: str, body: str | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        headers = {"content-type": "application/json"} if body else {}
        conn.request("POST" if body else "GET", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def wait_for(proc: Proc, path: str, body: str | None = None) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")
        with contextlib.suppress(OSError, http.client.HTTPException):
            if get(proc.port, path, body)[0] == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"{proc.name} did not answer {path} in {START_TIMEOUT_S:.0f} s")


def served_version(port: int) -> str:
    status, headers, data = get(port, "/invocations", BODY)
    if status != 200:
        raise RuntimeError(f"gateway answered {status}: {data[:200]!r}")
    return {k.lower(): v for k, v in headers.items()}["modelkeep-version"]


# ---------------------------------------------------------------- set-up


def fit(python: Path, fmt: str, c: float, out: Path) -> Path:
    cmd = [str(python), str(BENCH / "_serving_model.py"), "--format", fmt]
    subprocess.run([*cmd, "--c", str(c), "--out", str(out)], check=True, timeout=300)
    return out


def registry(workdir: Path, env: dict[str, str]) -> tuple[Proc, str]:
    """`modelkeep server` on a fresh SQLite store, and an admin token."""
    store = {**env, "MODELKEEP_URI": str(workdir / "store")}
    cli = [sys.executable, "-m", "modelkeep"]
    created = subprocess.run(
        [*cli, "--json", "users", "create", "bench", "--role", "admin"],
        env=store,
        capture_output=True,
        text=True,
        check=True,
    )
    port = free_port()
    server = spawn(
        "registry", [*cli, "server", "--host", HOST, "--port", str(port)], store, workdir, port
    )
    wait_for(server, "/healthz")
    return server, str(json.loads(created.stdout)["token"])


def publish(url: str, token: str, workdir: Path) -> list[str]:
    """Three fits (C = 1, 0.5, 0.25) pushed; env plain: v1; env routed: v1 + canary + shadow."""
    import modelkeep

    with modelkeep.connect(url, token=token) as mk:
        mk.create_model(MODEL)
        refs = [
            mk.push(MODEL, [fit(Path(sys.executable), "skops", c, workdir / f"v{i}")]).ref
            for i, c in enumerate((1.0, 0.5, 0.25), start=1)
        ]
        mk.deploy(refs[0], env="plain", reason="bench")
        mk.deploy(refs[0], env="routed", reason="bench")
        mk.deploy(refs[1], env="routed", canary=10, reason="bench canary")
        mk.deploy(refs[2], env="routed", shadow=10, reason="bench shadow")
        routed = mk.deployment(MODEL, env="routed").to_dict()
    log(f"routed desired state: {json.dumps(routed['backends'])}")
    return refs


def gateway(name: str, env_name: str, url: str, token: str, workdir: Path) -> Proc:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "MODELKEEP_URI": url,
        "MODELKEEP_TOKEN": token,
        "MODELKEEP_CACHE_DIR": str(workdir / f"cache-{name}"),
    }
    cmd = [sys.executable, "-m", "modelkeep", "gateway", "--env", env_name]
    proc = spawn(name, [*cmd, "--host", HOST, "--port", str(port)], env, workdir, port)
    wait_for(proc, f"/v2/models/{MODEL}/ready")
    return proc


def mlflow_serve(python: Path, workdir: Path) -> Proc:
    model = fit(python, "mlflow", 1.0, workdir / "mlflow-model")
    port = free_port()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}
    env.pop("PYTHONPATH", None)
    env["PATH"] = f"{python.parent}{os.pathsep}{env.get('PATH', '')}"  # it runs `uvicorn`
    cmd = [str(python.parent / "mlflow"), "models", "serve", "-m", str(model)]
    cmd += ["--env-manager", "local", "--host", HOST, "--port", str(port)]
    proc = spawn("mlflow", cmd, env, workdir, port)
    wait_for(proc, "/ping")
    return proc


# ---------------------------------------------------------------- load


def load_command(port: int, clients: int, warmup: float, duration: float, out: Path) -> list[str]:
    cmd = [sys.executable, str(BENCH / "_serving_load.py"), "--port", str(port)]
    cmd += ["--path", "/invocations", "--body", BODY, "--clients", str(clients)]
    return [*cmd, "--warmup", str(warmup), "--duration", str(duration), "--out", str(out)]


def load(proc: Proc, clients: int, warmup: float, duration: float, out: Path) -> dict[str, Any]:
    cmd = load_command(proc.port, clients, warmup, duration, out)
    subprocess.run(cmd, check=True, timeout=warmup + duration + 120)
    result: dict[str, Any] = json.loads(out.read_text())
    out.unlink()
    latency = result["latency"]
    log(
        f"  {proc.name:7} {result['rps']:8.0f} rps  p50 {latency.get('p50_ms', 0):6.2f} ms"
        f"  p99 {latency.get('p99_ms', 0):6.2f} ms  failed {result['failed']}"
    )
    return result


def ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def round_ratios(measured: dict[str, dict[str, Any]]) -> dict[str, float | None]:
    def rps(name: str) -> float | None:
        return measured[name]["rps"] if name in measured else None

    def p99(name: str) -> float | None:
        return measured[name]["latency"].get("p99_ms") if name in measured else None

    return {
        "rps gateway/mlflow": ratio(rps("plain"), rps("mlflow")),
        "p99 mlflow/gateway": ratio(p99("mlflow"), p99("plain")),
        "rps routed/plain": ratio(rps("routed"), rps("plain")),
    }


def measure(procs: list[Proc], sizes: Sizes, clients: int, workdir: Path) -> dict[str, Any]:
    out = workdir / "load.json"
    log("warm-up pass of every target, discarded")
    for proc in procs:
        load(proc, clients, sizes.warmup_s, sizes.warmup_s, out)
    rounds: list[dict[str, Any]] = []
    for number in range(sizes.rounds):
        shift = number % len(procs)
        order = procs[shift:] + procs[:shift]
        log(f"round {number + 1}/{sizes.rounds}: {[p.name for p in order]}")
        measured = {p.name: load(p, clients, sizes.warmup_s, sizes.duration_s, out) for p in order}
        rounds.append(
            {"order": [p.name for p in order], **measured, "ratios": round_ratios(measured)}
        )
    medians = {key: median_or_none([r["ratios"][key] for r in rounds]) for key, _ in TARGETS}
    summary = {
        name: {
            "rps": median_or_none([r[name]["rps"] for r in rounds]),
            "p50_ms": median_or_none([r[name]["latency"].get("p50_ms") for r in rounds]),
            "p99_ms": median_or_none([r[name]["latency"].get("p99_ms") for r in rounds]),
            "failed": sum(r[name]["failed"] for r in rounds),
        }
        for name in (p.name for p in procs)
    }
    return {"median_of_round_medians": summary, "median_ratios": medians, "rounds": rounds}


def swap_under_load(
    plain: Proc, refs: list[str], url: str, token: str, sizes: Sizes, clients: int, workdir: Path
) -> dict[str, Any]:
    """Redeploy env plain's stable version back and forth while the clients run."""
    import modelkeep

    out = workdir / "swap.json"
    warmup = 1.0
    cmd = load_command(plain.port, clients, warmup, sizes.swap_s, out)
    loader = subprocess.Popen(cmd)
    swaps: list[dict[str, Any]] = []
    time.sleep(warmup + 1.0)
    with modelkeep.connect(url, token=token) as mk:
        for number in range(sizes.swaps):
            target = refs[1] if number % 2 == 0 else refs[0]
            began = time.perf_counter()
            mk.deploy(target, env="plain", reason=f"bench swap {number + 1}")
            seen = None
            while time.perf_counter() - began < 10.0:
                seen = served_version(plain.port)
                if seen == target:
                    break
                time.sleep(0.02)
            swaps.append(
                {"to": target, "served": seen == target, "seconds": time.perf_counter() - began}
            )
            time.sleep(max(0.0, sizes.swap_s / (sizes.swaps + 1) - (time.perf_counter() - began)))
    loader.wait(timeout=sizes.swap_s + 120)
    result: dict[str, Any] = json.loads(out.read_text())
    log(f"swap: {len(swaps)} redeploys, {result['ok']} ok, {result['failed']} failed requests")
    return {"swaps": swaps, "load": result, "failed_requests": result["failed"]}


# ---------------------------------------------------------------- report


def verdict(name: str, threshold: str, value: float | None, met: bool | None) -> dict[str, Any]:
    return {"ratio": name, "threshold": threshold, "value": value, "met": met}


def verdicts(ratios: dict[str, float | None], failed_in_swap: int) -> list[dict[str, Any]]:
    found = []
    for key, limit in TARGETS:
        value = ratios.get(key)
        found.append(verdict(key, f">= {limit}", value, None if value is None else value >= limit))
    found.append(
        verdict("failed requests during swaps", "== 0", failed_in_swap, failed_in_swap == 0)
    )
    return found


@contextlib.contextmanager
def stopping(procs: list[Proc]) -> Iterator[list[Proc]]:
    try:
        yield procs
    finally:
        for proc in reversed(procs):
            proc.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="about a minute")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--no-mlflow", action="store_true", help="gateway scenarios only")
    ns = parser.parse_args()
    sizes = QUICK if ns.quick else FULL
    if ns.rounds:
        sizes = Sizes(ns.rounds, sizes.warmup_s, sizes.duration_s, sizes.swap_s, sizes.swaps)
    shutil.rmtree(SERVING_WORK, ignore_errors=True)
    SERVING_WORK.mkdir(parents=True)
    started = time.perf_counter()
    errors: list[str] = []
    report: dict[str, Any] = {
        "benchmark": "serving",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
        },
        "mode": "quick" if ns.quick else "full",
        "clients": ns.clients,
        "sizes": dataclasses.asdict(sizes),
        "request": {"path": "POST /invocations", "body": json.loads(BODY)},
    }
    mlflow_python = None
    if not ns.no_mlflow:
        try:
            mlflow_python = ensure_mlflow_venv()
            report["mlflow_version"] = MLFLOW_VERSION
        except (subprocess.SubprocessError, OSError, SystemExit) as exc:
            errors.append(f"MLflow not installed, (a)/(b) skipped: {exc}")
    with stopping([]) as procs:
        server, token = registry(SERVING_WORK, dict(os.environ))
        procs.append(server)
        url = f"http://{HOST}:{server.port}"
        refs = publish(url, token, SERVING_WORK)
        procs.append(gateway("plain", "plain", url, token, SERVING_WORK))
        procs.append(gateway("routed", "routed", url, token, SERVING_WORK))
        targets = [procs[1], procs[2]]
        if mlflow_python is not None:
            try:
                procs.append(mlflow_serve(mlflow_python, SERVING_WORK))
                targets.insert(1, procs[-1])
            except (RuntimeError, subprocess.SubprocessError) as exc:
                errors.append(f"mlflow models serve did not start: {exc}")
        report["served"] = {"plain": served_version(procs[1].port), "refs": refs}
        report["throughput"] = measure(targets, sizes, ns.clients, SERVING_WORK)
        report["swap"] = swap_under_load(
            procs[1], refs, url, token, sizes, ns.clients, SERVING_WORK
        )
    report["targets"] = verdicts(
        report["throughput"]["median_ratios"], report["swap"]["failed_requests"]
    )
    report["errors"] = errors
    report["wall_s"] = round(time.perf_counter() - started, 1)
    shutil.rmtree(SERVING_WORK, ignore_errors=True)
    json.dump(report, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    main()
