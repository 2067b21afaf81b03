"""Plain-Python baseline for scenario c of bench/registry.py (stdlib only, any python >= 3.11).

Timed: read the big file in 4 MiB blocks, sha256 them, write them to a new file, fsync it.
"""

from __future__ import annotations

import platform

from _common import (
    big_result,
    hash_copy_fsync,
    make_small_files,
    parse_args,
    time_once,
    write_result,
)


def main() -> None:
    args = parse_args()
    if args.scenario != "c" or args.file is None:
        raise SystemExit("the baseline only runs scenario c, with --file")
    out = args.workdir / "out"
    out.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(make_small_files(args.workdir / "in", max(args.warmup, 1), 1 << 20)):
        hash_copy_fsync(path, out / f"warmup-{i}.bin")
    big = args.file
    seconds = time_once(lambda: hash_copy_fsync(big, out / "model.bin"))
    write_result(args, "baseline", platform.python_version(), big_result(seconds, big))


if __name__ == "__main__":
    main()
