"""Damage is found and named: blobs changed or lost on disk (exit 3), an audit log edited
behind modelkeep's back (exit 3), a store of an unknown format, a file that changes while
it is pushed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import modelkeep
from modelkeep.config import Settings
from modelkeep.errors import FileChanged
from tests.conftest import CliRunnerInProcess, FileMaker
from tests.e2e.conftest import Pusher
from tests.e2e.support import (
    assert_error_line,
    assert_json_error,
    blob_path,
    ok,
    ok_json,
    ok_json_lines,
    one_document,
    overwrite_blob,
    refused,
    sha256,
)


@pytest.fixture
def shared_blob(cli: CliRunnerInProcess, model: str, tmp_path: Path) -> str:
    """``m@1`` = {a.bin, shared.bin}, ``m@2`` = {b.bin, shared.bin}; returns shared's digest."""
    for name, other in (("v1", "a.bin"), ("v2", "b.bin")):
        root = tmp_path / name
        root.mkdir()
        (root / other).write_bytes(f"only in {name}".encode())
        (root / "shared.bin").write_bytes(b"shared weights" * 100)
        ok(cli("push", model, str(root)))
    return sha256(b"shared weights" * 100)


def damage_in_place(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    overwrite_blob(path, bytes(data))


def truncate(path: Path) -> None:
    overwrite_blob(path, path.read_bytes()[:-10])


def delete(path: Path) -> None:
    path.unlink()


DAMAGE: dict[str, tuple[Callable[[Path], None], str]] = {
    "flipped-byte": (damage_in_place, "digest_mismatch"),
    "truncated": (truncate, "digest_mismatch"),
    "deleted": (delete, "blob_not_found"),
}


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_pull_of_a_damaged_blob_exits_3_and_writes_nothing(
    cli: CliRunnerInProcess, shared_blob: str, store: Path, tmp_path: Path, kind: str
) -> None:
    harm, code = DAMAGE[kind]
    harm(blob_path(store, shared_blob))
    dest = tmp_path / "dest"
    result = cli("pull", "m@1", str(dest))
    line = assert_error_line(result, code, exit_code=3)
    assert "shared.bin" in line
    assert "m@1" in line
    assert not (dest / "shared.bin").exists()
    assert not (dest / "a.bin").exists()  # staged, verified, then moved: all or nothing
    assert not dest.exists() or list(dest.iterdir()) == []
    assert_json_error(cli("--json", "pull", "m@2", str(dest)), code, exit_code=3)
    assert not (dest / "shared.bin").exists()


@pytest.mark.parametrize("kind", sorted(DAMAGE))
def test_verify_names_the_damaged_blob_and_every_version_it_breaks(
    cli: CliRunnerInProcess, shared_blob: str, store: Path, kind: str
) -> None:
    harm, _ = DAMAGE[kind]
    harm(blob_path(store, shared_blob))

    result = cli("verify", "--all", "--json")
    line = assert_error_line(result, "digest_mismatch", exit_code=3)
    assert "m@1" in line
    assert "m@2" in line
    report = one_document(result)
    assert report["ok"] is False
    assert [(d["digest"], sorted(d["versions"])) for d in report["damaged"]] == [
        (shared_blob, ["m@1", "m@2"])
    ]
    assert report["broken_versions"] == ["m@1", "m@2"]
    if kind == "deleted":
        assert report["damaged"][0]["problem"] == "missing"

    human = cli("verify")
    assert_error_line(human, "digest_mismatch", exit_code=3)
    assert shared_blob in human.out
    one = cli("verify", "m@2", "--json")
    assert_error_line(one, "digest_mismatch", exit_code=3)
    assert one_document(one)["broken_versions"] == ["m@2"]


def test_a_damaged_blob_breaks_only_its_own_versions(
    cli: CliRunnerInProcess, shared_blob: str, store: Path, tmp_path: Path
) -> None:
    only_v1 = sha256(b"only in v1")
    damage_in_place(blob_path(store, only_v1))
    report = one_document(cli("verify", "--all", "--json"))
    assert [d["digest"] for d in report["damaged"]] == [only_v1]
    assert report["broken_versions"] == ["m@1"]
    assert ok_json(cli, "verify", "m@2")["ok"] is True
    ok(cli("pull", "m@2", str(tmp_path / "fine")))
    assert (tmp_path / "fine" / "shared.bin").read_bytes() == b"shared weights" * 100


def test_verify_finds_a_damaged_manifest(
    cli: CliRunnerInProcess, model: str, push: Pusher, store: Path
) -> None:
    version = push(model, b"weights")
    digest = str(version["digest"])
    damage_in_place(blob_path(store, digest))
    result = cli("--json", "verify")
    assert_error_line(result, "digest_mismatch", exit_code=3)
    report = one_document(result)
    assert [d["digest"] for d in report["damaged"]] == [digest]
    assert report["broken_versions"] == ["m@1"]


@pytest.mark.parametrize(
    "statement",
    [
        pytest.param("UPDATE versions SET message = 'rewritten' WHERE number = 1", id="message"),
        pytest.param("UPDATE versions SET semver = '9.9.9' WHERE number = 1", id="semver"),
        pytest.param(
            """UPDATE versions SET metadata = '{"params": {"lr": 0.5}}' WHERE number = 1""",
            id="metadata",
        ),
        pytest.param(
            "UPDATE version_files SET size = size + 1 WHERE version_id = "
            "(SELECT id FROM versions WHERE number = 1)",
            id="file-size",
        ),
    ],
)
def test_verify_finds_a_version_row_edited_behind_its_back(
    cli: CliRunnerInProcess, model: str, push: Pusher, settings: Settings, statement: str
) -> None:
    push(model, b"one", "--param", "lr=0.1", "--message", "first", "--version", "1.0.0")
    push(model, b"two")
    assert ok_json(cli, "verify", "--all")["ok"] is True
    tamper(settings, statement)
    result = cli("verify", "--all", "--json")
    line = assert_error_line(result, "digest_mismatch", exit_code=3)
    assert "m@1" in line
    report = one_document(result)
    assert (report["inconsistent_versions"], report["broken_versions"]) == (["m@1"], ["m@1"])
    assert_error_line(cli("verify", "m@1"), "digest_mismatch", exit_code=3)
    assert ok_json(cli, "verify", "m@2")["ok"] is True


# the audit chain ----------------------------------------------------------------------


@pytest.fixture
def audited(cli: CliRunnerInProcess, model: str, push: Pusher) -> int:
    """A store with a few audited changes; returns how many events it holds."""
    push(model, b"one")
    push(model, b"two")
    ok(cli("alias", "set", "m@1", "champion"))
    ok(cli("promote", "m@2", "--to", "staging"))
    events = ok_json_lines(cli, "audit", "log")
    assert ok_json(cli, "audit", "verify")["ok"] is True
    return len(events)


def tamper(settings: Settings, statement: str) -> None:
    engine = create_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            assert conn.execute(text(statement)).rowcount == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("statement", "bad_seq"),
    [
        pytest.param("UPDATE audit_events SET actor = 'local:mallory' WHERE seq = 3", 3, id="edit"),
        pytest.param("UPDATE audit_events SET subject = 'm@9' WHERE seq = 2", 2, id="edit-subject"),
        pytest.param("DELETE FROM audit_events WHERE seq = 2", 2, id="delete-middle"),
        pytest.param("DELETE FROM audit_events WHERE seq = 5", 5, id="delete-newest"),
    ],
)
def test_audit_verify_names_the_first_bad_seq(
    cli: CliRunnerInProcess, settings: Settings, audited: int, statement: str, bad_seq: int
) -> None:
    assert audited == 5
    tamper(settings, statement)
    result = cli("audit", "verify", "--json")
    line = assert_error_line(result, "audit_chain_broken", exit_code=3)
    assert f"seq {bad_seq}" in line
    report = one_document(result)
    assert (report["ok"], report["first_bad_seq"]) == (False, bad_seq)
    human = cli("audit", "verify")
    assert_error_line(human, "audit_chain_broken", exit_code=3)
    assert f"seq {bad_seq}" in human.out


