"""Workers of bench/storage.py: one measurement per process, for modelkeep (run with the
project's .venv/bin/python) or MLflow (bench/.venv-mlflow/bin/python), chosen by ``--tool``.

``--scenario dedup``   push ``--file`` (version 1), then ``--file2`` (version 2, same name)
                       into a fresh store and count the bytes of the store's files after each
                       (modelkeep: ``<store>/blobs/``, MLflow: its local artifact store), then
                       pull both versions and compare their sha256 with the sources (untimed).
``--scenario timing``  warm up, then time one push of ``--file`` into a fresh store, one push of
                       the same file again (modelkeep: a version of a second model; MLflow: a
                       second run) and one pull of the first version into a new directory, with
                       ``sync()`` (untimed) before each.
``--scenario memory``  push ``--file`` into a fresh store in a child process and report the
                       child's peak RSS (``os.wait4``: the child and its reaped descendants).

modelkeep: ``_modelkeep_worker.connect`` (embedded store under ``<workdir>/store``, model
``bench``). MLflow: ``_mlflow_worker.connect`` (SQLite, artifacts under ``<workdir>/artifacts``),
one run per push, ``log_artifact(run_id, file, "model")``, pulled with
``download_artifacts(run_id, "model", dest)``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import stat
import sys
from pathlib import Path
from typing import Any, Protocol

from _common import MIB, MODEL, WorkerArgs, big_result, make_small_files, time_once, write_result

SECOND_MODEL = f"{MODEL}-stored"


class Side(Protocol):
    """What a tool must do for these measurements."""

    name: str
    version: str
    root: Path  # where the tool keeps the stored bytes

    def target(self, name: str) -> str:
        """Something to push into (untimed): a model (modelkeep) or a new run (MLflow)."""
        ...

    def push(self, target: str, path: Path) -> str:
        """Store ``path``; return what ``pull`` needs."""
        ...

    def pull(self, ref: str, filename: str, dest: Path) -> Path:
        """Write the pushed file into ``dest``; return its path."""
        ...

    def close(self) -> None: ...


class Modelkeep:
    name = "modelkeep"

    def __init__(self, args: WorkerArgs) -> None:
        import _modelkeep_worker

        self.version = _modelkeep_worker.version()
        self.mk = _modelkeep_worker.connect(args)  # fresh store, model MODEL created
        self.root = args.workdir / "store" / "blobs"
        self.models = {MODEL}

    def target(self, name: str) -> str:
        if name not in self.models:
            self.mk.create_model(name)
            self.models.add(name)
        return name

    def push(self, target: str, path: Path) -> str:
        return f"{target}@{self.mk.push(target, [str(path)]).number}"

    def pull(self, ref: str, filename: str, dest: Path) -> Path:
        self.mk.pull(ref, dest)
        return dest / filename

    def close(self) -> None:
        self.mk.close()


class Mlflow:
    name = "mlflow"

    def __init__(self, args: WorkerArgs) -> None:
        import _mlflow_worker
        import mlflow

        self.version = mlflow.__version__
        self.client, self.experiment_id = _mlflow_worker.connect(args)
        self.root = args.workdir / "artifacts"

    def target(self, name: str) -> str:
        run = self.client.create_run(self.experiment_id, run_name=name)
        return str(run.info.run_id)

    def push(self, target: str, path: Path) -> str:
        self.client.log_artifact(target, str(path), artifact_path="model")
        return target

    def pull(self, ref: str, filename: str, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        self.client.download_artifacts(ref, "model", str(dest))
        return dest / "model" / filename

    def close(self) -> None:
        pass


def open_side(tool: str, args: WorkerArgs) -> Side:
    return Modelkeep(args) if tool == "modelkeep" else Mlflow(args)


def tree_bytes(root: Path) -> dict[str, int]:
    """Size of the regular files under ``root``, each inode counted once."""
    seen: set[tuple[int, int]] = set()
    size = allocated = files = 0
    for dirpath, _, names in os.walk(root):
        for name in names:
            st = os.lstat(os.path.join(dirpath, name))
            if not stat.S_ISREG(st.st_mode) or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            size += st.st_size
            allocated += st.st_blocks * 512
            files += 1
    return {"bytes": size, "allocated_bytes": allocated, "files": files}


def added(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {key: after[key] - before[key] for key in before}


def sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def pushed(side: Side, target: str, path: Path) -> tuple[float, str]:
    refs: list[str] = []
    seconds = time_once(lambda: refs.append(side.push(target, path)))
    return seconds, refs[0]


def dedup(side: Side, args: WorkerArgs, second: Path) -> dict[str, Any]:
    # Not timed for a target: the seconds are reported for information (one push each).
    first = args.file
    assert first is not None
    if first.name != second.name:
        raise SystemExit("--file and --file2 must have the same name (one file, two versions)")
    empty = tree_bytes(side.root)
    v1_s, v1 = pushed(side, side.target(MODEL), first)
    after_v1 = tree_bytes(side.root)
    v2_s, v2 = pushed(side, side.target(MODEL), second)
    after_v2 = tree_bytes(side.root)
    stored_v1, stored_v2 = added(empty, after_v1), added(after_v1, after_v2)
    checks = {}
    for label, ref, source in (("v1", v1, first), ("v2", v2, second)):
        pulled = side.pull(ref, source.name, args.workdir / f"pulled-{label}")
        checks[label] = sha256(pulled) == sha256(source)
        pulled.unlink()
    return {
        "stored_by_v1": stored_v1,
        "added_by_v2": stored_v2,
        "ratio": stored_v2["bytes"] / stored_v1["bytes"] if stored_v1["bytes"] else None,
        "push_v1": big_result(v1_s, first),
        "push_v2": big_result(v2_s, second),
        "pulled_sha256_ok": checks,
    }


def warm_up(side: Side, args: WorkerArgs) -> None:
    for i, path in enumerate(make_small_files(args.workdir / "in", max(args.warmup, 1), MIB)):
        ref = side.push(side.target("warm"), path)
        side.pull(ref, path.name, args.workdir / f"warm-pulled-{i}")


def timing(side: Side, args: WorkerArgs) -> dict[str, Any]:
    big = args.file
    assert big is not None
    warm_up(side, args)
    new, again = side.target(MODEL), side.target(SECOND_MODEL)
    os.sync()
    push_s, ref = pushed(side, new, big)
    os.sync()
    stored_s, _ = pushed(side, again, big)
    os.sync()
    dest = args.workdir / "pulled"
    pulled: list[Path] = []
    pull_s = time_once(lambda: pulled.append(side.pull(ref, big.name, dest)))
    size = big.stat().st_size
    if pulled[0].stat().st_size != size:
        raise SystemExit(f"pulled {pulled[0].stat().st_size} bytes, expected {size}")
    return {
        "push_new": big_result(push_s, big),
        "push_stored": big_result(stored_s, big),
        "pull": big_result(pull_s, big),
    }


def max_rss_kib() -> int:
    """Peak RSS of this process (KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def memory_child(side: Side, args: WorkerArgs) -> dict[str, Any]:
    big = args.file
    assert big is not None
    (warm,) = make_small_files(args.workdir / "in", 1, MIB)
    side.push(side.target("warm"), warm)
    before = max_rss_kib()
    seconds, _ = pushed(side, side.target(MODEL), big)
    return {"push": big_result(seconds, big), "self_peak_rss_kib_before_push": before}


def memory(args: WorkerArgs, tool: str) -> tuple[str, dict[str, Any]]:
    """Run ``memory_child`` in a child process; its peak RSS (with its reaped children)."""
    assert args.file is not None
    out = args.workdir / "child.json"
    cmd = [sys.executable, __file__, "--scenario", "memory-child", "--tool", tool]
    cmd += ["--workdir", str(args.workdir / "child"), "--out", str(out), "--file", str(args.file)]
    pid = os.posix_spawn(sys.executable, cmd, os.environ)
    _, status, usage = os.wait4(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the memory child exited {os.waitstatus_to_exitcode(status)}")
    child: dict[str, Any] = json.loads(out.read_text())
    peak = usage.ru_maxrss * 1024
    return child["tool_version"], {
        "push": child["push"],
        "peak_rss_bytes": peak,
        "peak_rss_mb": peak / 1e6,
        "peak_rss_mib": peak / MIB,
        "peak_rss_before_push_mb": child["self_peak_rss_kib_before_push"] * 1024 / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    scenarios = ["dedup", "timing", "memory", "memory-child"]
    parser.add_argument("--scenario", choices=scenarios, required=True)
    parser.add_argument("--tool", choices=["modelkeep", "mlflow"], required=True)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--file", type=Path, required=True)
    parser.add_argument("--file2", type=Path, default=None, help="version 2 (dedup)")
    parser.add_argument("--warmup", type=int, default=2)
    ns = parser.parse_args()
    ns.workdir.mkdir(parents=True, exist_ok=True)
    args = WorkerArgs(ns.scenario, ns.workdir, ns.out, 1, ns.warmup, 0.0, ns.file)
    if ns.scenario == "memory":
        # Imports nothing of the tool here: the child does, and its peak is what counts.
        version, result = memory(args, ns.tool)
        write_result(args, ns.tool, version, result)
        return
    side = open_side(ns.tool, args)
    if ns.scenario == "dedup":
        if ns.file2 is None:
            raise SystemExit("--file2 is required for dedup")
        result = dedup(side, args, ns.file2)
    elif ns.scenario == "timing":
        result = timing(side, args)
    else:
        result = memory_child(side, args)
    side.close()
    write_result(args, side.name, side.version, result)


if __name__ == "__main__":
    main()
