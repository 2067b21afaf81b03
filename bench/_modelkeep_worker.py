"""modelkeep side of bench/registry.py; run with the project's .venv/bin/python.

Each invocation uses a fresh embedded store (SQLite + local blobs) under ``<workdir>/store``.
Set-up and warm-up are not timed.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

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

import modelkeep


def connect(args: WorkerArgs) -> Any:
    mk = modelkeep.connect(str((args.workdir / "store").resolve()))
    mk.create_model(MODEL)
    return mk


def push(mk: Any, path: Path) -> Any:
    return mk.push(MODEL, [str(path)], params=PARAMS, metrics=METRICS)


def scenario_a(args: WorkerArgs) -> dict[str, object]:
    # Timed per op: one mk.push(model, [1 KB file], params, metrics). Not timed: writing the file.
    mk = connect(args)
    files = make_small_files(args.workdir / "in", args.warmup + args.ops)
    for path in files[: args.warmup]:
        push(mk, path)
    timed = files[args.warmup :]
    samples = time_ops(lambda i: push(mk, timed[i]), args.ops, args.budget)
    mk.close()
    return {"latency": summarize_ns(samples)}


def scenario_b(args: WorkerArgs) -> dict[str, object]:
    # Timed per op: mk.resolve("bench@champion") in-process.
    mk = connect(args)
    (path,) = make_small_files(args.workdir / "in", 1)
    version = push(mk, path)
    mk.set_alias(f"{MODEL}@{version.number}", ALIAS, reason="bench")
    ref = f"{MODEL}@{ALIAS}"
    for _ in range(args.warmup):
        mk.resolve(ref)
    got = mk.resolve(ref)
    if got.number != version.number:
        raise RuntimeError(f"alias resolved to {got.number}, expected {version.number}")
    samples = time_ops(lambda _: mk.resolve(ref), args.ops, args.budget)
    mk.close()
    return {"latency": summarize_ns(samples)}


def scenario_c(args: WorkerArgs) -> dict[str, object]:
    # Timed: one mk.push(model, [<big file>]) into a fresh store. The driver makes the file's
    # content unique per round (and the store is new), so content-addressed dedup cannot help.
    if args.file is None:
        raise SystemExit("--file is required for scenario c")
    mk = connect(args)
    for path in make_small_files(args.workdir / "in", max(args.warmup, 1), size=1024 * 1024):
        push(mk, path)
    big = args.file
    seconds = time_once(lambda: mk.push(MODEL, [str(big)]))
    mk.close()
    return big_result(seconds, big)


def version() -> str:
    found = getattr(modelkeep, "__version__", None)
    return str(found) if found else importlib.metadata.version("modelkeep")


def main() -> None:
    args = parse_args()
    run = {"a": scenario_a, "b": scenario_b, "c": scenario_c}[args.scenario]
    write_result(args, "modelkeep", version(), run(args))


if __name__ == "__main__":
    main()
