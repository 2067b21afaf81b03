"""Rows edited directly in the database (SQLite and PostgreSQL), behind modelkeep's back:
``verify`` names each one and exits 3, and the reads that depend on them refuse
(``record_tampered``, exit 3) instead of serving what the row says now.

The edits are the ones someone with database access would make: an alias row pointed at
another version, the alias history rewritten, a file digest swapped, a recipe's chunk
changed, a version's creator, status or time edited, an attestation's stage relabelled.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text, update

from modelkeep.config import Settings
from modelkeep.content import chunking
from modelkeep.storage.sql import tables
from tests.conftest import CliRunnerInProcess, FileMaker
from tests.e2e.conftest import Pusher
from tests.e2e.support import (
    assert_error_line,
    ok,
    ok_json,
    one_document,
    refused,
    sha256,
)


def tamper(settings: Settings, statement: Any) -> None:
    """Run one statement on the store's database, as someone with access to it would."""
    engine = create_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            changed = conn.execute(text(statement) if isinstance(statement, str) else statement)
            assert changed.rowcount >= 1
    finally:
        engine.dispose()


def verify_mismatches(cli: CliRunnerInProcess, *args: str) -> list[dict[str, Any]]:
    """``verify`` fails with exit 3; the mismatches its JSON report names."""
    result = cli("--json", "verify", *args)
    line = assert_error_line(result, "digest_mismatch", exit_code=3)
    report = one_document(result)
    assert report["ok"] is False
    assert "unlike what was recorded" in line
    mismatches: list[dict[str, Any]] = report["mismatches"]
    return mismatches


def named(mismatches: list[dict[str, Any]], **fields: str) -> dict[str, Any]:
    """The one mismatch with these fields."""
    found = [m for m in mismatches if all(m[k] == v for k, v in fields.items())]
    assert len(found) == 1, mismatches
    return found[0]


def assert_nothing_written(dest: Path) -> None:
    assert not dest.exists() or list(dest.iterdir()) == []


# aliases and stages ---------------------------------------------------------------------


@pytest.fixture
def staged(cli: CliRunnerInProcess, model: str, push: Pusher) -> str:
    """m@1 promoted to staging then production, m@2 to staging; returns the model."""
    push(model, b"one")
    push(model, b"two")
    ok(cli("promote", "m@1", "--to", "staging"))
    ok(cli("promote", "m@1", "--to", "production"))
    ok(cli("promote", "m@2", "--to", "staging"))
    assert ok_json(cli, "verify", "--all")["ok"] is True
    return model


PRODUCTION_TO_2 = (
    "UPDATE aliases SET version_id = (SELECT id FROM versions WHERE number = 2) "
    "WHERE name = 'production'"
)


def test_an_alias_row_pointed_elsewhere_is_refused_by_every_read_and_named_by_verify(
    cli: CliRunnerInProcess, settings: Settings, staged: str, tmp_path: Path
) -> None:
    tamper(settings, PRODUCTION_TO_2)
    line = refused(cli, "resolve", "m@production", code="record_tampered", exit_code=3)
    assert "m@production: target is version 2 in the database" in line
    assert "the audit chain says version 1" in line
    assert "modelkeep verify --all" in line
    dest = tmp_path / "dest"
    assert_error_line(cli("pull", "m@production", str(dest)), "record_tampered", exit_code=3)
    assert_nothing_written(dest)
    assert_error_line(
        cli("attest", "verify", "m@production"), "record_tampered", exit_code=3
    )  # not a pass on m@2's staging attestation
    found = named(verify_mismatches(cli, "--all"), kind="alias", subject="m@production")
    assert (found["field"], found["expected"], found["found"]) == (
        "target",
        "version 1",
        "version 2",
    )
    assert found["source"] == "the audit chain"
    named(verify_mismatches(cli, "m@1"), subject="m@production")
    assert ok_json(cli, "resolve", "m@staging")["number"] == 2  # other aliases still serve
    # a new move on top of the edited row would make the edit look recorded
    refused(cli, "promote", "m@1", "--to", "production", code="record_tampered", exit_code=3)
    named(verify_mismatches(cli, "--all"), subject="m@production", field="target")