def test_audit_verify_catches_an_edit_of_the_details(
    cli: CliRunnerInProcess, settings: Settings, audited: int
) -> None:
    engine = create_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            row = conn.execute(text("SELECT details FROM audit_events WHERE seq = 4")).one()
            details = row.details if isinstance(row.details, dict) else json.loads(row.details)
            details["reason"] = "approved by nobody"
            conn.execute(
                text("UPDATE audit_events SET details = :d WHERE seq = 4"),
                {"d": json.dumps(details)},
            )
    finally:
        engine.dispose()
    result = cli("--json", "audit", "verify")
    assert_error_line(result, "audit_chain_broken", exit_code=3)
    assert one_document(result)["first_bad_seq"] == 4


def test_audit_verify_catches_a_truncation_below_a_checkpoint(
    cli: CliRunnerInProcess, settings: Settings, audited: int, store: Path
) -> None:
    made = ok_json(cli, "audit", "checkpoint")
    assert (made["seq"], made["name"]) == (5, f"checkpoints/{5:020d}-{made['hash'][:12]}.json")
    assert (store / made["name"]).is_file()
    assert "checkpoints/" in ok(cli("audit", "verify")).out
    pem = ok(cli("audit", "key")).out
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert len(ok(cli("audit", "key", "--hex")).out.strip()) == 64
    events = ok_json_lines(cli, "audit", "log")
    engine = create_engine(settings.database_url)
    try:
        with engine.begin() as conn:  # the newest events, and the head with them
            conn.execute(text("DELETE FROM audit_events WHERE seq > 3"))
            conn.execute(text("UPDATE audit_head SET seq = 3, hash = :h"), {"h": events[2]["hash"]})
    finally:
        engine.dispose()
    result = cli("audit", "verify", "--json")
    line = assert_error_line(result, "audit_chain_broken", exit_code=3)
    assert "seq 4" in line
    report = one_document(result)
    assert (report["first_bad_seq"], report["checkpoint"]) == (4, made["name"])
    human = cli("audit", "verify")
    assert f"found by checkpoint {made['name']}" in human.out


