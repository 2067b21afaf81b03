"""What the end-to-end tests share: the CLI contract (DESIGN.md section 3) as assertions,
independent recomputation of digests, and access to the store on disk."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.conftest import CliResult, CliRunnerInProcess

ERROR_LINE = re.compile(r"^error\[([a-z_]+)\]: .+; .+$")

VERSION_KEYS = {
    "model",
    "number",
    "semver",
    "digest",
    "status",
    "created_at",
    "created_by",
    "files",
    "metadata",
    "aliases",
}
FILE_KEYS = {"path", "size", "digest"}
METADATA_KEYS = {"params", "metrics", "datasets", "commit", "seed", "run", "meta"}
RESOLVE_KEYS = {"model", "ref", "number", "digest"}
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def manifest_digest(files: dict[str, bytes]) -> str:
    """A version digest recomputed from DESIGN.md section 1, without modelkeep's code."""
    entries = [
        {"digest": sha256(content), "path": path, "size": len(content)}
        for path, content in sorted(files.items())
    ]
    canonical = json.dumps(
        {"format": 1, "files": entries}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return sha256(canonical.encode("utf-8"))


def one_document(result: CliResult) -> Any:
    """Stdout parsed as exactly one JSON document (json.loads refuses trailing data)."""
    return json.loads(result.out)


def ok(result: CliResult) -> CliResult:
    assert result.code == 0, result
    assert result.err == "", result
    return result


def ok_json(cli: CliRunnerInProcess, *args: str) -> Any:
    """Run a command with ``--json`` after it; it must succeed and print one document."""
    return one_document(ok(cli(*args, "--json")))


def json_lines(result: CliResult) -> list[Any]:
    """Stdout parsed as JSON Lines (``audit log --json``): one document per line."""
    assert result.out == "" or result.out.endswith("\n"), result
    return [json.loads(line) for line in result.out.splitlines()]


def ok_json_lines(cli: CliRunnerInProcess, *args: str) -> list[Any]:
    """Run a command that prints JSON Lines with ``--json`` after it; it must succeed."""
    return json_lines(ok(cli(*args, "--json")))


def assert_error_line(result: CliResult, code: str, exit_code: int = 1) -> str:
    """The contract's failure shape: the exit code and one ``error[code]: what; fix`` line."""
    assert result.code == exit_code, result
    assert "Traceback" not in result.err, result
    lines = result.err.splitlines()
    assert len(lines) == 1, result
    assert result.err.endswith("\n"), result
    match = ERROR_LINE.match(lines[0])
    assert match is not None, result
    assert match.group(1) == code, result
    return lines[0]


def assert_json_error(result: CliResult, code: str, exit_code: int = 1) -> dict[str, Any]:
    line = assert_error_line(result, code, exit_code)
    document = one_document(result)
    assert isinstance(document, dict), result
    assert set(document) == {"error"}, result
    error = document["error"]
    assert error["code"] == code, result
    assert isinstance(error["message"], str), result
    assert error["message"], result
    assert " ".join(error["message"].split()) in line, result
    return dict(error)


def refused(cli: CliRunnerInProcess, *args: str, code: str, exit_code: int = 1) -> str:
    """Run a command plainly and with ``--json`` (before it); both must fail the same way.

    Returns the error line."""
    plain = cli(*args)
    line = assert_error_line(plain, code, exit_code)
    assert plain.out == "", plain
    assert_json_error(cli("--json", *args), code, exit_code)
    return line


def snapshot(cli: CliRunnerInProcess) -> dict[str, Any]:
    """Everything the registry says about itself: models, versions, alias moves, audit log."""
    models = ok_json(cli, "models", "list")
    return {
        "models": models,
        "versions": {m["name"]: ok_json(cli, "versions", m["name"]) for m in models},
        "aliases": {m["name"]: ok_json(cli, "alias", "history", m["name"]) for m in models},
        "audit": ok_json_lines(cli, "audit", "log"),
    }


@contextmanager
def store_unchanged(cli: CliRunnerInProcess) -> Iterator[None]:
    before = snapshot(cli)
    yield
    assert snapshot(cli) == before


def assert_version_document(document: Any) -> None:
    """A version in JSON has at least the contract's keys, with the contract's shapes."""
    assert isinstance(document, dict), document
    assert set(document) >= VERSION_KEYS, document
    assert isinstance(document["number"], int)
    assert DIGEST.match(document["digest"]), document
    assert document["status"] in ("active", "archived")
    assert isinstance(document["created_at"], str)
    assert isinstance(document["created_by"], str)
    assert document["files"], document
    for entry in document["files"]:
        assert set(entry) >= FILE_KEYS, entry
        assert DIGEST.match(entry["digest"]), entry
        assert isinstance(entry["size"], int)
    assert set(document["metadata"]) >= METADATA_KEYS, document
    assert isinstance(document["aliases"], list)


def blob_path(store: Path, digest: str) -> Path:
    hexpart = digest.removeprefix("sha256:")
    return store / "blobs" / "sha256" / hexpart[:2] / hexpart[2:]


def blob_files(store: Path) -> set[Path]:
    return {p for p in (store / "blobs" / "sha256").rglob("*") if p.is_file()}


def overwrite_blob(path: Path, data: bytes) -> None:
    """Damage a stored (read-only) blob in place."""
    os.chmod(path, 0o644)
    path.write_bytes(data)
    os.chmod(path, 0o444)
