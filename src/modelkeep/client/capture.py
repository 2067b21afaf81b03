"""What a run records about its code and machine without any code from the user.

``capture_git`` asks the ``git`` program (never a library, so it sees exactly what the user
sees) for the commit, the branch and the uncommitted changes. The changes are one patch,
``git diff`` plus every untracked file as a new-file patch, so ``git apply`` on a clean
checkout of the commit reproduces the tree. Nothing here writes to the repository: the
user's index is never touched. Git problems (no git, not a repository, a timeout) never
raise; they become human notes on the result, and what could be captured is kept.

``capture_environment`` records the interpreter, the machine and every installed
distribution as a lock file (``name==version`` lines) whose bytes depend only on what is
installed, so equal environments have equal digests.
"""

from __future__ import annotations

import functools
import os
import platform
import re
import shutil
import socket
import stat
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from modelkeep.domain.digest import sha256_digest

GIT_TIMEOUT = 30.0
"""Seconds one git command may take; a slow network filesystem should not hang a run."""
MAX_UNTRACKED_BYTES = 10 * 1024 * 1024
"""Larger untracked files (data sets, checkpoints) are left out of the diff, with a note."""

# Settings a user's git config may hold that would make the patch unusable by `git apply`
# (colours, external diff drivers, textconv, missing or mnemonic prefixes, --relative).
_PATCH_OPTIONS = (
    "--binary",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--src-prefix=a/",
    "--dst-prefix=b/",
)


@dataclass(frozen=True)
class GitState:
    commit: str | None
    """The full sha of HEAD; None when not in a git work tree or with no commit yet."""
    branch: str | None
    """None when HEAD is detached (or outside git)."""
    detached: bool
    shallow: bool
    dirty: bool
    """Tracked changes, or untracked files that are not ignored."""
    diff: bytes
    """The uncommitted changes as one binary patch against ``commit``; empty when clean."""
    notes: tuple[str, ...]


@dataclass(frozen=True)
class Environment:
    python: str
    implementation: str
    platform: str
    hostname: str
    packages: bytes
    """A lock file: sorted ``name==version`` lines, names normalised as in PEP 503."""
    command: tuple[str, ...]

    @property
    def packages_digest(self) -> str:
        return sha256_digest(self.packages)


def _is_dir(path: Path) -> bool:
    # Path.is_dir raises on a permission error; here that just means "cannot look".
    try:
        return stat.S_ISDIR(path.stat().st_mode)
    except OSError:
        return False


def _outside(*notes: str) -> GitState:
    return GitState(None, None, False, False, False, b"", tuple(notes))


@dataclass
class _Git:
    """Runs git commands in one directory and turns failures into notes."""

    exe: str
    cwd: Path
    env: dict[str, str] | None
    notes: list[str] = field(default_factory=list)

    def run(
        self, *args: str, ok: tuple[int, ...] = (0,)
    ) -> subprocess.CompletedProcess[bytes] | None:
        """The finished command, or None (with a note) when it could not run to the end."""
        try:
            done = subprocess.run(
                # No optional locks: `git diff` would otherwise rewrite the index's stat cache.
                [self.exe, "--no-optional-locks", *args],
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=GIT_TIMEOUT,
                check=False,
            )
        except subprocess.TimeoutExpired:
            self.notes.append(f"git {args[0]} took longer than {GIT_TIMEOUT:g} s and was stopped")
            return None
        except OSError as exc:
            self.notes.append(f"git could not be run: {exc.strerror or exc}")
            return None
        return done if done.returncode in ok else None

    def text(self, *args: str) -> str | None:
        """The command's output without surrounding blanks, or None when it failed."""
        done = self.run(*args)
        if done is None:
            return None
        return done.stdout.decode("utf-8", "replace").strip() or None


def capture_git(cwd: Path, *, environ: Mapping[str, str] | None = None) -> GitState:
    """The state of the git work tree holding ``cwd``; never raises for git problems.

    ``environ`` is the environment git runs in, with ``LC_ALL=C`` added so that its
    messages are the same everywhere; None lets git inherit this process's environment
    unchanged (only ``modelkeep.config`` and the client read the environment).
    """
    path = environ.get("PATH") if environ is not None else None
    exe = shutil.which("git", path=path)
    if exe is None:
        return _outside("git not installed: the code version was not recorded")
    if not _is_dir(cwd):
        return _outside(f"{cwd} is not a directory: the code version was not recorded")
    if not _inside_git(cwd) and not (environ or {}).get("GIT_DIR"):
        # no .git above: say so without starting git (a sweep starts many runs)
        return _outside("not a git repository: the code version was not recorded")
    env = {**environ, "LC_ALL": "C"} if environ is not None else None
    git = _Git(exe, cwd, env)
    top = _work_tree_top(git)
    if top is None:
        return _outside(*git.notes)
    git.cwd = top  # diff and ls-files paths are then relative to the top, as `git apply` wants
    return _capture_work_tree(git)


def _inside_git(cwd: Path) -> bool:
    """Whether ``cwd`` or a parent holds ``.git`` (a directory, or a worktree's file)."""
    try:
        here = cwd.resolve()
    except OSError:
        return True  # cannot tell: let git decide
    return any((folder / ".git").exists() for folder in (here, *here.parents))


