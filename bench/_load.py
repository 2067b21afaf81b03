"""HTTP load generator and REST set-up for bench/server.py (stdlib only: any Python 3.11).

Run as a process of its own, apart from the server it loads::

    python3.11 bench/_load.py --tool modelkeep --op resolve --port 8123 --token mk_... \\
        --clients 16 --warmup 2 --duration 10 --out result.json

``--clients`` threads each keep one HTTP/1.1 connection to 127.0.0.1 (reopened when the server
closes it) and run one operation after another. Operations that start during the warm-up are
discarded; the measurement counts the operations that start in the ``--duration`` window
(and stops early after ``--max-ops``). An operation is one *logical* call, which may take
several requests (see ``OPS``); it fails when any request errs or answers a non-2xx status.
The driver imports this module for the set-up calls (``setup_modelkeep``, ``setup_mlflow``).
"""

from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

HOST = "127.0.0.1"
MODEL = "bench"
ALIAS = "champion"
KIB = 1024
PARAMS = {"lr": 0.1}
METRICS = {"auc": 0.9}

OPS = {
    ("modelkeep", "resolve"): ["GET /api/v1/resolve?ref=bench@champion"],
    ("modelkeep", "register"): [
        "PUT /api/v1/blobs/sha256:<hex> (1 KiB body)",
        "POST /api/v1/models/bench/versions {files: [1 file], metadata: {params, metrics}}",
    ],
    ("mlflow", "resolve"): [
        "GET /api/2.0/mlflow/registered-models/alias?name=bench&alias=champion"
    ],
    ("mlflow", "register"): [
        "POST /api/2.0/mlflow/runs/create",
        "POST /api/2.0/mlflow/runs/log-batch (params + metrics)",
        "PUT /api/2.0/mlflow-artifacts/artifacts/<exp>/<run>/artifacts/model/model.bin (1 KiB)",
        "POST /api/2.0/mlflow/model-versions/create (source = the run's model dir, run_id)",
    ],
    ("modelkeep", "health"): ["GET /healthz"],
    ("mlflow", "health"): ["GET /health"],
}


class HttpError(Exception):
    pass


class Conn:
    """One keep-alive connection; http.client reopens it when the server closed it."""

    def __init__(self, port: int, token: str | None) -> None:
        self.http = http.client.HTTPConnection(HOST, port, timeout=60)
        self.headers = {"authorization": f"Bearer {token}"} if token else {}
        self.opened = 0

    def call(self, method: str, path: str, body: bytes | None = None, ctype: str = "") -> bytes:
        headers = dict(self.headers)
        if ctype:
            headers["content-type"] = ctype
        if self.http.sock is None:
            self.opened += 1
        try:
            self.http.request(method, path, body=body, headers=headers)
            response = self.http.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self.http.close()
            raise HttpError(f"{method} {path.split('?')[0]}: {type(exc).__name__}: {exc}") from None
        if response.will_close:
            self.http.close()
        if response.status >= 300:
            text = data[:200].decode(errors="replace")
            raise HttpError(f"{method} {path.split('?')[0]}: {response.status} {text}")
        return data

    def json(self, method: str, path: str, doc: Any = None) -> Any:
        body = json.dumps(doc).encode() if doc is not None else None
        data = self.call(method, path, body, "application/json" if body is not None else "")
        return json.loads(data) if data else None

    def close(self) -> None:
        self.http.close()


def small_payload(counter: int) -> bytes:
    """1 KiB, unique (thread/counter/time + random bytes): content addressing cannot dedup it."""
    head = f"modelkeep-bench {os.getpid()} {threading.get_ident()} {counter} {time.time_ns()}\n"
    return head.encode() + os.urandom(KIB - len(head))


# ---------------------------------------------------------------- operations


def mk_resolve(conn: Conn, _ctx: dict[str, str], _payload: bytes) -> None:
    conn.call("GET", f"/api/v1/resolve?ref={MODEL}@{ALIAS}")


def mk_register(conn: Conn, _ctx: dict[str, str], payload: bytes) -> None:
    digest = "sha256:" + hashlib.sha256(payload).hexdigest()
    conn.call("PUT", f"/api/v1/blobs/{digest}", payload, "application/octet-stream")
    files = [{"path": "model.bin", "size": len(payload), "digest": digest}]
    body = {"files": files, "metadata": {"params": PARAMS, "metrics": METRICS}}
    conn.json("POST", f"/api/v1/models/{MODEL}/versions", body)


def mlflow_resolve(conn: Conn, _ctx: dict[str, str], _payload: bytes) -> None:
    conn.call("GET", f"/api/2.0/mlflow/registered-models/alias?name={MODEL}&alias={ALIAS}")


