"""Serving bundles, OCI layouts and OpenSSF signatures through the CLI and the SDK, on
SQLite and PostgreSQL (docs/serving.md, "Bundles")."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
import time
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import modelkeep
from modelkeep.attest.serving import PAYLOAD_TYPE, sign_manifest
from modelkeep.config import Settings
from modelkeep.domain.attestation import key_id
from tests.clock import FakeClock
from tests.conftest import CliRunnerInProcess
from tests.e2e.support import assert_error_line, ok, ok_json, ok_json_lines, refused, sha256

FILES = {
    "model.onnx": b"onnx graph bytes",
    "weights/layer0.bin": b"\x00\x01\x02" * 1000,
    "weights/layer1.bin": b"other weights",
    "README.md": "ünïcode notes\n".encode(),
}


def push_tree(cli: CliRunnerInProcess, root: Path, files: dict[str, bytes] = FILES) -> str:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    ok(cli("models", "create", "fraud"))
    return str(ok_json(cli, "push", "fraud", str(root))["digest"])


def build(cli: CliRunnerInProcess, out: Path, ref: str = "fraud@1") -> dict[str, object]:
    document = ok_json(cli, "bundle", "build", ref, "-o", str(out))
    assert isinstance(document, dict)
    return document


def store_key(cli: CliRunnerInProcess, where: Path) -> Path:
    where.write_text(ok(cli("audit", "key")).out)
    return where


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:gz") as tar:
        found = {}
        for info in tar:
            handle = tar.extractfile(info)
            assert handle is not None
            found[info.name] = handle.read()
        return found


def rewrite(archive: Path, changed: dict[str, bytes | None]) -> None:
    """The archive with some members replaced (bytes), dropped (None) or added."""
    kept = {**members(archive), **{k: v for k, v in changed.items() if v is not None}}
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in sorted(kept.items()):
            if name in changed and changed[name] is None:
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive.write_bytes(out.getvalue())


# determinism ----------------------------------------------------------------------------


def test_two_builds_in_other_folders_and_times_are_the_same_bytes(
    clock: FakeClock,
    cli: CliRunnerInProcess,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    version_digest = push_tree(cli, tmp_path / "model")
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "deeper").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a")
    first = build(cli, Path("fraud.tar.gz"))
    clock.advance(timedelta(days=3))
    later = time.time() + 3 * 86400  # gzip and tar must not read the wall clock either
    monkeypatch.setattr(time, "time", lambda: later)
    monkeypatch.chdir(tmp_path / "b" / "deeper")
    second = build(cli, tmp_path / "b" / "other-name.tgz")

    one = (tmp_path / "a" / "fraud.tar.gz").read_bytes()
    two = (tmp_path / "b" / "other-name.tgz").read_bytes()
    assert one == two
    # another process, in another time zone, with another umask and folder
    env = {**os.environ, "TZ": "Asia/Kathmandu", "LC_ALL": "C"}
    command = [sys.executable, "-m", "modelkeep", "bundle", "build", "fraud@1", "-o", "c.tgz"]
    subprocess.run(
        ["sh", "-c", 'umask 077 && exec "$@"', "sh", *command],
        cwd=tmp_path / "b",
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert (tmp_path / "b" / "c.tgz").read_bytes() == one
    assert first["digest"] == second["digest"] == sha256(one)
    assert first["version_digest"] == version_digest
    assert first["size"] == len(one)
    # gzip: no mtime, no file name
    assert one[4:8] == b"\0\0\0\0" and not one[3] & 0x08
    with tarfile.open(tmp_path / "a" / "fraud.tar.gz", "r:gz") as tar:
        infos = tar.getmembers()
    names = [i.name for i in infos]
    assert names == sorted(names)
    assert {f"files/{p}" for p in FILES} <= set(names)
    assert {"manifest.json", "serving.json", "runtime.lock.json", "bundle.json"} <= set(names)
    for info in infos:
        assert info.isreg() and info.mtime == 0 and info.mode == 0o644, info.name
        assert (info.uid, info.gid, info.uname, info.gname) == (0, 0, "", ""), info.name


def test_the_bundle_holds_the_files_manifest_config_lock_and_signature(
    cli: CliRunnerInProcess, tmp_path: Path
) -> None:
    version_digest = push_tree(cli, tmp_path / "model")
    build(cli, tmp_path / "b.tgz")
    found = members(tmp_path / "b.tgz")
    for path, content in FILES.items():
        assert found[f"files/{path}"] == content
    assert sha256(found["manifest.json"]) == version_digest
    config = json.loads(found["serving.json"])
    assert config["model"] == "fraud" and config["number"] == 1
    assert config["digest"] == version_digest and config["model_format"] == "onnx"
    lock = json.loads(found["runtime.lock.json"])
    numpy = [p for p in lock["packages"] if p["name"] == "numpy"]
    assert numpy and len(numpy[0]["record_sha256"]) == 64
    listing = json.loads(found["bundle.json"])
    assert listing["version_digest"] == version_digest
    listed = {e["path"]: e for e in listing["entries"]}
    assert set(listed) == set(found) - {"bundle.json", "bundle.dsse.json", "public_key.pem"}
    for name, entry in listed.items():
        assert entry["sha256"] == sha256(found[name]) and entry["size"] == len(found[name])
    envelope = json.loads(found["bundle.dsse.json"])
    assert envelope["payloadType"] == PAYLOAD_TYPE


# verify ---------------------------------------------------------------------------------


def test_verify_needs_a_trusted_key(cli: CliRunnerInProcess, tmp_path: Path) -> None:
    push_tree(cli, tmp_path / "model")
    built = build(cli, tmp_path / "b.tgz")
    key = store_key(cli, tmp_path / "store.pem")

    report = ok_json(cli, "bundle", "verify", str(tmp_path / "b.tgz"), "--public-key", str(key))
    assert report["ok"] and report["digest"] == built["digest"]
    assert report["key"].startswith("the key you passed, sha256:")
    online = ok_json(cli, "bundle", "verify", str(tmp_path / "b.tgz"), "--store-key")
    assert online["key"].startswith("the store's key ('audit key')")

    untrusted = cli("bundle", "verify", str(tmp_path / "b.tgz"))
    line = assert_error_line(untrusted, "bundle_invalid", exit_code=3)
    assert "no trusted key" in line and "--public-key" in line
    assert "bundle NOT verified" in untrusted.out


@pytest.mark.parametrize(
    "tamper",
    [
        "file bytes",
        "extra member",
        "missing member",
        "manifest",
        "resigned",
        "gzip byte",
        "gzip crc",
    ],
)
def test_a_tampered_bundle_is_refused(cli: CliRunnerInProcess, tmp_path: Path, tamper: str) -> None:
    push_tree(cli, tmp_path / "model")
    archive = tmp_path / "b.tgz"
    build(cli, archive)
    key = store_key(cli, tmp_path / "store.pem")
    found = members(archive)
    expected = {
        "file bytes": "files/model.onnx",
        "extra member": "files/evil.py",
        "missing member": "files/weights/layer1.bin",
        "manifest": "manifest.json",
        "resigned": "signature does not verify",
        "gzip byte": "",  # whichever member the flipped byte lands in, or the gzip stream
        "gzip crc": "not a readable tar archive",  # every member intact, the trailer not
    }[tamper]
    if tamper == "file bytes":
        rewrite(archive, {"files/model.onnx": b"onnx graph byteZ"})
    elif tamper == "extra member":
        rewrite(archive, {"files/evil.py": b"import os"})
    elif tamper == "missing member":
        rewrite(archive, {"files/weights/layer1.bin": None})
    elif tamper == "manifest":
        rewrite(archive, {"manifest.json": found["manifest.json"].replace(b"model", b"mode1")})
    elif tamper == "resigned":  # whoever changes a file and signs again with their own key
        other = Ed25519PrivateKey.generate()
        raw = other.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        listing = json.loads(found["bundle.json"])
        for entry in listing["entries"]:
            if entry["path"] == "files/model.onnx":
                entry["sha256"] = sha256(b"evil")
                entry["size"] = 4
        document = json.dumps(listing).encode()
        rewrite(
            archive,
            {
                "files/model.onnx": b"evil",
                "bundle.json": document,
                "bundle.dsse.json": sign_manifest(document, other.sign, key_id(raw)),
            },
        )
    else:
        data = bytearray(archive.read_bytes())
        data[-8 if tamper == "gzip crc" else len(data) // 2] ^= 0xFF
        archive.write_bytes(bytes(data))

    result = cli("bundle", "verify", str(archive), "--public-key", str(key))
    line = assert_error_line(result, "bundle_invalid", exit_code=3)
    assert expected in line or expected in result.out, result


def test_verify_refuses_links_and_paths_outside(cli: CliRunnerInProcess, tmp_path: Path) -> None:
    archive = tmp_path / "evil.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("../outside")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    result = cli("bundle", "verify", str(archive))
    assert "outside the archive" in assert_error_line(result, "bundle_invalid", exit_code=3)
    assert not (tmp_path.parent / "outside").exists()


# recorded on the version -------------------------------------------------------------------


def test_the_bundle_digest_is_audited_once_and_in_lineage(
    cli: CliRunnerInProcess, tmp_path: Path
) -> None:
    push_tree(cli, tmp_path / "model")
    built = build(cli, tmp_path / "one.tgz")
    build(cli, tmp_path / "two.tgz")  # the same bytes: nothing new to record
    events = [e for e in ok_json_lines(cli, "audit", "log") if e["action"] == "version.bundle"]
    assert len(events) == 1
    assert events[0]["subject"] == "fraud@1"
    assert events[0]["details"]["digest"] == built["digest"]
    assert events[0]["details"]["version_digest"] == built["version_digest"]
    ok(cli("audit", "verify"))
    graph = ok_json(cli, "lineage", "fraud@1")
    node = f"bundle:{built['digest']}"
    assert {"id": node, "kind": "bundle"} in graph["nodes"]
    assert {"from": "model:fraud@1", "to": node} in graph["edges"]


def test_build_refuses_bad_input_and_writes_nothing(
    cli: CliRunnerInProcess, tmp_path: Path
) -> None:
    push_tree(cli, tmp_path / "model")
    missing = str(tmp_path / "x.tgz")
    refused(cli, "bundle", "build", "fraud@9", "-o", missing, code="version_not_found")
    assert not (tmp_path / "x.tgz").exists()
    existing = tmp_path / "existing.tgz"
    existing.write_bytes(b"keep me")
    refused(cli, "bundle", "build", "fraud@1", "-o", str(existing), code="destination_conflict")
    assert existing.read_bytes() == b"keep me"
    ok(cli("bundle", "build", "fraud@1", "-o", str(existing), "--force"))
    assert existing.read_bytes() != b"keep me"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


# OCI -------------------------------------------------------------------------------------


def test_export_oci_writes_a_valid_image_layout(cli: CliRunnerInProcess, tmp_path: Path) -> None:
    version_digest = push_tree(cli, tmp_path / "model")
    layout = tmp_path / "oci"
    done = ok_json(cli, "bundle", "export-oci", "fraud@1", str(layout))
    blobs = layout / "blobs" / "sha256"

    def blob(descriptor: dict[str, object]) -> bytes:
        digest = str(descriptor["digest"])
        assert digest.startswith("sha256:")
        data = (blobs / digest.removeprefix("sha256:")).read_bytes()
        assert sha256(data) == digest and len(data) == descriptor["size"]  # spec: both hold
        return data

    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    assert index["schemaVersion"] == 2
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    [descriptor] = index["manifests"]
    assert descriptor["digest"] == done["manifest_digest"]
    assert descriptor["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    manifest = json.loads(blob(descriptor))
    assert manifest["schemaVersion"] == 2
    assert manifest["mediaType"] == descriptor["mediaType"]
    assert manifest["artifactType"] == "application/vnd.modelkeep.model.v1"
    config = json.loads(blob(manifest["config"]))
    assert config["digest"] == version_digest and config["model"] == "fraud"
    titles = {}
    for layer in manifest["layers"]:
        titles[layer["annotations"]["org.opencontainers.image.title"]] = blob(layer)
    assert titles == FILES
    referenced = {manifest["config"]["digest"], descriptor["digest"]}
    referenced |= {layer["digest"] for layer in manifest["layers"]}
    assert {f"sha256:{p.name}" for p in blobs.iterdir()} == referenced  # nothing else

    again = tmp_path / "again"
    assert ok_json(cli, "bundle", "export-oci", "fraud@1", str(again)) == {
        "path": str(again),
        "manifest_digest": done["manifest_digest"],
    }
    refused(cli, "bundle", "export-oci", "fraud@1", str(layout), code="destination_conflict")


# OpenSSF model signing ---------------------------------------------------------------------


def model_signing_python() -> Path | None:
    """The venv with OpenSSF's model-signing (``make test`` makes it: Makefile, .venv-ms)."""
    named = os.environ.get("MODELKEEP_MODEL_SIGNING_PYTHON")
    candidates = [Path(named)] if named else []
    candidates.append(Path(__file__).parents[2] / ".venv-ms" / "bin" / "python")
    return next((c for c in candidates if c.is_file()), None)


