"""Load for bench/serving.py: N threads, one keep-alive connection each, POSTing one body.

Run as a process of its own (standard library only)::

    python bench/_serving_load.py --port 8000 --path /invocations --body '{...}' \
        --clients 16 --warmup 2 --duration 10 --out result.json

Warm-up requests are discarded. A request fails when it raises or does not answer 200; the
result counts failures (with a few samples) next to throughput and latency percentiles.
"""

from __future__ import annotations

import argparse
import http.client
import json
import threading
import time
from pathlib import Path
from typing import Any

from _load import HOST, latency_summary


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.samples_ns: list[int] = []
        self.failed = 0
        self.failures: list[str] = []

    def add(self, elapsed_ns: int, failure: str | None) -> None:
        with self.lock:
            if failure is None:
                self.samples_ns.append(elapsed_ns)
                return
            self.failed += 1
            if len(self.failures) < 5:
                self.failures.append(failure)


def one_request(conn: http.client.HTTPConnection, path: str, body: bytes) -> str | None:
    """None when the answer is a 200, else why not."""
    try:
        conn.request("POST", path, body=body, headers={"content-type": "application/json"})
        response = conn.getresponse()
        data = response.read()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()  # http.client reconnects on the next request
        return f"{type(exc).__name__}: {exc}"
    if response.will_close:
        conn.close()
    if response.status != 200:
        return f"{response.status} {data[:200].decode(errors='replace')}"
    return None


def client(ns: argparse.Namespace, start: float, stop: float, tally: Tally) -> None:
    conn = http.client.HTTPConnection(HOST, ns.port, timeout=30)
    body = ns.body.encode()
    while True:
        began = time.perf_counter_ns()
        if began / 1e9 >= stop:
            break
        failure = one_request(conn, ns.path, body)
        if began / 1e9 >= start:  # warm-up requests are not counted
            tally.add(time.perf_counter_ns() - began, failure)
    conn.close()


def run(ns: argparse.Namespace) -> dict[str, Any]:
    tally = Tally()
    now = time.perf_counter_ns() / 1e9
    start, stop = now + ns.warmup, now + ns.warmup + ns.duration
    threads = [
        threading.Thread(target=client, args=(ns, start, stop, tally), daemon=True)
        for _ in range(ns.clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=ns.warmup + ns.duration + 60)
    ok = len(tally.samples_ns)
    return {
        "clients": ns.clients,
        "duration_s": ns.duration,
        "ok": ok,
        "failed": tally.failed,
        "failures": tally.failures,
        "rps": ok / ns.duration,
        "latency": latency_summary(tally.samples_ns),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--body", required=True)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds, discarded")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds")
    parser.add_argument("--out", type=Path, required=True)
    ns = parser.parse_args()
    ns.out.write_text(json.dumps(run(ns)))


if __name__ == "__main__":
    main()
