"""Signed audit checkpoints against someone who can write the database, on SQLite and
PostgreSQL: truncation and consistent rewrites are caught, forged checkpoints are named,
the JSON Lines export re-verifies with the program of docs/design.md, and events written
through the API carry their request id."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine, text

import modelkeep
from modelkeep.bootstrap import open_context
from modelkeep.config import Settings
from modelkeep.domain.access import Actor
from modelkeep.domain.audit import (
    GENESIS,
    AuditEvent,
    Checkpoint,
    CheckpointEntry,
    SignedCheckpoint,
)
from modelkeep.errors import AmbiguousRef, Forbidden, InvalidInput
from modelkeep.services import admin, audit, maintenance, models
from modelkeep.services.context import ServiceContext
from tests.conftest import served_app
from tests.test_docs import write_program


def changes(registry: ServiceContext, count: int) -> None:
    """``count`` more audited changes (one event each)."""
    for _ in range(count):
        n = len(models.list_models(registry))
        models.create_model(registry, f"m{n}", description=f"model {n}")


def execute(settings: Settings, *statements: tuple[str, dict[str, object]]) -> None:
    """Run SQL on the store's database as someone with write access to it would."""
    engine = create_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            for statement, params in statements:
                conn.execute(text(statement), params)
    finally:
        engine.dispose()


def truncate(settings: Settings, registry: ServiceContext, keep: int) -> None:
    """Delete every event after seq ``keep`` and move audit_head to match: consistent."""
    kept = audit.audit_log(registry)[keep - 1]
    execute(
        settings,
        ("DELETE FROM audit_events WHERE seq > :keep", {"keep": keep}),
        ("UPDATE audit_head SET seq = :seq, hash = :hash", {"seq": kept.seq, "hash": kept.hash}),
    )


def rewrite(settings: Settings, registry: ServiceContext, seq: int, actor: str) -> None:
    """Edit one event's actor and recompute every hash after it, and the head."""
    prev_hash, statements = GENESIS, []
    for event in audit.audit_log(registry):
        edited = dataclasses.replace(
            event, actor=actor if event.seq == seq else event.actor, prev_hash=prev_hash
        )
        new_hash = edited.compute_hash()
        statements.append(
            (
                "UPDATE audit_events SET actor = :actor, prev_hash = :prev, hash = :hash "
                "WHERE seq = :seq",
                {"actor": edited.actor, "prev": prev_hash, "hash": new_hash, "seq": event.seq},
            )
        )
        prev_hash = new_hash
    statements.append(("UPDATE audit_head SET hash = :hash", {"hash": prev_hash}))
    execute(settings, *statements)


# the key ----------------------------------------------------------------------------------


def test_the_key_is_made_on_first_use_outside_the_database(
    registry: ServiceContext, store_dir: Path
) -> None:
    keys = store_dir / "keys"
    changes(registry, 1)
    assert audit.verify(registry).ok
    assert not keys.exists()  # verify never makes a key
    made = audit.checkpoint(registry)
    assert (keys / "audit-ed25519.pem").stat().st_mode & 0o777 == 0o600
    assert (keys / "audit-ed25519.pub.pem").stat().st_mode & 0o777 == 0o644
    public = audit.public_key(registry)
    assert public.hex == made.public_key
    pem = serialization.load_pem_public_key((keys / "audit-ed25519.pub.pem").read_bytes())
    assert (
        pem.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
        == public.pem
    )


def test_a_checkpoint_signs_the_head_and_is_stored_twice(
    registry: ServiceContext, store_dir: Path
) -> None:
    changes(registry, 3)
    made = audit.checkpoint(registry)
    assert (made.seq, made.hash) == (3, audit.audit_log(registry)[-2].hash)
    assert made.name == f"checkpoints/{3:020d}-{made.hash[:12]}.json"
    named = registry.blobs.get_named(made.name)
    assert named is not None and registry.blobs.read_bytes(made.digest) == named
    assert (store_dir / made.name).read_bytes() == named
    signed = SignedCheckpoint.parse(named)
    assert signed.checkpoint == Checkpoint(registry.blobs.store_id, 3, made.hash, made.at)
    assert audit.signature_ok(bytes.fromhex(made.public_key), signed)
    event = audit.audit_log(registry)[-1]
    assert (event.seq, event.action, event.subject) == (4, "audit.checkpoint", "audit")
    assert event.details == {"seq": 3, "hash": made.hash, "name": made.name, "digest": made.digest}
    report = audit.verify(registry)
    assert report.ok and report.checkpoints == (made.name,) and report.checked == 4


def test_gc_keeps_checkpoint_blobs(registry: ServiceContext) -> None:
    changes(registry, 1)
    made = audit.checkpoint(registry)
    maintenance.gc(registry, grace_seconds=0)
    assert registry.blobs.has(made.digest)
    assert audit.verify(registry).ok


