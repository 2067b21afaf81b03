"""capture_git against real temporary repositories; capture_environment."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from modelkeep.client import capture
from modelkeep.client.capture import capture_environment, capture_git

MIB = 1024 * 1024


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Identity for commits and no user or system config, for this test only."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    for role in ("AUTHOR", "COMMITTER"):
        monkeypatch.setenv(f"GIT_{role}_NAME", "Test")
        monkeypatch.setenv(f"GIT_{role}_EMAIL", "test@example.com")


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        capture_output=True,
        check=True,
        text=True,
    )
    return done.stdout.strip()


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` but .git, by relative path."""
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and ".git" not in p.relative_to(directory).parts
    }


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "train.py").write_text("print('train')\n")
    (root / "src").mkdir()
    (root / "src" / "model.py").write_text("layers = 3\n")
    (root / "weights.bin").write_bytes(bytes(range(256)))
    (root / ".gitignore").write_text("*.log\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


def test_a_clean_repository(repo: Path) -> None:
    state = capture_git(repo, environ=os.environ)

    assert state.commit == git(repo, "rev-parse", "HEAD")
    assert len(state.commit) == 40
    assert state.branch == "main"
    assert (state.dirty, state.detached, state.shallow) == (False, False, False)
    assert state.diff == b""
    assert state.notes == ()


def test_inheriting_the_environment_gives_the_same_state(repo: Path) -> None:
    assert capture_git(repo) == capture_git(repo, environ=os.environ)


def test_changes_and_untracked_files_make_a_patch_that_reproduces_the_tree(
    repo: Path, tmp_path: Path
) -> None:
    (repo / "src" / "model.py").write_text("layers = 4\n")
    (repo / "weights.bin").write_bytes(bytes(range(255, -1, -1)))
    (repo / "train.py").unlink()
    (repo / "notes.txt").write_text("new file\n")
    (repo / "src" / "data").mkdir()
    (repo / "src" / "data" / "table.csv").write_bytes(b"a,b\n1,2\n")
    (repo / "empty.txt").write_bytes(b"")
    (repo / "run.log").write_text("ignored\n")
    index_before = (repo / ".git" / "index").read_bytes()

    state = capture_git(repo / "src", environ=os.environ)  # from a subdirectory

    assert state.dirty
    assert state.commit == git(repo, "rev-parse", "HEAD")
    assert b"a/src/model.py" in state.diff
    assert b"b/notes.txt" in state.diff
    assert b"b/src/data/table.csv" in state.diff
    assert b"run.log" not in state.diff
    assert (repo / ".git" / "index").read_bytes() == index_before, "the user's index changed"

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", f"file://{repo}", str(clone))
    git(clone, "checkout", "-q", "--detach", state.commit)
    patch = tmp_path / "changes.patch"
    patch.write_bytes(state.diff)
    git(clone, "apply", "--check", str(patch))
    git(clone, "apply", str(patch))
    expected = {k: v for k, v in snapshot(repo).items() if k != "run.log"}
    assert snapshot(clone) == expected


def test_only_untracked_files_make_the_tree_dirty(repo: Path) -> None:
    (repo / "extra.py").write_text("x = 1\n")

    state = capture_git(repo, environ=os.environ)

    assert state.dirty
    assert b"+x = 1" in state.diff


def test_untracked_files_over_10_mib_are_left_out_with_a_note(repo: Path) -> None:
    with (repo / "checkpoint.pt").open("wb") as big:
        big.truncate(10 * MIB + 1)  # sparse: cheap to make, full size to lstat

    state = capture_git(repo, environ=os.environ)

    assert state.dirty, "the tree is dirty even though the diff could not hold the file"
    assert state.diff == b""
    assert state.notes == ("untracked file checkpoint.pt over 10 MiB not included in the diff",)


def test_a_detached_head(repo: Path) -> None:
    sha = git(repo, "rev-parse", "HEAD")
    git(repo, "checkout", "-q", "--detach", "HEAD")

    state = capture_git(repo, environ=os.environ)

    assert (state.commit, state.branch, state.detached) == (sha, None, True)
    assert not state.dirty
    assert state.notes == (f"detached HEAD at {sha}",)


def test_a_shallow_clone(repo: Path, tmp_path: Path) -> None:
    (repo / "train.py").write_text("print('second')\n")
    git(repo, "commit", "-q", "-am", "second")
    shallow = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo}", str(shallow))

    state = capture_git(shallow, environ=os.environ)

    assert state.shallow
    assert state.commit == git(repo, "rev-parse", "HEAD")
    assert state.branch == "main"
    assert state.notes == ("shallow clone: history is incomplete",)


