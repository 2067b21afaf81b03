"""The installed ``modelkeep`` console script, as a user runs it (SQLite store).

Each run costs about half a second, so the whole file makes ten of them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.support import ERROR_LINE, blob_path, manifest_digest, overwrite_blob, sha256

MODELKEEP = Path(sys.executable).with_name("modelkeep")


class Run:
    def __init__(self, completed: subprocess.CompletedProcess[str]) -> None:
        self.code = completed.returncode
        self.out = completed.stdout
        self.err = completed.stderr

    def __repr__(self) -> str:
        return f"Run(code={self.code}, out={self.out!r}, err={self.err!r})"


def modelkeep(
    *args: str, uri: Path, program: tuple[str, ...] = (), env: dict[str, str] | None = None
) -> Run:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MODELKEEP_")}
    environ.update({"MODELKEEP_URI": str(uri), **(env or {})})
    command = program or (str(MODELKEEP),)
    completed = subprocess.run(
        [*command, *args], env=environ, capture_output=True, text=True, timeout=60, check=False
    )
    run = Run(completed)
    assert "Traceback" not in run.err, run
    return run


def assert_fails(run: Run, code: str, exit_code: int) -> str:
    assert run.code == exit_code, run
    lines = run.err.splitlines()
    assert len(lines) == 1, run
    match = ERROR_LINE.match(lines[0])
    assert match is not None, run
    assert match.group(1) == code, run
    return lines[0]


def test_the_console_script_is_installed() -> None:
    assert MODELKEEP.is_file()
    assert os.access(MODELKEEP, os.X_OK)


def test_help(tmp_path: Path) -> None:
    run = modelkeep("--help", uri=tmp_path / "store")
    assert run.code == 0, run
    assert run.out.startswith("Usage: modelkeep")
    for command in ("models", "push", "pull", "resolve", "promote", "rollback", "verify", "audit"):
        assert f"  {command} " in run.out
    assert run.err == ""
    assert not (tmp_path / "store").exists()  # help touches no store


def test_push_then_each_kind_of_failure(tmp_path: Path) -> None:
    store = tmp_path / "store"
    content = b"weights " * 1000
    (tmp_path / "model.bin").write_bytes(content)

    created = modelkeep("models", "create", "m", uri=store)
    assert (created.code, created.err) == (0, f"made a new store at {store}\n"), created
    pushed = modelkeep(
        "push", "m", str(tmp_path / "model.bin"), "--version", "1.0.0", "--json", uri=store
    )
    assert (pushed.code, pushed.err) == (0, ""), pushed
    version = json.loads(pushed.out)
    assert (version["model"], version["number"], version["semver"]) == ("m", 1, "1.0.0")
    assert version["digest"] == manifest_digest({"model.bin": content})
    assert (store / "modelkeep.db").is_file()  # the default: SQLite inside the store

    missing = modelkeep("show", "m@7", uri=store)
    assert_fails(missing, "version_not_found", 1)
    assert missing.out == ""

    usage = modelkeep("--json", "push", "m", uri=store)
    assert_fails(usage, "usage", 2)
    assert json.loads(usage.out)["error"]["code"] == "usage"

    overwrite_blob(blob_path(store, sha256(content)), b"X" * len(content))
    pulled = modelkeep("pull", "m@1.0.0", str(tmp_path / "out"), uri=store)
    line = assert_fails(pulled, "digest_mismatch", 3)
    assert "model.bin" in line
    assert not (tmp_path / "out" / "model.bin").exists()

    verified = modelkeep("verify", "--all", uri=store)
    assert_fails(verified, "digest_mismatch", 3)
    assert sha256(content) in verified.out


@pytest.mark.parametrize(
    ("env", "code"),
    [
        pytest.param(
            {"MODELKEEP_DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:1/none"},
            "store_unavailable",
            id="database-unreachable",
        ),
        pytest.param({"MODELKEEP_GC_GRACE_SECONDS": "soon"}, "invalid_input", id="bad-setting"),
    ],
)
def test_environment_problems_are_one_line(tmp_path: Path, env: dict[str, str], code: str) -> None:
    assert_fails(modelkeep("models", "list", uri=tmp_path / "store", env=env), code, 1)


def test_a_store_path_that_is_a_file(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    for command in (("models", "list"), ("models", "create", "m")):
        refused = modelkeep(*command, uri=not_a_dir)
        assert_fails(refused, "unsupported_uri", 1)
        assert f"{not_a_dir} is a file, not a store directory" in refused.err
    assert not_a_dir.read_text() == "x"


def test_python_dash_m(tmp_path: Path) -> None:
    run = modelkeep("--version", uri=tmp_path, program=(sys.executable, "-m", "modelkeep"))
    assert run.code == 0, run
    assert run.out.strip() == "modelkeep, version 0.1.0"