def test_checkpoints_need_a_global_admin(registry: ServiceContext) -> None:
    viewer = registry.for_actor(Actor("vera", ()))
    with pytest.raises(Forbidden, match="checkpoint needs"):
        audit.checkpoint(viewer)


# tampering ----------------------------------------------------------------------------------


def test_truncation_below_a_checkpoint_is_caught(
    registry: ServiceContext, settings: Settings
) -> None:
    changes(registry, 3)
    made = audit.checkpoint(registry)  # vouches for seq 3
    changes(registry, 2)  # seq 4 is the checkpoint's event; 5 and 6
    truncate(settings, registry, keep=2)
    report = audit.verify(registry)
    assert (report.ok, report.first_bad_seq, report.checkpoint) == (False, 3, made.name)
    assert "ends at seq 2" in (report.problem or "") and "deleted" in (report.problem or "")
    assert report.checkpoints == (made.name,)


def test_without_a_checkpoint_the_same_truncation_passes(
    registry: ServiceContext, settings: Settings
) -> None:
    """What the checkpoint adds: a consistent truncation is invisible to the chain alone."""
    changes(registry, 5)
    truncate(settings, registry, keep=2)
    assert audit.verify(registry).ok


def test_truncation_after_the_last_checkpoint_is_not_caught(
    registry: ServiceContext, settings: Settings
) -> None:
    """The documented limit: a checkpoint vouches for events up to its seq only."""
    changes(registry, 2)
    audit.checkpoint(registry)  # vouches for seq 2; its event is seq 3
    changes(registry, 2)
    truncate(settings, registry, keep=3)
    assert audit.verify(registry).ok


def test_a_consistent_rewrite_is_caught_by_the_checkpoint(
    registry: ServiceContext, settings: Settings
) -> None:
    changes(registry, 2)
    first = audit.checkpoint(registry)  # seq 2
    changes(registry, 2)  # seq 4, 5
    second = audit.checkpoint(registry)  # seq 5
    changes(registry, 1)
    rewrite(settings, registry, seq=4, actor="local:mallory")
    report = audit.verify(registry)
    assert (report.ok, report.first_bad_seq, report.checkpoint) == (False, 5, second.name)
    assert "rewritten between seq 3 and seq 5" in (report.problem or "")
    assert report.checkpoints == (first.name, second.name)


def test_a_rewrite_of_the_first_event_is_caught(
    registry: ServiceContext, settings: Settings
) -> None:
    changes(registry, 2)
    made = audit.checkpoint(registry)
    rewrite(settings, registry, seq=1, actor="local:mallory")
    report = audit.verify(registry)
    assert (report.ok, report.first_bad_seq, report.checkpoint) == (False, 2, made.name)


def test_a_forged_checkpoint_is_reported(registry: ServiceContext) -> None:
    changes(registry, 2)
    audit.checkpoint(registry)
    changes(registry, 1)
    head = audit.audit_log(registry)[-1]
    other = Ed25519PrivateKey.generate()
    body = Checkpoint(registry.blobs.store_id, head.seq, head.hash, head.at.isoformat())
    public = other.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    forged = SignedCheckpoint(body, other.sign(body.signed_bytes()).hex(), public.hex())
    registry.blobs.put_named(body.name, forged.to_bytes())
    report = audit.verify(registry)
    assert (report.ok, report.first_bad_seq, report.checkpoint) == (False, None, body.name)
    assert "signature does not verify" in (report.problem or "")


def test_a_checkpoint_of_another_store_is_reported(registry: ServiceContext) -> None:
    changes(registry, 1)
    audit.checkpoint(registry)
    head = audit.audit_log(registry)[-1]
    body = Checkpoint("another-store", head.seq, head.hash, head.at.isoformat())
    assert registry.signer is not None
    signed = SignedCheckpoint(body, registry.signer.sign(body.signed_bytes()).hex(), "")
    registry.blobs.put_named(body.name, signed.to_bytes())
    report = audit.verify(registry)
    assert (report.ok, report.checkpoint) == (False, body.name)
    assert "belongs to store another-store" in (report.problem or "")


def test_a_deleted_checkpoint_file_is_reported(registry: ServiceContext, store_dir: Path) -> None:
    changes(registry, 1)
    made = audit.checkpoint(registry)
    (store_dir / made.name).unlink()
    report = audit.verify(registry)
    assert not report.ok and f"recorded checkpoint {made.name}" in (report.problem or "")