def test_a_directory_that_is_not_a_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()

    state = capture_git(plain, environ=os.environ)

    assert (state.commit, state.branch, state.dirty, state.diff) == (None, None, False, b"")
    assert len(state.notes) == 1
    assert state.notes[0].startswith("not a git repository")


def test_a_directory_that_does_not_exist(tmp_path: Path) -> None:
    state = capture_git(tmp_path / "missing", environ=os.environ)

    assert state.commit is None
    assert "is not a directory" in state.notes[0]


@pytest.mark.parametrize("pass_environ", [True, False])
def test_no_git_installed(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pass_environ: bool
) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))

    state = capture_git(repo, environ=os.environ if pass_environ else None)

    assert state.commit is None
    assert state.notes[0].startswith("git not installed")


def test_a_repository_with_no_commit_yet(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    git(root, "init", "-q")
    (root / "staged.py").write_text("a = 1\n")
    git(root, "add", "staged.py")
    (root / "untracked.py").write_text("b = 2\n")

    state = capture_git(root, environ=os.environ)

    assert (state.commit, state.branch, state.detached) == (None, "main", False)
    assert state.dirty
    assert b"b/staged.py" in state.diff
    assert b"b/untracked.py" in state.diff
    assert state.notes[0].startswith("no commit yet")
    replay = tmp_path / "replay"
    replay.mkdir()
    git(replay, "init", "-q")
    (tmp_path / "all.patch").write_bytes(state.diff)
    git(replay, "apply", str(tmp_path / "all.patch"))
    assert snapshot(replay) == snapshot(root)


def test_user_config_that_would_spoil_the_patch_is_overridden(repo: Path, tmp_path: Path) -> None:
    for key, value in [
        ("color.ui", "always"),
        ("diff.noprefix", "true"),
        ("diff.mnemonicPrefix", "true"),
    ]:
        git(repo, "config", key, value)
    (repo / "train.py").write_text("print('changed')\n")

    state = capture_git(repo, environ=os.environ)

    assert b"\x1b[" not in state.diff
    assert b"--- a/train.py\n+++ b/train.py\n" in state.diff


def test_the_environment() -> None:
    first, second = capture_environment(), capture_environment()

    assert first.packages == second.packages
    assert first.python == platform.python_version()
    assert first.implementation == platform.python_implementation()
    assert first.command == tuple(sys.argv)
    assert first.hostname
    lines = first.packages.decode().splitlines()
    assert lines == sorted(lines)
    assert len(lines) == len({line.split("==")[0] for line in lines}), "a name twice"
    assert any(line.startswith("modelkeep==") for line in lines)
    assert any(line.startswith("pytest==") for line in lines)
    names = [line.split("==")[0] for line in lines]
    assert all(name == capture.normalise_package_name(name) for name in names)
    assert first.packages_digest.startswith("sha256:")


@pytest.mark.parametrize(
    ("raw", "normal"),
    [("Foo_Bar", "foo-bar"), ("zope.interface", "zope-interface"), ("a-_.b", "a-b")],
)
def test_package_names_are_normalised(raw: str, normal: str) -> None:
    assert capture.normalise_package_name(raw) == normal
