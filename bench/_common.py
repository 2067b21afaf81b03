"""Helpers shared by the benchmark workers (stdlib only: imported from several venvs).

A worker is started by ``bench/registry.py`` once per tool and round. It does its own warm-up,
times many operations (so process start-up and imports are never timed) and writes one JSON
document to the ``--out`` path.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KIB = 1024
MIB = 1024 * KIB
BLOCK = 4 * MIB
PARAMS: dict[str, float] = {"lr": 0.1}
METRICS: dict[str, float] = {"auc": 0.9}
MODEL = "bench"
ALIAS = "champion"


@dataclass(frozen=True)
class WorkerArgs:
    """What the driver asks a worker to measure."""

    scenario: str
    workdir: Path
    out: Path
    ops: int
    warmup: int
    budget: float
    file: Path | None


def parse_args() -> WorkerArgs:
    parser = argparse.ArgumentParser(description="one benchmark measurement (see registry.py)")
    parser.add_argument("--scenario", choices=["a", "b", "c"], required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--ops", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--budget", type=float, default=30.0, help="max seconds of timed ops")
    parser.add_argument("--file", type=Path, default=None, help="big input file (scenario c)")
    ns = parser.parse_args()
    ns.workdir.mkdir(parents=True, exist_ok=True)
    return WorkerArgs(ns.scenario, ns.workdir, ns.out, ns.ops, ns.warmup, ns.budget, ns.file)


def make_small_files(directory: Path, count: int, size: int = KIB) -> list[Path]:
    """``count`` files of ``size`` bytes, each with unique content (counter + random bytes)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        head = f"modelkeep-bench file {i} {time.time_ns()}\n".encode()
        path = directory / f"model-{i:06d}.bin"
        path.write_bytes(head + os.urandom(size - len(head)))
        paths.append(path)
    return paths


def time_ops(op: Callable[[int], object], ops: int, budget: float) -> list[int]:
    """Run ``op(i)`` up to ``ops`` times (fewer if ``budget`` seconds pass, min 20); ns per op."""
    samples: list[int] = []
    deadline = time.perf_counter() + budget
    for i in range(ops):
        start = time.perf_counter_ns()
        op(i)
        samples.append(time.perf_counter_ns() - start)
        if len(samples) >= 20 and time.perf_counter() > deadline:
            break
    return samples


def time_once(op: Callable[[], object]) -> float:
    """Seconds taken by one call of ``op``."""
    start = time.perf_counter()
    op()
    return time.perf_counter() - start


def summarize_ns(samples: list[int]) -> dict[str, float]:
    """Latency summary in milliseconds."""
    ms = [s / 1e6 for s in samples]
    deciles = statistics.quantiles(ms, n=10) if len(ms) >= 2 else [ms[0]] * 9
    return {
        "n": len(ms),
        "median_ms": statistics.median(ms),
        "p10_ms": deciles[0],
        "p90_ms": deciles[-1],
        "mean_ms": statistics.fmean(ms),
        "min_ms": min(ms),
    }


def big_result(seconds: float, path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    return {"seconds": seconds, "bytes": size, "mib_per_s": size / MIB / seconds}


def hash_copy_fsync(src: Path, dst: Path) -> str:
    """Plain-Python baseline: read 4 MiB blocks, sha256 them, write a new file, fsync it."""
    digest = hashlib.sha256()
    with src.open("rb") as fin, dst.open("wb") as fout:
        while block := fin.read(BLOCK):
            digest.update(block)
            fout.write(block)
        fout.flush()
        os.fsync(fout.fileno())
    return digest.hexdigest()


def write_result(args: WorkerArgs, tool: str, version: str, result: dict[str, Any]) -> None:
    doc = {
        "tool": tool,
        "tool_version": version,
        "python": platform.python_version(),
        "scenario": args.scenario,
        **result,
    }
    args.out.write_text(json.dumps(doc))
