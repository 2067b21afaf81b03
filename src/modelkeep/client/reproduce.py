"""Reproducing a run: the plan of what re-running it needs, and a directory to do it in.

``reproduce(mk, RUN)`` gives the plan as JSON: the commit and uncommitted changes, the
packages lock, the datasets to pull, params, seed and the command line to re-run (with
notes on what was not recorded). With ``checkout=DIR`` it also writes DIR: lock.txt,
changes.patch, params.json, run.json, the datasets pulled into datasets/NAME/, and
reproduce.sh, which, run from inside a clone of the repository, checks the commit out as
a git worktree in DIR/src, applies the patch, makes a venv DIR/venv from lock.txt and
runs the recorded command there. ``modelkeep runs reproduce`` prints the same plan.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelkeep.content import copying
from modelkeep.domain.digest import digest_of
from modelkeep.domain.runs import Run
from modelkeep.errors import DestinationConflict, DigestMismatch

if TYPE_CHECKING:
    from modelkeep.client.client import Client


def reproduce(
    client: Client, run: str | Run, checkout_dir: str | os.PathLike[str] | None = None
) -> dict[str, Any]:
    """The plan to re-run ``run`` (a run or its id); with ``checkout_dir``, also write
    that directory and name what was written under ``checkout``."""
    found = client.run(run) if isinstance(run, str) else run
    document = plan(found)
    if checkout_dir is not None:
        written = checkout(client, found, document, Path(checkout_dir))
        document["checkout"] = {"dir": os.fspath(checkout_dir), "files": written}
    return document


def plan(run: Run) -> dict[str, Any]:
    """What is needed to re-run ``run``, as JSON: ``checkout`` is None (see ``checkout``)."""
    command = _command(run)
    return {
        "run": run.id,
        "experiment": run.experiment,
        "status": run.status,
        "code": run.code.to_dict(),
        "python": run.environment.python,
        "packages_digest": run.environment.packages_digest,
        "datasets": [
            {"ref": ref, "dir": f"datasets/{folder}", "pull": _pull_line(ref, folder)}
            for ref, folder in _dataset_folders(run.datasets).items()
        ],
        "params": dict(run.params),
        "seed": run.seed,
        "recorded_command": list(run.environment.command),
        "command": command,
        "notes": list(run.notes) + _command_notes(run, command),
        "checkout": None,
    }


def _pull_line(ref: str, folder: str) -> str:
    return shlex.join(["modelkeep", "datasets", "pull", ref, f"datasets/{folder}"])


def _dataset_folders(refs: Iterable[str]) -> dict[str, str]:
    """ref -> folder under datasets/: the dataset's name, or NAME@N when the run read
    several versions of one dataset."""
    refs = list(refs)
    names = Counter(ref.partition("@")[0] for ref in refs)
    return {ref: ref if names[ref.partition("@")[0]] > 1 else ref.partition("@")[0] for ref in refs}


def _command(run: Run) -> str | None:
    """The command line to re-run, as a shell line; None when it was not recorded."""
    argv = list(run.environment.command)
    if not argv or argv[0] in ("", "-c", "-") or _started_by_cli(argv):
        return None
    if argv[0].endswith(".py"):
        return shlex.join(["python", *argv])
    # A console script: the one of that name in the new venv, not the old venv's path.
    return shlex.join([Path(argv[0]).name, *argv[1:]])


def _started_by_cli(argv: list[str]) -> bool:
    program = Path(argv[0])
    by_modelkeep = program.name == "modelkeep" or program.parts[-2:] == ("modelkeep", "__main__.py")
    return by_modelkeep and any(argv[i : i + 2] == ["runs", "start"] for i in range(len(argv)))


def _command_notes(run: Run, command: str | None) -> list[str]:
    argv = run.environment.command
    if command is not None:
        if argv[0].endswith(".py") and Path(argv[0]).is_absolute():
            return [
                f"the command names the script by its absolute path, {argv[0]}: it may "
                "lie outside the checkout (as with 'python -m'); edit it in reproduce.sh"
            ]
        return []
    if argv and _started_by_cli(list(argv)):
        return [
            "the run was started with 'modelkeep runs start': the training command was not recorded"
        ]
    return ["the command line was not recorded (python -c, stdin or an interactive session)"]


def checkout(client: Client, run: Run, plan: Mapping[str, Any], target: Path) -> list[str]:
    """Write the checkout directory ``target`` (new or empty) for ``plan``; the names
    written, in order."""
    if target.exists() and any(target.iterdir()):
        raise DestinationConflict(
            f"{target} is not empty", "give --checkout a new or empty directory"
        )
    target.mkdir(parents=True, exist_ok=True)
    written = []
    if run.environment.packages_digest:
        _save_blob(client, run.environment.packages_digest, target / "lock.txt")
        written.append("lock.txt")
    if run.code.diff_digest:
        _save_blob(client, run.code.diff_digest, target / "changes.patch")
        written.append("changes.patch")
    _write_json(target / "params.json", dict(run.params))
    _write_json(target / "run.json", run.to_dict())
    written += ["params.json", "run.json"]
    for dataset in plan["datasets"]:
        client.pull_dataset(dataset["ref"], target / dataset["dir"])
        written.append(dataset["dir"] + "/")
    script = target / "reproduce.sh"
    script.write_text(_script(run, plan), encoding="utf-8")
    script.chmod(0o755)
    written.append("reproduce.sh")
    return written


def _write_json(path: Path, document: Any) -> None:
    text = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True)
    path.write_text(text + "\n", encoding="utf-8")


def _save_blob(client: Client, digest: str, path: Path) -> None:
    """Copy a blob (the run's lock file or patch) to ``path``, checking its digest."""
    hasher = hashlib.sha256()  # the reader verifies too; this also catches a short read
    with client.open_blob(digest) as source, path.open("wb") as out:
        copying.copy(source, out, hasher=hasher)
    if digest_of(hasher) != digest:
        path.unlink()
        raise DigestMismatch(
            f"blob {digest} read back with other bytes", "run 'modelkeep verify --all'"
        )


def _script(run: Run, plan: Mapping[str, Any]) -> str:
    """reproduce.sh: POSIX sh, each step guarded, so it can be read before it is run."""
    lines = [
        "#!/bin/sh",
        f"# Re-run run {run.id} (experiment {run.experiment}), written by",
        f"# 'modelkeep runs reproduce {run.id} --checkout'. Run it from inside a clone of",
        "# the repository the run's code came from. See docs/tracking.md.",
        "set -eu",
        'HERE="$(cd "$(dirname "$0")" && pwd)"',
        'SRC="$HERE/src"',
        'VENV="$HERE/venv"',
        "",
        *_script_code(run),
        "",
        *_script_venv(run),
        "",
        *_script_run(run, plan),
    ]
    return "\n".join(lines) + "\n"


def _script_code(run: Run) -> list[str]:
    commit = run.code.commit
    if commit is None:
        return [
            "# 1. The code: no git commit was recorded (not a git work tree).",
            'echo "reproduce: the run recorded no git commit; put its code in $SRC" >&2',
            "exit 1",
        ]
    patch = (
        ['  git -C "$SRC" apply --whitespace=nowarn "$HERE/changes.patch"']
        if run.code.diff_digest
        else []
    )
    return [
        "# 1. The code: the recorded commit as a worktree, plus the uncommitted changes.",
        f"COMMIT={commit}",
        'if [ ! -e "$SRC" ]; then',
        '  git cat-file -e "$COMMIT^{commit}" || {',
        '    echo "reproduce: commit $COMMIT is not in this repository; git fetch it" >&2',
        "    exit 1",
        "  }",
        '  git worktree add --detach "$SRC" "$COMMIT"',
        *patch,
        "fi",
    ]


def _script_venv(run: Run) -> list[str]:
    python = run.environment.python or "unknown"
    lines = [
        f"# 2. The packages: a venv from lock.txt (recorded with Python {python}).",
        'PYTHON="${PYTHON:-python3}"',
        'if [ ! -e "$VENV" ]; then',
        '  found="$("$PYTHON" -c "import platform; print(platform.python_version())")"',
        f'  [ "$found" = {shlex.quote(python)} ] || '
        f'echo "reproduce: $PYTHON is Python $found, the run had {python}" >&2',
        '  "$PYTHON" -m venv "$VENV"',
    ]
    if run.environment.packages_digest:
        lines += [
            '  if ! "$VENV/bin/pip" install --no-deps -r "$HERE/lock.txt"; then',
            '    echo "reproduce: installing lock.txt at once failed; line by line" >&2',
            "    while IFS= read -r req; do",
            '      "$VENV/bin/pip" install --no-deps "$req" ||'
            ' echo "reproduce: could not install $req" >&2',
            '    done < "$HERE/lock.txt"',
            "  fi",
        ]
    lines += [
        '  if [ -f "$SRC/pyproject.toml" ] || [ -f "$SRC/setup.py" ]; then',
        '    "$VENV/bin/pip" install --no-deps -e "$SRC"',
        "  fi",
        "fi",
    ]
    return lines


def _script_run(run: Run, plan: Mapping[str, Any]) -> list[str]:
    seed = "" if run.seed is None else str(run.seed)
    lines = [
        "# 3. The run: in the checkout, with the venv first on PATH. The seed and params",
        "# are also in $SEED and params.json for code that reads them from there; the",
        f"# {_datasets(len(plan['datasets']))} pulled are in $DATASETS.",
        'cd "$SRC"',
        'PATH="$VENV/bin:$PATH"',
        f"SEED={shlex.quote(seed)}",
        'DATASETS="$HERE/datasets"',
        "export PATH SEED DATASETS",
    ]
    if plan["command"] is None:
        return [
            *lines,
            "# The command line was not recorded: put it below.",
            'echo "reproduce: no command line was recorded; edit $0 to add it" >&2',
            "exit 1",
        ]
    return [*lines, f"exec {plan['command']}"]


def _datasets(count: int) -> str:
    return f"{count} dataset" if count == 1 else f"{count} datasets"