def test_an_alias_row_deleted_is_refused(
    cli: CliRunnerInProcess, settings: Settings, staged: str
) -> None:
    tamper(settings, "DELETE FROM aliases WHERE name = 'production'")
    line = refused(cli, "resolve", "m@production", code="record_tampered", exit_code=3)
    assert "target is unset in the database" in line
    found = named(verify_mismatches(cli, "--all"), subject="m@production", field="target")
    assert (found["expected"], found["found"]) == ("version 1", "unset")


def test_an_alias_deleted_with_its_history_is_still_named_by_verify(
    cli: CliRunnerInProcess, settings: Settings, staged: str
) -> None:
    tamper(settings, "DELETE FROM alias_events WHERE alias = 'production'")
    tamper(settings, "DELETE FROM aliases WHERE name = 'production'")
    mismatches = verify_mismatches(cli, "--all")
    assert named(mismatches, subject="m@production", field="target")["expected"] == "version 1"
    assert named(mismatches, subject="m@production", field="history move 1")["found"] == (
        "no such move"
    )


def test_a_rewritten_alias_history_is_named_and_rollback_refuses_to_follow_it(
    cli: CliRunnerInProcess, settings: Settings, staged: str
) -> None:
    first_staging_move = (
        "UPDATE alias_events SET new_version_id = (SELECT id FROM versions WHERE number = 2) "
        "WHERE id = (SELECT MIN(id) FROM alias_events WHERE alias = 'staging')"
    )
    tamper(settings, first_staging_move)
    line = refused(cli, "rollback", "m", "--stage", "staging", code="record_tampered", exit_code=3)
    assert "m@staging: history move 1" in line
    found = named(verify_mismatches(cli, "--all"), subject="m@staging")
    assert found["field"] == "history move 1"
    assert found["expected"] == "promote to version 1 by " + found["expected"].split(" by ")[1]
    assert found["found"].startswith("promote to version 2 by ")
    assert ok_json(cli, "resolve", "m@staging")["number"] == 2  # the row itself is right


def test_attest_verify_of_a_stage_checks_that_stages_attestation(
    cli: CliRunnerInProcess, staged: str, tmp_path: Path
) -> None:
    key = store_key(cli, tmp_path)
    report = ok_json(cli, "attest", "verify", "m@production", "--public-key", key)
    assert report["statement"]["predicate"]["stage"] == "production"
    assert any("the attested stage is production" in c for c in report["checked"])
    staging = ok_json(cli, "attest", "verify", "m@staging", "--public-key", key)
    assert staging["statement"]["predicate"]["stage"] == "staging"
    assert staging["statement"]["predicate"]["number"] == 2
    # m@2 was never promoted to production: no attestation of it can stand in
    line = refused(cli, "attest", "verify", "m@2", "--stage", "production", code="not_found")
    assert "no attestation for production" in line
    line = refused(
        cli, "attest", "verify", "m@production", "--stage", "staging", code="invalid_input"
    )
    assert "names the production stage" in line


def test_an_attestation_relabelled_with_another_stage_fails(
    cli: CliRunnerInProcess, settings: Settings, staged: str
) -> None:
    tamper(
        settings,
        "UPDATE attestations SET stage = 'production' "
        "WHERE version_id = (SELECT id FROM versions WHERE number = 2)",
    )
    result = cli("--json", "attest", "verify", "m@2", "--stage", "production")
    line = assert_error_line(result, "attestation_invalid", exit_code=3)
    assert "attests a promotion to staging, not to production" in line


def store_key(cli: CliRunnerInProcess, tmp_path: Path) -> str:
    """The store's public key in a file, as docs/governance.md says to keep it."""
    path = tmp_path / "store.pem"
    path.write_text(ok(cli("audit", "key")).out)
    return str(path)


# versions and their files ---------------------------------------------------------------


def test_a_swapped_file_digest_is_refused_by_pull_before_writing_and_named_by_verify(
    cli: CliRunnerInProcess, settings: Settings, model: str, push: Pusher, tmp_path: Path
) -> None:
    push(model, b"one")
    push(model, b"two")
    tamper(
        settings,
        f"UPDATE version_files SET digest = '{sha256(b'two')}' "
        "WHERE version_id = (SELECT id FROM versions WHERE number = 1)",
    )
    dest = tmp_path / "dest"
    line = assert_error_line(cli("pull", "m@1", str(dest)), "record_tampered", exit_code=3)
    assert "m@1: file list digest" in line
    assert "modelkeep verify --all" in line
    assert_nothing_written(dest)  # m@2's bytes were not written as m@1's
    found = named(verify_mismatches(cli, "--all"), kind="file", subject="m@1:model.bin")
    assert (found["field"], found["expected"], found["found"]) == (
        "digest",
        sha256(b"one"),
        sha256(b"two"),
    )
    assert found["source"] == "the manifest blob"
    ok(cli("pull", "m@2", str(tmp_path / "two")))


