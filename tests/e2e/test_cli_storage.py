"""``storage``, ``retention set | show | clear`` and what ``gc`` and ``pull`` do with a
purged version, through the CLI on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.clock import FakeClock
from tests.conftest import CliRunnerInProcess
from tests.e2e.conftest import Pusher
from tests.e2e.support import (
    assert_version_document,
    blob_path,
    ok,
    ok_json,
    refused,
)


@pytest.fixture(autouse=True)
def no_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELKEEP_GC_GRACE_SECONDS", "0")


def test_storage_reports_logical_and_physical_bytes(
    cli: CliRunnerInProcess, model: str, push: Pusher
) -> None:
    first = push(model, b"a" * 1000)
    second = push(model, b"a" * 1000, name="copy.bin")  # same bytes under another path
    report = ok_json(cli, "storage")
    assert report == {
        "logical_bytes": 2000,
        "physical_bytes": 1000,
        "saved_bytes": 1000,
        "models": [
            {
                "model": "m",
                "logical_bytes": 2000,
                "physical_bytes": 1000,
                "versions": [
                    {
                        "number": 1,
                        "digest": first["digest"],
                        "logical_bytes": 1000,
                        "new_bytes": 1000,
                    },
                    {
                        "number": 2,
                        "digest": second["digest"],
                        "logical_bytes": 1000,
                        "new_bytes": 0,
                    },
                ],
            }
        ],
    }
    assert ok_json(cli, "storage", "--model", "m") == report
    human = ok(cli("storage")).out
    assert "m" in human and "2.0 KB" in human and "1.0 KB (50%)" in human
    assert human.splitlines()[-1].split()[0] == "total"
    refused(cli, "storage", "--model", "nope", code="model_not_found")


def test_retention_set_show_clear(cli: CliRunnerInProcess, model: str) -> None:
    assert ok_json(cli, "retention", "show", model)["keep_last"] is None
    assert "no retention policy" in ok(cli("retention", "show", model)).out
    policy = ok_json(cli, "retention", "set", model, "--keep-last", "3", "--keep-days", "30")
    assert {k: policy[k] for k in ("model", "keep_last", "keep_days")} == {
        "model": "m",
        "keep_last": 3,
        "keep_days": 30,
    }
    assert policy["updated_by"].startswith("local:")
    assert ok_json(cli, "retention", "show", model) == policy
    assert ok(cli("retention", "show", model)).out.startswith(
        "m: keep the last 3 versions and what was registered or named by an alias within 30 days"
    )
    assert ok_json(cli, "retention", "clear", model) == policy
    assert "had no retention policy" in ok(cli("retention", "clear", model)).out
    refused(cli, "retention", "set", model, code="invalid_input")
    refused(cli, "retention", "set", model, "--keep-last", "0", code="invalid_input")
    refused(cli, "retention", "set", "nope", "--keep-last", "1", code="model_not_found")


def test_gc_purges_by_retention_and_a_purged_version_cannot_be_pulled(
    clock: FakeClock, cli: CliRunnerInProcess, model: str, push: Pusher, store: Path, tmp_path: Path
) -> None:
    old = push(model, b"old weights" * 10)
    push(model, b"newer weights")
    push(model, b"newest weights")
    ok(cli("promote", "m@2", "--to", "production"))
    ok(cli("retention", "set", model, "--keep-last", "1"))
    clock.advance()  # every blob is older than gc's "now"

    dry = ok(cli("gc", "--dry-run")).out
    assert dry.splitlines()[0] == "would purge m@1 (retention)"
    assert "would free 110 B in 1 blobs" in dry
    assert ok_json(cli, "gc", "--dry-run")["purged"] == ["m@1"]
    report = ok_json(cli, "gc")
    assert (report["purged"], report["bytes"], report["blobs"]) == (["m@1"], 110, 1)
    assert not blob_path(store, old["files"][0]["digest"]).exists()

    shown = ok_json(cli, "show", "m@1")
    assert_version_document(shown)
    assert shown["status"] == "archived"
    assert shown["purged_at"] is not None
    assert "purged" in ok(cli("show", "m@1")).out
    line = refused(cli, "pull", "m@1", str(tmp_path / "out"), code="version_purged")
    assert "m@1 was purged at " in line
    assert not (tmp_path / "out").exists()
    ok(cli("pull", "m@2", str(tmp_path / "two")))
    assert (tmp_path / "two" / "model.bin").read_bytes() == b"newer weights"
    assert ok(cli("gc")).out.startswith("freed 0 B in 0 blobs")  # nothing more to purge