def _work_tree_top(git: _Git) -> Path | None:
    """The top directory of the work tree, or None with a note saying why there is none."""
    done = git.run("rev-parse", "--is-inside-work-tree", "--show-toplevel", ok=(0, 128))
    if done is None:
        return None
    lines = done.stdout.decode("utf-8", "surrogateescape").splitlines()
    if done.returncode == 0 and lines[:1] == ["true"] and len(lines) == 2:
        return Path(lines[1])
    message = done.stderr.decode("utf-8", "replace").strip().splitlines()
    reason = message[0] if message else "not inside a work tree"
    if "not a git repository" in reason:
        git.notes.append("not a git repository: the code version was not recorded")
    else:
        git.notes.append(f"git cannot read the repository ({reason})")
    return None


def _capture_work_tree(git: _Git) -> GitState:
    commit = git.text("rev-parse", "--verify", "--quiet", "HEAD^{commit}")
    branch = git.text("symbolic-ref", "--quiet", "--short", "HEAD")
    detached = commit is not None and branch is None
    shallow = git.text("rev-parse", "--is-shallow-repository") == "true"
    if commit is None:
        git.notes.append("no commit yet: the diff holds every file, against an empty tree")
    if detached:
        git.notes.append(f"detached HEAD at {commit}")
    if shallow:
        git.notes.append("shallow clone: history is incomplete")
    tracked = _tracked_diff(git, commit)
    untracked, has_untracked = _untracked_diff(git)
    dirty = bool(tracked) or has_untracked  # also dirty when every untracked file was too big
    diff = tracked + untracked
    return GitState(commit, branch, detached, shallow, dirty, diff, tuple(git.notes))


def _tracked_diff(git: _Git, commit: str | None) -> bytes:
    # Without a commit, compare with the empty tree, so the patch recreates staged files.
    base = commit or git.text("hash-object", "-t", "tree", "/dev/null")
    if base is None:
        return b""
    done = git.run("diff", *_PATCH_OPTIONS, "--no-relative", base, "--")
    return done.stdout if done is not None else b""


def _untracked_diff(git: _Git) -> tuple[bytes, bool]:
    """Untracked, non-ignored files as new-file patches (the index is left alone), and
    whether there were any."""
    done = git.run("ls-files", "--others", "--exclude-standard", "-z")
    if done is None:
        return b"", False
    names = [n.decode("utf-8", "surrogateescape") for n in done.stdout.split(b"\0") if n]
    return b"".join(_new_file_patch(git, name) for name in sorted(names)), bool(names)


def _new_file_patch(git: _Git, name: str) -> bytes:
    try:
        info = (git.cwd / name).lstat()
    except OSError as exc:
        git.notes.append(f"untracked file {name} could not be read: {exc.strerror or exc}")
        return b""
    if stat.S_ISDIR(info.st_mode):
        # ls-files lists a nested repository as a directory; its files are its own business.
        git.notes.append(f"untracked directory {name} (a nested repository) not included")
        return b""
    if info.st_size > MAX_UNTRACKED_BYTES:
        git.notes.append(f"untracked file {name} over 10 MiB not included in the diff")
        return b""
    # --no-index exits 1 when the files differ, which they always do here.
    done = git.run("diff", "--no-index", *_PATCH_OPTIONS, "--", "/dev/null", name, ok=(0, 1))
    return done.stdout if done is not None else b""


def capture_environment() -> Environment:
    return Environment(
        python=platform.python_version(),
        implementation=platform.python_implementation(),
        platform=_platform(),
        hostname=socket.gethostname(),
        packages=installed_packages(),
        command=tuple(sys.argv),
    )


@functools.cache
def _platform() -> str:
    return platform.platform()  # reads /etc/os-release and more: once per process


def normalise_package_name(name: str) -> str:
    """PEP 503: runs of '-', '_' and '.' become one '-', in lowercase."""
    return re.sub(r"[-_.]+", "-", name).lower()


def installed_packages() -> bytes:
    """Every installed distribution as sorted ``name==version`` lines.

    A name installed twice (in two ``sys.path`` entries) appears once, with the version
    found first on ``sys.path``: that is the one ``import`` uses. Parsing every
    package's metadata takes tens of milliseconds, so the result is kept until
    ``sys.path`` or one of its directories changes (an install or removal touches it).
    """
    return _packages_for(_path_state())


def _path_state() -> tuple[tuple[str, int], ...]:
    state = []
    for entry in sys.path:
        try:
            state.append((entry, os.stat(entry or ".").st_mtime_ns))
        except OSError:
            state.append((entry, -1))
    return tuple(state)


@functools.lru_cache(maxsize=4)
def _packages_for(path_state: tuple[tuple[str, int], ...]) -> bytes:
    import importlib.metadata  # tens of milliseconds: only when a run starts

    del path_state  # the cache key only
    found: dict[str, str] = {}
    for dist in importlib.metadata.distributions():
        name, version = dist.metadata["Name"], dist.version
        if not name or not version:
            continue  # broken metadata (a half-removed install) names nothing usable
        found.setdefault(normalise_package_name(name), version)
    return "".join(sorted(f"{name}=={version}\n" for name, version in found.items())).encode()