def model_signing_verify(python: Path, folder: Path, signature: Path, key: Path) -> int:
    command = [
        str(python),
        "-m",
        "model_signing",
        "verify",
        "key",
        str(folder),
        "--signature",
        str(signature),
        "--public_key",
        str(key),
    ]
    return subprocess.run(command, capture_output=True, timeout=120, check=False).returncode


def test_sign_is_checked_by_the_real_model_signing(cli: CliRunnerInProcess, tmp_path: Path) -> None:
    python = model_signing_python()
    if python is None:
        pytest.skip(
            "OpenSSF model-signing is not installed: run 'make test' (it makes .venv-ms), "
            "or set MODELKEEP_MODEL_SIGNING_PYTHON to a python with model-signing"
        )
    push_tree(cli, tmp_path / "model")
    signature = tmp_path / "model.sig"
    ok(cli("sign", "fraud@1", "-o", str(signature)))
    key = tmp_path / "openssf.pem"
    key.write_text(ok(cli("audit", "key", "--format", "openssf")).out)
    assert "BEGIN PUBLIC KEY" in key.read_text()
    pulled = tmp_path / "pulled"
    ok(cli("pull", "fraud@1", str(pulled)))
    assert model_signing_verify(python, pulled, signature, key) == 0

    (pulled / "weights" / "layer1.bin").write_bytes(b"other weightz")
    assert model_signing_verify(python, pulled, signature, key) != 0
    ed25519 = store_key(cli, tmp_path / "audit.pem")  # the audit key is not the one
    (pulled / "weights" / "layer1.bin").write_bytes(FILES["weights/layer1.bin"])
    assert model_signing_verify(python, pulled, signature, ed25519) != 0


