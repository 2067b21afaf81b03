"""Big-file push and pull for bench/server.py; run with the project's .venv/bin/python.

``--uri`` is a directory (the embedded store, in this process) or the URL of a ``modelkeep
server`` (the SDK over HTTP, ``--token``). The worker creates the model, warms up with a
1 MiB push and pull (untimed), then times one ``mk.push(model, [file])`` and one
``mk.pull(model@N, <new empty dir>)`` of that version, with ``sync()`` (untimed) in between.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import modelkeep
from modelkeep.errors import ModelExists

MODEL = "bench"
MIB = 1024 * 1024


def timed(op: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    result = op()
    return time.perf_counter() - start, result


def speed(seconds: float, size: int) -> dict[str, float]:
    return {"seconds": seconds, "bytes": size, "mib_per_s": size / MIB / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", required=True)
    parser.add_argument("--token", default=None)
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    ns = parser.parse_args()
    ns.workdir.mkdir(parents=True, exist_ok=True)
    mk = modelkeep.connect(ns.uri, token=ns.token)
    with contextlib.suppress(ModelExists):
        mk.create_model(MODEL)
    warm = ns.workdir / "warm.bin"
    warm.write_bytes(os.urandom(MIB))
    warm_version = mk.push(MODEL, [str(warm)])
    mk.pull(f"{MODEL}@{warm_version.number}", ns.workdir / "warm-pulled")
    os.sync()
    push_s, version = timed(lambda: mk.push(MODEL, [str(ns.file)]))
    os.sync()
    dest = ns.workdir / "pulled"
    pull_s, _ = timed(lambda: mk.pull(f"{MODEL}@{version.number}", dest))
    pulled = dest / ns.file.name
    size = ns.file.stat().st_size
    if pulled.stat().st_size != size:
        raise SystemExit(f"pulled {pulled.stat().st_size} bytes, expected {size}")
    mk.close()
    doc = {
        "tool_version": getattr(modelkeep, "__version__", None)
        or importlib.metadata.version("modelkeep"),
        "python": platform.python_version(),
        "push": speed(push_s, size),
        "pull": speed(pull_s, size),
    }
    ns.out.write_text(json.dumps(doc))


if __name__ == "__main__":
    main()