# the store itself ---------------------------------------------------------------------


def test_a_store_of_an_unknown_format_is_refused(
    cli: CliRunnerInProcess, model: str, push: Pusher, store: Path, files: FileMaker
) -> None:
    push(model, b"one")
    (store / "modelkeep-store.json").write_text(json.dumps({"format": 99, "store_id": "x"}))
    for args in (
        ("models", "list"),
        ("show", "m@1"),
        ("push", "m", str(files.make())),
        ("verify", "--all"),
        ("gc",),
    ):
        line = refused(cli, *args, code="unknown_store_format")
        assert "99" in line


def test_a_garbled_format_file_is_refused(cli: CliRunnerInProcess, store: Path) -> None:
    store.mkdir(parents=True)
    (store / "modelkeep-store.json").write_text("not json")
    refused(cli, "models", "list", code="unknown_store_format")


# a file that changes while it is pushed -----------------------------------------------


@pytest.mark.transport  # a streamed upload whose file grows mid-body
@pytest.mark.parametrize("size", [100, 9 * 1024 * 1024], ids=["small", "several-buffers"])
def test_a_file_that_changes_during_push_is_refused(
    mk: modelkeep.Client, files: FileMaker, size: int
) -> None:
    mk.create_model("m")
    path = files.make("growing.bin", b"x" * size)
    calls: list[int] = []

    def append_once(n: int) -> None:
        if not calls:
            with open(path, "ab") as out:
                out.write(b"more bytes")
        calls.append(n)

    with pytest.raises(FileChanged) as raised:
        mk.push("m", [path], progress=append_once)
    assert raised.value.code == "file_changed"
    assert raised.value.exit_code == 1
    assert "growing.bin" in raised.value.message
    assert calls
    assert mk.versions("m") == []
    assert [e.action for e in mk.audit_log(model="m")] == ["model.create"]
    # once the file is stable it pushes fine
    assert mk.push("m", [path]).number == 1


# what an outside verifier reads: the head and the checkpoint files ---------------------


def test_audit_head_and_checkpoint_files_for_an_outside_verifier(
    cli: CliRunnerInProcess, store: Path, audited: int, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    head = ok_json(cli, "audit", "head")
    newest = ok_json_lines(cli, "audit", "log")[-1]
    assert (head["seq"], head["hash"], head["checkpoint"]) == (audited, newest["hash"], None)
    assert "no signed checkpoint yet" in ok(cli("audit", "head")).out
    ok(cli("audit", "checkpoint"))
    ok(cli("models", "create", "later"))
    head = ok_json(cli, "audit", "head")
    assert head["seq"] == audited + 2  # the checkpoint's own event, then the model
    signed = head["checkpoint"]
    assert (signed["seq"], signed["hash"]) == (audited, newest["hash"])
    # the signature, checked with the store's key and canonical JSON rebuilt from the docs
    body = {k: signed[k] for k in ("format", "store_id", "seq", "hash", "at")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    key = load_pem_public_key(ok(cli("audit", "key")).out.encode())
    key.verify(bytes.fromhex(signed["signature"]), canonical.encode())  # type: ignore[union-attr]

    out = tmp_path / "saved"
    listed = ok_json(cli, "audit", "checkpoints", "--out", str(out))
    assert listed["items"] == [{"seq": audited, "name": signed["name"]}]
    stored = store / signed["name"]
    assert (out / stored.name).read_bytes() == stored.read_bytes()
    (out / stored.name).write_bytes(b"{}")
    refused(cli, "audit", "checkpoints", "--out", str(out), code="destination_conflict")
    assert (out / stored.name).read_bytes() == b"{}"  # nothing was overwritten