def test_the_openssf_key_is_a_p256_key_kept_beside_the_audit_key(
    cli: CliRunnerInProcess, tmp_path: Path, store: Path
) -> None:
    push_tree(cli, tmp_path / "model")
    pem = ok(cli("audit", "key", "--format", "openssf")).out
    assert pem == ok(cli("audit", "key", "--format", "openssf")).out  # made once
    key = serialization.load_pem_public_key(pem.encode())
    assert getattr(key, "curve").name == "secp256r1"  # noqa: B009
    private = store / "keys" / "openssf-p256.pem"
    assert private.stat().st_mode & 0o777 == 0o600
    assert ok_json(cli, "audit", "key", "--format", "openssf") == {"format": "openssf", "pem": pem}
    assert_error_line(cli("audit", "key", "--format", "openssf", "--hex"), "usage", exit_code=2)


# the SDK over every transport ---------------------------------------------------------------


@pytest.mark.transport  # the bundle is streamed: over a real socket too
def test_sdk_builds_verifies_exports_and_signs(mk: modelkeep.Client, tmp_path: Path) -> None:
    root = tmp_path / "model"
    for relative, content in FILES.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(content)
    mk.create_model("fraud")
    version = mk.push("fraud", [str(root)])
    built = mk.build_bundle("fraud@1", tmp_path / "b.tgz")
    data = (tmp_path / "b.tgz").read_bytes()
    assert built.digest == sha256(data) and built.version_digest == version.digest
    report = mk.verify_bundle(tmp_path / "b.tgz")
    assert report.ok and report.digest == built.digest, report.problems
    again = mk.build_bundle("fraud@1", tmp_path / "c.tgz")
    assert again == built and (tmp_path / "c.tgz").read_bytes() == data
    assert mk.export_oci("fraud@1", tmp_path / "oci").startswith("sha256:")
    signature = json.loads(mk.sign("fraud@1", tmp_path / "s.json").read_bytes())
    assert signature["mediaType"] == "application/vnd.dev.sigstore.bundle.v0.3+json"
    assert "BEGIN PUBLIC KEY" in mk.openssf_key()
    graph = mk.lineage("fraud@1")
    assert f"bundle:{built.digest}" in graph.nodes