def mlflow_register(conn: Conn, ctx: dict[str, str], payload: bytes) -> None:
    now = int(time.time() * 1000)
    run = conn.json("POST", "/api/2.0/mlflow/runs/create", {"experiment_id": ctx["experiment_id"]})[
        "run"
    ]["info"]
    run_id = run["run_id"]
    params = [{"key": k, "value": str(v)} for k, v in PARAMS.items()]
    metrics = [{"key": k, "value": v, "timestamp": now, "step": 0} for k, v in METRICS.items()]
    batch = {"run_id": run_id, "params": params, "metrics": metrics}
    conn.json("POST", "/api/2.0/mlflow/runs/log-batch", batch)
    root = run["artifact_uri"]  # mlflow-artifacts:/<experiment>/<run>/artifacts
    relative = root.removeprefix("mlflow-artifacts:").lstrip("/")
    path = f"/api/2.0/mlflow-artifacts/artifacts/{quote(relative)}/model/model.bin"
    conn.call("PUT", path, payload, "application/octet-stream")
    version = {"name": MODEL, "source": f"{root}/model", "run_id": run_id}
    conn.json("POST", "/api/2.0/mlflow/model-versions/create", version)


def mk_health(conn: Conn, _ctx: dict[str, str], _payload: bytes) -> None:
    conn.call("GET", "/healthz")


def mlflow_health(conn: Conn, _ctx: dict[str, str], _payload: bytes) -> None:
    conn.call("GET", "/health")


Op = Callable[[Conn, dict[str, str], bytes], None]
FUNCS: dict[tuple[str, str], Op] = {
    ("modelkeep", "resolve"): mk_resolve,
    ("modelkeep", "register"): mk_register,
    ("modelkeep", "health"): mk_health,
    ("mlflow", "resolve"): mlflow_resolve,
    ("mlflow", "register"): mlflow_register,
    ("mlflow", "health"): mlflow_health,
}


# ---------------------------------------------------------------- set-up (driver side)


def setup_modelkeep(port: int, token: str) -> dict[str, str]:
    """Model ``bench`` with version 1 and ``champion`` -> 1."""
    conn = Conn(port, token)
    try:
        conn.json("POST", "/api/v1/models", {"name": MODEL})
        mk_register(conn, {}, small_payload(0))
        conn.json("PUT", f"/api/v1/models/{MODEL}/aliases/{ALIAS}", {"version": "1"})
        got = conn.json("GET", f"/api/v1/resolve?ref={MODEL}@{ALIAS}")
        if str(got.get("number")) != "1":
            raise RuntimeError(f"modelkeep resolved {MODEL}@{ALIAS} to {got}, expected 1")
    finally:
        conn.close()
    return {}


def setup_mlflow(port: int) -> dict[str, str]:
    """Experiment ``bench``, registered model ``bench`` with version 1 and ``champion`` -> 1."""
    conn = Conn(port, None)
    try:
        experiment_id = conn.json("POST", "/api/2.0/mlflow/experiments/create", {"name": MODEL})[
            "experiment_id"
        ]
        conn.json("POST", "/api/2.0/mlflow/registered-models/create", {"name": MODEL})
        ctx = {"experiment_id": str(experiment_id)}
        mlflow_register(conn, ctx, small_payload(0))
        alias = {"name": MODEL, "alias": ALIAS, "version": "1"}
        conn.json("POST", "/api/2.0/mlflow/registered-models/alias", alias)
        got = conn.json(
            "GET", f"/api/2.0/mlflow/registered-models/alias?name={MODEL}&alias={ALIAS}"
        )
        if str(got["model_version"]["version"]) != "1":
            raise RuntimeError(f"MLflow resolved {MODEL}@{ALIAS} to {got}, expected 1")
    finally:
        conn.close()
    return ctx


# ---------------------------------------------------------------- CPU of the server