def test_a_shared_signing_key_from_the_settings(settings: Settings, tmp_path: Path) -> None:
    key = tmp_path / "shared.pem"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    shared = settings.replace(signing_key=str(key))
    first = open_context(shared)
    try:
        changes(first, 1)
        made = audit.checkpoint(first)
    finally:
        first.close()
    replica = open_context(shared)
    try:
        assert audit.verify(replica).ok
    finally:
        replica.close()
    own_key = open_context(settings)  # the store's own key is another key
    try:
        own_key.signer.public_key(create=True)  # type: ignore[union-attr]
        report = audit.verify(own_key)
        assert (report.ok, report.checkpoint) == (False, made.name)
    finally:
        own_key.close()
    missing = open_context(settings.replace(signing_key=str(tmp_path / "absent.pem")))
    try:
        with pytest.raises(InvalidInput, match="does not exist"):
            audit.checkpoint(missing)
        assert "no audit key" in (audit.verify(missing).problem or "")
    finally:
        missing.close()


# the export ----------------------------------------------------------------------------------


def test_the_json_lines_export_re_verifies_with_the_documented_program(
    registry: ServiceContext, store_dir: Path, tmp_path: Path
) -> None:
    models.create_model(registry, "fraud", description="Ünïcode survives")
    audit.checkpoint(registry)
    changes(registry, 2)
    audit.checkpoint(registry)
    events = audit.audit_log(registry)
    lines = list(audit.json_lines(events))
    assert [json.loads(line) for line in lines] == [e.to_dict() for e in events]
    assert all("\n" not in line for line in lines)
    log = tmp_path / "audit.jsonl"
    log.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    key = tmp_path / "key.pem"
    key.write_text(audit.public_key(registry).pem)
    program = write_program(tmp_path, "verify_checkpoints.py", "audit-checkpoint-verifier")
    checkpoints = sorted(str(p) for p in (store_dir / "checkpoints").iterdir())
    done = subprocess.run(
        [sys.executable, str(program), str(log), str(key), *checkpoints],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == f"intact: 5 events, 2 checkpoints, head {events[-1].hash}"
    stdlib_only = write_program(tmp_path, "verify_audit.py", "audit-verifier")
    done = subprocess.run(
        [sys.executable, str(stdlib_only)],
        input=log.read_text(encoding="utf-8"),
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == f"intact: 5 events, head {events[-1].hash}"


# over the SDK and the API ----------------------------------------------------------------------


def test_the_sdk_checkpoints_and_verifies(mk: modelkeep.Client) -> None:
    mk.create_model("fraud")
    made = mk.audit_checkpoint()
    assert made.seq == mk.audit_log()[-2].seq and made.name.startswith("checkpoints/")
    assert mk.audit_key().hex == made.public_key
    report = mk.audit_verify()
    assert report.ok and report.checkpoints == (made.name,)


def test_events_written_through_the_api_carry_the_request_id(settings: Settings) -> None:
    with served_app(settings) as (http, token):
        auth = {"authorization": f"Bearer {token}"}
        created = http.post(
            "/api/v1/models",
            json={"name": "fraud"},
            headers={**auth, "x-request-id": "req-model-1"},
        )
        assert created.status_code == 201, created.text
        checkpoint = http.post("/api/v1/audit/checkpoints", headers=auth)
        assert checkpoint.status_code == 201, checkpoint.text
        given = checkpoint.headers["x-request-id"]
        events = http.get("/api/v1/audit", headers=auth).json()["items"]
    by_action = {e["action"]: e for e in events}
    assert by_action["model.create"]["details"]["request_id"] == "req-model-1"
    assert by_action["audit.checkpoint"]["details"]["request_id"] == given
    assert by_action["user.create"]["details"].get("request_id") is None  # not via the API
    registry = open_context(settings)
    try:
        assert audit.verify(registry).ok
    finally:
        registry.close()


def test_a_viewer_may_not_checkpoint_over_the_api(settings: Settings) -> None:
    with served_app(settings, role="viewer") as (http, token):
        refused = http.post(
            "/api/v1/audit/checkpoints", headers={"authorization": f"Bearer {token}"}
        )
    assert refused.status_code == 403
    assert "checkpoint needs a global admin" in refused.json()["error"]["message"]


def test_audit_events_without_a_request_keep_their_details(registry: ServiceContext) -> None:
    changes(registry, 1)
    event: AuditEvent = audit.audit_log(registry)[-1]
    assert "request_id" not in event.details


# what an outside verifier reads: the head and the checkpoint files ---------------------------


def test_the_sdk_reads_the_head_and_the_checkpoint_files(mk: modelkeep.Client) -> None:
    mk.create_model("fraud")
    head = mk.audit_head()
    assert (head.seq, head.hash) == (mk.audit_log()[-1].seq, mk.audit_log()[-1].hash)
    assert head.checkpoint is None and mk.audit_checkpoints() == []
    made = mk.audit_checkpoint()
    mk.create_model("later")
    head = mk.audit_head()
    assert head.seq == made.seq + 2 and head.checkpoint is not None
    assert (head.checkpoint.checkpoint.seq, head.checkpoint.checkpoint.hash) == (
        made.seq,
        made.hash,
    )
    assert audit.signature_ok(bytes.fromhex(mk.audit_key().hex), head.checkpoint)
    assert mk.audit_checkpoints() == [CheckpointEntry(made.seq, made.name)]
    data = mk.audit_checkpoint_file(made.seq)
    assert "sha256:" + hashlib.sha256(data).hexdigest() == made.digest  # the stored bytes
    assert SignedCheckpoint.parse(data) == head.checkpoint


def test_the_api_serves_the_head_and_the_checkpoint_files_byte_for_byte(
    settings: Settings, store_dir: Path, tmp_path: Path
) -> None:
    """Everything the documented checkpoint verifier needs, fetched over HTTP only."""
    with served_app(settings) as (http, token):
        auth = {"authorization": f"Bearer {token}"}
        for name in ("fraud", "churn"):
            assert http.post("/api/v1/models", json={"name": name}, headers=auth).is_success
            assert http.post("/api/v1/audit/checkpoints", headers=auth).status_code == 201
        head = http.get("/api/v1/audit/head", headers=auth).json()
        first = http.get("/api/v1/audit/checkpoints", params={"limit": 1}, headers=auth).json()
        rest = http.get(
            "/api/v1/audit/checkpoints", params={"after": first["next"]}, headers=auth
        ).json()
        entries = first["items"] + rest["items"]
        files = [http.get(f"/api/v1/audit/checkpoints/{e['seq']}", headers=auth) for e in entries]
        missing = http.get("/api/v1/audit/checkpoints/999", headers=auth)
        events = http.get("/api/v1/audit", headers=auth).json()["items"]
        pem = http.get("/api/v1/audit/key", headers=auth).json()["public_key_pem"]
    assert [e["seq"] for e in entries] == [2, 4] and rest["next"] is None
    assert head["seq"] == events[-1]["seq"] == 5 and head["hash"] == events[-1]["hash"]
    assert head["checkpoint"]["name"] == entries[-1]["name"]
    assert head["checkpoint"]["seq"] == 4 and head["store_id"] == head["checkpoint"]["store_id"]
    for entry, response in zip(entries, files, strict=True):
        assert response.status_code == 200 and response.headers["content-type"] == (
            "application/json"
        )
        assert response.content == (store_dir / entry["name"]).read_bytes()
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"

    log, key = tmp_path / "audit.jsonl", tmp_path / "key.pem"
    log.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    key.write_text(pem)
    saved = []
    for entry, response in zip(entries, files, strict=True):
        saved.append(tmp_path / entry["name"].rsplit("/", 1)[-1])
        saved[-1].write_bytes(response.content)
    program = write_program(tmp_path, "verify_checkpoints.py", "audit-checkpoint-verifier")
    done = subprocess.run(
        [sys.executable, str(program), str(log), str(key), *map(str, saved)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == f"intact: 5 events, 2 checkpoints, head {head['hash']}"


@pytest.mark.parametrize("path", ["/audit/head", "/audit/checkpoints", "/audit/checkpoints/1"])
def test_the_head_and_checkpoints_need_what_reading_the_whole_log_needs(
    settings: Settings, path: str
) -> None:
    registry = open_context(settings)
    try:
        models.create_model(registry, "fraud")
        audit.checkpoint(registry)
        _, alpha = admin.create_user(registry, "alpha-viewer", "viewer", "fraud")
    finally:
        registry.close()
    with served_app(settings, role="viewer") as (http, token):
        allowed = http.get(f"/api/v1{path}", headers={"authorization": f"Bearer {token}"})
        refused = http.get(f"/api/v1{path}", headers={"authorization": f"Bearer {alpha.secret}"})
    assert allowed.status_code == 200, allowed.text  # a global viewer
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"


def test_two_checkpoints_of_one_seq_are_named_not_chosen(
    registry: ServiceContext, store_dir: Path
) -> None:
    """Two heads signed at one seq mean the log was rewritten between them: serving one
    of them silently would hide the other."""
    changes(registry, 1)
    made = audit.checkpoint(registry)
    other = store_dir / "checkpoints" / f"{made.seq:020d}-{'f' * 12}.json"
    other.write_bytes((store_dir / made.name).read_bytes())
    (store_dir / "checkpoints" / "notes.txt").write_text("not a checkpoint")
    assert [e.seq for e in audit.checkpoints(registry)] == [made.seq, made.seq]
    with pytest.raises(AmbiguousRef, match=f"2 checkpoints sign seq {made.seq}"):
        audit.checkpoint_file(registry, made.seq)
    head = audit.head(registry)
    assert head.checkpoint is not None and head.checkpoint.checkpoint.name == made.name