def test_verify_refuses_what_is_not_a_bundle_without_holding_it(
    cli: CliRunnerInProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not an archive")
    line = assert_error_line(cli("bundle", "verify", str(text)), "bundle_invalid", exit_code=3)
    assert "not a readable tar archive" in line
    missing = refused(cli, "bundle", "verify", str(tmp_path / "nope.tgz"), code="invalid_input")
    assert "nope.tgz does not exist" in missing

    push_tree(cli, tmp_path / "model")
    build(cli, tmp_path / "b.tgz")
    monkeypatch.setattr("modelkeep.attest.serving.MAX_KEPT", 100)  # the envelope is larger
    result = cli("bundle", "verify", str(tmp_path / "b.tgz"))
    assert "bundle.dsse.json is " in assert_error_line(result, "bundle_invalid", exit_code=3)


@pytest.mark.backends("sqlite")
def test_a_chunked_file_is_bundled_and_exported_whole(
    cli: CliRunnerInProcess, tmp_path: Path
) -> None:
    import random

    from modelkeep.content import chunking

    big = random.Random(7).randbytes(chunking.WHOLE_BELOW + 1024 * 1024)  # stored in chunks
    push_tree(cli, tmp_path / "model", {"big.bin": big, "small.txt": b"small"})
    build(cli, tmp_path / "b.tgz")
    key = store_key(cli, tmp_path / "store.pem")
    ok(cli("bundle", "verify", str(tmp_path / "b.tgz"), "--public-key", str(key)))
    assert members(tmp_path / "b.tgz")["files/big.bin"] == big
    ok(cli("bundle", "export-oci", "fraud@1", str(tmp_path / "oci")))
    assert (tmp_path / "oci" / "blobs" / "sha256" / sha256(big)[7:]).read_bytes() == big


def test_a_changed_file_row_is_neither_bundled_nor_signed(
    cli: CliRunnerInProcess, tmp_path: Path, settings: Settings
) -> None:
    from sqlalchemy import create_engine, text

    push_tree(cli, tmp_path / "model")
    other = b"other bytes, pushed too"
    ok(cli("push", "fraud", str(tmp_path / "model" / "model.onnx")))  # fraud@2
    (tmp_path / "evil.onnx").write_bytes(other)
    ok(cli("push", "fraud", str(tmp_path / "evil.onnx")))  # fraud@3: its bytes are stored
    engine = create_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            changed = conn.execute(
                text(
                    f"UPDATE version_files SET digest = '{sha256(other)}', size = {len(other)} "
                    "WHERE path = 'model.onnx' AND version_id = "
                    "(SELECT id FROM versions WHERE number = 1)"
                )
            )
            assert changed.rowcount == 1
    finally:
        engine.dispose()
    out = tmp_path / "b.tgz"
    refused(cli, "bundle", "build", "fraud@1", "-o", str(out), code="record_tampered", exit_code=3)
    assert not out.exists()
    signature = tmp_path / "s.json"
    refused(cli, "sign", "fraud@1", "-o", str(signature), code="record_tampered", exit_code=3)
    assert not signature.exists()
    ok(cli("bundle", "build", "fraud@2", "-o", str(out)))


def test_build_names_the_file_after_the_version_by_default(
    cli: CliRunnerInProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_tree(cli, tmp_path / "model")
    ok(cli("promote", "fraud@1", "--to", "staging"))
    monkeypatch.chdir(tmp_path)
    built = ok_json(cli, "bundle", "build", "fraud@staging")
    assert built["path"] == "fraud-1.bundle.tar.gz"
    assert sha256((tmp_path / "fraud-1.bundle.tar.gz").read_bytes()) == built["digest"]
    config = json.loads(members(tmp_path / "fraud-1.bundle.tar.gz")["serving.json"])
    assert [a["stage"] for a in config["attestations"]] == ["staging"]
