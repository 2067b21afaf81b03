"""Rows against the audit chain (domain/integrity.py): what old push events (no
``record_digest``, no ``metadata_digest``) still prove, and what the new record covers."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from modelkeep.domain import integrity
from modelkeep.domain.audit import AuditEvent
from modelkeep.domain.manifest import FileEntry, Manifest
from modelkeep.domain.recipes import ChunkRef, Recipe
from modelkeep.domain.versions import Version, VersionMetadata

T0 = datetime(2026, 3, 3, 10, 0, 0, 123456, tzinfo=UTC)
FILES = (FileEntry("model.bin", 3, "sha256:" + "a" * 64),)


def version(**changes: Any) -> Version:
    made = Version(
        model="m",
        number=1,
        semver="1.0.0",
        digest=Manifest.of(FILES).digest,
        status="active",
        created_at=T0,
        created_by="local:ann",
        files=FILES,
        metadata=VersionMetadata(params={"lr": 0.1}),
        message="first",
    )
    return replace(made, **changes)


def push_event(details: dict[str, Any], actor: str = "local:ann") -> AuditEvent:
    return AuditEvent(1, T0, actor, "version.push", "m@1", details)


def old_details(v: Version) -> dict[str, Any]:
    """A push event written before metadata_digest and record_digest existed."""
    return {"number": 1, "digest": v.digest, "semver": v.semver, "files": 1, "size": 3}


def fields(found: list[integrity.Mismatch]) -> list[str]:
    return [m.field for m in found]


def test_an_old_push_event_still_proves_creator_time_digest_and_number() -> None:
    original = version()
    events = [push_event(old_details(original))]
    assert integrity.version_mismatches(original, events) == []
    changed = version(created_by="local:mallory", created_at=T0 - timedelta(days=1))
    assert fields(integrity.version_mismatches(changed, events)) == ["created_by", "created_at"]
    # what an old event did not record (the metadata) is not held against the row
    assert integrity.version_mismatches(version(message="edited"), events) == []


def test_a_new_push_event_covers_the_whole_record() -> None:
    original = version()
    details = {
        **old_details(original),
        "metadata_digest": original.metadata_digest,
        "record_digest": integrity.record_digest(original),
    }
    events = [push_event(details)]
    assert integrity.version_mismatches(original, events) == []
    edited = version(message="edited")
    assert fields(integrity.version_mismatches(edited, events)) == [
        "metadata_digest",
        "record_digest",
    ]


def test_the_record_digest_is_plain_canonical_json_of_strings_and_integers() -> None:
    """Reproducible outside Python: sorted keys, no spaces, UTF-8, no floats."""
    original = version()
    record = integrity.push_record(original)
    assert record["created_at"] == "2026-03-03T10:00:00.123456+00:00"
    assert record["status"] == "active"
    assert all(isinstance(v, str | int) for v in record.values())
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    expected = "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert integrity.record_digest(original) == expected


def test_status_replays_from_archive_and_unarchive_events() -> None:
    original = version()
    push = push_event(old_details(original))
    archived = AuditEvent(2, T0, "local:ann", "version.archive", "m@1", {})
    unarchived = AuditEvent(3, T0, "local:ann", "version.unarchive", "m@1", {})
    assert fields(integrity.version_mismatches(original, [push, archived])) == ["status"]
    assert integrity.version_mismatches(version(status="archived"), [push, archived]) == []
    assert integrity.version_mismatches(original, [push, archived, unarchived]) == []
    purge = AuditEvent(4, T0, "ann", "version.purge", "m@1", {"archived": True})
    purged = version(status="archived", purged_at=T0)
    assert integrity.version_mismatches(purged, [push, purge]) == []
    assert fields(integrity.version_mismatches(version(status="archived"), [push, purge])) == [
        "purged"
    ]


def test_a_file_list_that_is_not_the_manifest_is_named_file_by_file() -> None:
    swapped = (FileEntry("model.bin", 3, "sha256:" + "b" * 64),)
    tampered = version(files=swapped)
    found = integrity.version_mismatches(tampered, [])
    assert fields(found) == ["file list digest"]
    by_file = integrity.file_mismatches(tampered, Manifest.of(FILES))
    assert [(m.subject, m.field, m.expected, m.found) for m in by_file] == [
        ("m@1:model.bin", "digest", "sha256:" + "a" * 64, "sha256:" + "b" * 64)
    ]


def alias_move(seq: int, action: str, new: int | None) -> AuditEvent:
    details = {"alias": "production", "new": new, "new_digest": None if new is None else "d"}
    return AuditEvent(seq, T0, "local:ann", f"alias.{action}", "m@production", details)


def test_an_alias_row_must_be_where_the_last_recorded_move_left_it() -> None:
    moves = [alias_move(1, "promote", 1), alias_move(2, "promote", 2)]
    assert integrity.alias_row_mismatches("m@production", 2, "d", moves) == []
    found = integrity.alias_row_mismatches("m@production", 1, "d", moves)
    assert [(m.field, m.expected, m.found) for m in found] == [("target", "version 2", "version 1")]
    assert integrity.alias_row_mismatches("m@production", None, None, []) == []
    removed = [*moves, alias_move(3, "rm", None)]
    assert fields(integrity.alias_row_mismatches("m@production", 2, "d", removed)) == ["target"]


def test_a_recipe_row_is_compared_chunk_by_chunk_with_its_blob() -> None:
    first, second = ChunkRef("sha256:" + "1" * 64, 5), ChunkRef("sha256:" + "2" * 64, 7)
    blob = Recipe.of("sha256:" + "f" * 64, "fastcdc-1", [first, second])
    assert integrity.recipe_mismatches(blob, blob.recipe_digest, blob) == []
    rows = Recipe.of(blob.digest, "fastcdc-1", [second, second])
    found = integrity.recipe_mismatches(rows, blob.recipe_digest, blob)
    assert [(m.field, m.expected, m.found) for m in found] == [
        ("chunk 0", f"{first.digest} (5 B)", f"{second.digest} (7 B)")
    ]
    # on a pull the blob is not read: the recorded recipe digest still gives it away
    assert fields(integrity.recipe_mismatches(rows, blob.recipe_digest, None)) == ["recipe digest"]
