"""Records written before canonical form 2 (hashed over Python's json.dumps, where 1.0 is
``1.0``, not RFC 8785's ``1``) still verify after the upgrade, on SQLite and PostgreSQL:
the audit chain, version metadata digests, check record digests named by a signed
attestation, and an exported bundle; new records are hashed in canonical form, and an
edit of an old record is still caught."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

import modelkeep
from modelkeep.config import Settings
from modelkeep.domain.attestation import record_digests
from modelkeep.domain.canonical import canonical_json, legacy_json
from modelkeep.domain.governance import NewCheckResult
from tests.conftest import CliRunnerInProcess
from tests.e2e.support import assert_error_line, ok, ok_json, ok_json_lines

# where modelkeep computed record digests and audit hashes before canonical form 2
DIGEST_WRITERS = ("audit", "versions", "attestation")
METRICS = {"accuracy": 1.0, "loss": 1e-07}


@contextmanager
def an_older_release(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Writes hashed as modelkeep hashed them before canonical form 2."""
    with monkeypatch.context() as patched:
        for module in DIGEST_WRITERS:
            patched.setattr(f"modelkeep.domain.{module}.canonical_json", legacy_json)
        yield


@pytest.fixture
def old_store(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> modelkeep.Client:
    """fraud@1 pushed with float metrics, checked and promoted (attested) by an older
    release: every digest and hash over a float is in the legacy form."""
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"weights v1\n")
    with an_older_release(monkeypatch), modelkeep.connect(settings=settings) as mk:
        mk.create_model("fraud")
        mk.push("fraud", [weights], metrics=METRICS, params={"epochs": 600.0})
        result = NewCheckResult("evaluation", "evaluation", {"accuracy": 1.0}, passed=True)
        mk.record_check("fraud@1", dataset=None, result=result)
        mk.promote("fraud@1", to="production", reason="release")
    return mk


def test_the_old_records_were_written_in_the_legacy_form(
    settings: Settings, old_store: modelkeep.Client
) -> None:
    """The digests over floats differ between the forms; the audit events themselves
    hold no floats, so the old chain is already canonical."""
    with modelkeep.connect(settings=settings) as mk:
        events = {e.action: e for e in mk.audit_log()}
        version = mk.show("fraud@1")
        check = mk.checks("fraud@1")[0]
    recorded = events["version.push"].details["metadata_digest"]
    assert recorded != version.metadata_digest
    assert recorded == version.metadata_digests[1]
    assert events["check.record"].details["digest"] == record_digests(check.record())[1]
    assert legacy_json(check.record()) != canonical_json(check.record())
    assert all(e.hash == e.compute_hash() for e in events.values())


def test_old_records_still_verify(
    cli: CliRunnerInProcess, old_store: modelkeep.Client, tmp_path: Path
) -> None:
    assert ok_json(cli, "audit", "verify")["ok"] is True
    ok(cli("verify"))
    ok(cli("attest", "verify", "fraud@1", "--stage", "production"))
    pem = tmp_path / "store.pem"
    pem.write_text(ok(cli("audit", "key")).out)
    bundle = tmp_path / "bundle"
    ok(cli("attest", "export", "fraud@1", str(bundle)))
    ok(cli("attest", "verify", "--bundle", str(bundle), "--public-key", str(pem)))
    envelope = json.loads((bundle / "attestation.dsse.json").read_bytes())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    (named,) = statement["predicate"]["checks"]
    record = (bundle / "checks" / f"{named['id']}.json").read_bytes()
    assert b'"accuracy":1.0' in record  # the legacy bytes the attested digest covers
    assert "sha256:" + hashlib.sha256(record).hexdigest() == named["digest"]


def test_new_records_are_canonical_beside_old_ones(
    cli: CliRunnerInProcess, settings: Settings, old_store: modelkeep.Client, tmp_path: Path
) -> None:
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"weights v2\n")
    with modelkeep.connect(settings=settings) as mk:
        mk.push("fraud", [weights], metrics=METRICS)
        result = NewCheckResult("evaluation", "evaluation", {"accuracy": 1.0}, passed=True)
        check = mk.record_check("fraud@2", dataset=None, result=result)
        newest = mk.audit_log()[-2:]
    assert [e.action for e in newest] == ["version.push", "check.record"]
    assert all(e.hash == e.compute_hash() for e in newest)
    record = canonical_json(check.record())
    assert b'"metrics":{"accuracy":1}' in record
    assert check.digest == "sha256:" + hashlib.sha256(record).hexdigest()
    assert ok_json(cli, "audit", "verify")["ok"] is True
    ok(cli("verify"))


def test_an_edit_of_an_old_event_is_still_caught(
    cli: CliRunnerInProcess, settings: Settings, old_store: modelkeep.Client
) -> None:
    push = next(e for e in ok_json_lines(cli, "audit", "log") if e["action"] == "version.push")
    engine = create_engine(settings.database_url)
    try:
        with engine.begin() as conn:
            statement = text("UPDATE audit_events SET actor = 'local:mallory' WHERE seq = :s")
            assert conn.execute(statement, {"s": push["seq"]}).rowcount == 1
    finally:
        engine.dispose()
    result = cli("audit", "verify", "--json")
    assert_error_line(result, "audit_chain_broken", exit_code=3)
    assert json.loads(result.out)["first_bad_seq"] == push["seq"]