def test_a_changed_recipe_chunk_is_named_by_verify_and_refused_by_pull(
    cli: CliRunnerInProcess,
    settings: Settings,
    model: str,
    files: FileMaker,
    tmp_path: Path,
) -> None:
    big = files.make("big.bin", random.Random(12).randbytes(chunking.WHOLE_BELOW + 4 * 2**20))
    ok(cli("push", model, str(big)))
    assert ok_json(cli, "verify", "--all")["ok"] is True
    second = "(SELECT c.{0} FROM recipe_chunks c WHERE c.position = 1)"
    tamper(
        settings,
        f"UPDATE recipe_chunks SET digest = {second.format('digest')}, "
        f"size = {second.format('size')} WHERE position = 0",
    )
    found = named(verify_mismatches(cli, "--all"), kind="recipe")
    assert found["subject"] == f"file {sha256(big.read_bytes())}"
    assert found["source"] == "the recipe blob"
    dest = tmp_path / "dest"
    line = assert_error_line(cli("pull", "m@1", str(dest)), "record_tampered", exit_code=3)
    assert "modelkeep verify --all" in line
    assert_nothing_written(dest)


WHO_WHEN_STATUS = [
    pytest.param(
        "UPDATE versions SET created_by = 'local:mallory' WHERE number = 1",
        "created_by",
        "local:mallory",
        id="created_by",
    ),
    pytest.param(
        "UPDATE versions SET status = 'archived' WHERE number = 1",
        "status",
        "archived",
        id="status",
    ),
    pytest.param(
        update(tables.versions)
        .where(tables.versions.c.number == 1)
        .values(created_at=datetime(2020, 1, 1, tzinfo=UTC)),
        "created_at",
        "2020-01-01T00:00:00+00:00",
        id="created_at",
    ),
]


@pytest.mark.parametrize(("statement", "field", "found"), WHO_WHEN_STATUS)
def test_who_when_and_status_edited_are_refused_and_named(
    cli: CliRunnerInProcess,
    settings: Settings,
    model: str,
    push: Pusher,
    statement: Any,
    field: str,
    found: str,
) -> None:
    """They decide separation of duties (who may approve) and what may be promoted."""
    push(model, b"one")
    push(model, b"two")
    tamper(settings, statement)
    line = refused(cli, "show", "m@1", code="record_tampered", exit_code=3)
    assert f"m@1: {field} is {found} in the database" in line
    refused(cli, "approve", "m@1", "--to", "production", code="record_tampered", exit_code=3)
    refused(cli, "promote", "m@1", "--to", "staging", code="record_tampered", exit_code=3)
    mismatch = named(verify_mismatches(cli, "--all"), subject="m@1", field=field)
    assert mismatch["found"] == found
    assert mismatch["source"] == "the audit chain"
    assert ok_json(cli, "verify", "m@2")["ok"] is True


def test_an_archived_version_made_active_in_the_database_is_refused(
    cli: CliRunnerInProcess, settings: Settings, model: str, push: Pusher
) -> None:
    push(model, b"one")
    push(model, b"two")
    ok(cli("archive", "m@1"))
    tamper(settings, "UPDATE versions SET status = 'active' WHERE number = 1")
    line = refused(cli, "promote", "m@1", "--to", "staging", code="record_tampered", exit_code=3)
    assert "m@1: status is active in the database, but the audit chain says archived" in line


def test_verify_names_a_broken_audit_chain_too(
    cli: CliRunnerInProcess, settings: Settings, staged: str
) -> None:
    """Rows are checked against the chain: an edited chain cannot vouch for them."""
    tamper(settings, "UPDATE audit_events SET actor = 'local:mallory' WHERE seq = 3")
    found = named(verify_mismatches(cli, "--all"), kind="chain")
    assert found["field"] == "seq 3"