def process_tree_cpu(root: int) -> float:
    """CPU seconds (user + system) used so far by ``root`` and its live descendants."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    tree, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in tree]
        tree.update(children)
        frontier.extend(children)
    return sum(cpu.get(pid, 0.0) for pid in tree)


# ---------------------------------------------------------------- the load


@dataclass
class Window:
    warm_end: float
    end: float
    max_ops: int
    started: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def claim(self, now: float) -> bool | None:
        """None: stop. True: a measured op. False: a warm-up op."""
        if now >= self.end:
            return None
        if now < self.warm_end:
            return False
        with self.lock:
            if self.started >= self.max_ops:
                return None
            self.started += 1
        return True


@dataclass
class Tally:
    latencies_ns: list[int] = field(default_factory=list)
    last_end: float = 0.0
    errors: int = 0
    warmup_ops: int = 0
    warmup_errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    connections: int = 0


def client_loop(op: Op, conn: Conn, ctx: dict[str, str], window: Window, tally: Tally) -> None:
    counter = 0
    needs_payload = op in (mk_register, mlflow_register)
    while True:
        counter += 1
        payload = small_payload(counter) if needs_payload else b""
        start_ns = time.perf_counter_ns()
        measured = window.claim(start_ns / 1e9)
        if measured is None:
            break
        try:
            op(conn, ctx, payload)
            failed = None
        except HttpError as exc:
            failed = str(exc)
        elapsed = time.perf_counter_ns() - start_ns
        if not measured:
            tally.warmup_ops += 1
            tally.warmup_errors += failed is not None
        elif failed is None:
            tally.latencies_ns.append(elapsed)
            tally.last_end = max(tally.last_end, (start_ns + elapsed) / 1e9)
        else:
            tally.errors += 1
            tally.last_end = max(tally.last_end, (start_ns + elapsed) / 1e9)
            if len(tally.error_samples) < 5:
                tally.error_samples.append(failed)
    tally.connections = conn.opened
    conn.close()


def percentile(sorted_ms: list[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, min(len(sorted_ms), round(q / 100 * len(sorted_ms) + 0.5)))
    return sorted_ms[rank - 1]


def latency_summary(samples_ns: list[int]) -> dict[str, float | int]:
    ms = sorted(s / 1e6 for s in samples_ns)
    if not ms:
        return {"n": 0}
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": ms[-1],
        "mean_ms": statistics.fmean(ms),
        "min_ms": ms[0],
    }


def run_load(ns: argparse.Namespace) -> dict[str, Any]:
    op = FUNCS[(ns.tool, ns.op)]
    ctx = json.loads(ns.context)
    conns = [Conn(ns.port, ns.token) for _ in range(ns.clients)]
    tallies = [Tally() for _ in conns]
    begin = time.perf_counter()
    window = Window(begin + ns.warmup, begin + ns.warmup + ns.duration, ns.max_ops)
    threads = [
        threading.Thread(target=client_loop, args=(op, conn, ctx, window, tally), daemon=True)
        for conn, tally in zip(conns, tallies, strict=True)
    ]
    for thread in threads:
        thread.start()
    cpu_server = cpu_self = None
    time.sleep(max(0.0, window.warm_end - time.perf_counter()))
    if ns.server_pid:
        cpu_server = process_tree_cpu(ns.server_pid)
    cpu_self = time.process_time()
    for thread in threads:
        thread.join(ns.warmup + ns.duration + 120)
    if any(thread.is_alive() for thread in threads):
        raise SystemExit("a client thread hung for 2 minutes after the end of the window")
    measured_end = max([t.last_end for t in tallies] + [window.warm_end])
    elapsed = max(measured_end - window.warm_end, 1e-9)
    cpu = {"load_generator_s": time.process_time() - cpu_self}
    samples = [s for t in tallies for s in t.latencies_ns]
    errors = sum(t.errors for t in tallies)
    if ns.server_pid and cpu_server is not None:
        cpu["server_s"] = process_tree_cpu(ns.server_pid) - cpu_server
        cpu["server_ms_per_op"] = cpu["server_s"] * 1000 / max(1, len(samples) + errors)
    return {
        "tool": ns.tool,
        "op": ns.op,
        "requests_per_op": OPS[(ns.tool, ns.op)],
        "clients": ns.clients,
        "window_s": elapsed,
        "ops": len(samples),
        "errors": errors,
        "error_rate": errors / max(1, errors + len(samples)),
        "error_samples": [e for t in tallies for e in t.error_samples][:5],
        "rps": len(samples) / elapsed,
        "latency": latency_summary(samples),
        "warmup_ops": sum(t.warmup_ops for t in tallies),
        "warmup_errors": sum(t.warmup_errors for t in tallies),
        "connections_opened": sum(t.connections for t in tallies),
        "cpu_seconds_in_window": cpu,
        "hit_max_ops": window.started >= ns.max_ops,
    }


def parse_cli() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tool", choices=["modelkeep", "mlflow"], required=True)
    parser.add_argument("--op", choices=["resolve", "register", "health"], required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--token", default=None)
    parser.add_argument("--context", default="{}", help="JSON from setup (MLflow experiment id)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds, discarded")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--max-ops", type=int, default=200_000, help="cap on measured ops")
    parser.add_argument("--server-pid", type=int, default=0, help="to report its CPU time")
    parser.add_argument("--out", type=Path, required=True)
    ns = parser.parse_args()
    if not 1 <= ns.clients <= 256 or ns.duration > 600 or ns.warmup > 600:
        parser.error("--clients 1..256, --duration and --warmup at most 600 s")
    return ns


def main() -> None:
    ns = parse_cli()
    ns.out.write_text(json.dumps(run_load(ns)))


if __name__ == "__main__":
    main()
