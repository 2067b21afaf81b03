"""The documentation in docs/ is checked against the code, so it stays true.

- docs/cli.md is exactly what the CLI reference generator prints (``make docs``);
- every setting, every error class, every link and anchor is documented or resolves;
- the worked examples in docs/design.md (manifest digest, audit hash, the stand-alone
  audit verifier) compute what they claim;
- every ``modelkeep ...`` command shown in the docs (and the README) parses against the
  real click tree;
- the CLI session and the SDK example of docs/getting-started.md run and print what the
  page shows (times and the user name aside);
- the pages that show a walk-through (tracking.md, governance.md) are scripts: their
  shell and Python blocks run top to bottom on a fresh embedded store (ci.md, which
  needs a server, runs in tests/governance/test_ci_workflow.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import pytest
from hypothesis import given, settings

import modelkeep
from modelkeep.config import SETTINGS, Setting, Settings
from modelkeep.domain.attestation import public_key_from_pem
from modelkeep.domain.audit import GENESIS, AuditEvent, PublicKey, chain
from modelkeep.domain.canonical import canonical_json, legacy_json
from modelkeep.domain.events import EventKind
from modelkeep.domain.manifest import FileEntry, Manifest
from modelkeep.entrypoints.cli import cli, main
from modelkeep.entrypoints.cli.reference import command_paths, render
from modelkeep.errors import ModelkeepError, all_error_classes
from tests.unit.test_canonical_json import json_values

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SHELL_LANGS = {"console", "sh", "shell", "bash"}


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    marker: str | None  # the ``<!-- marker -->`` comment right before the block, if any


def read(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def blocks(text: str) -> list[Block]:
    """Fenced code blocks, with the HTML comment marker on the line before each."""
    found: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = re.fullmatch(r"```(\w*)", lines[i])
        if fence is None:
            i += 1
            continue
        end = lines.index("```", i + 1)
        previous = lines[i - 1] if i else ""
        marker = re.fullmatch(r"<!-- ([\w-]+) -->", previous)
        found.append(
            Block(fence.group(1), "\n".join(lines[i + 1 : end]), marker and marker.group(1))
        )
        i = end + 1
    return found


def marked(text: str, marker: str) -> str:
    matches = [b.body for b in blocks(text) if b.marker == marker]
    assert len(matches) == 1, f"expected one block marked <!-- {marker} -->"
    return matches[0]


# (a) the CLI reference ------------------------------------------------------------------


def test_cli_reference_is_generated_from_the_cli() -> None:
    assert read("cli.md") == render(cli), (
        "docs/cli.md is out of date with the CLI: run `make docs` and commit the result"
    )


# (b) settings ---------------------------------------------------------------------------


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.env_var)
def test_every_setting_has_a_section(setting: Setting) -> None:
    headings = set(re.findall(r"^## (MODELKEEP_\w+)$", read("configuration.md"), re.M))
    assert setting.env_var in headings, (
        f"add a '## {setting.env_var}' section to docs/configuration.md"
    )


def test_configuration_documents_no_unknown_setting() -> None:
    headings = set(re.findall(r"^## (MODELKEEP_\w+)$", read("configuration.md"), re.M))
    assert headings <= {s.env_var for s in SETTINGS}


def test_documented_defaults_match_the_code() -> None:
    text = read("configuration.md")
    for setting in SETTINGS:
        section = text.split(f"## {setting.env_var}\n", 1)[1].split("\n## ", 1)[0]
        if setting.default != "":
            assert f"Default: `{setting.default}`" in section, setting.env_var
        assert getattr(Settings(), setting.name) == setting.default


# (c) errors -----------------------------------------------------------------------------


def error_table() -> dict[str, tuple[int, str, str]]:
    """code -> (exit code, class name, default hint), from the table in docs/errors.md."""
    rows: dict[str, tuple[int, str, str]] = {}
    for line in read("errors.md").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if len(cells) == 5 and re.fullmatch(r"`\w+`", cells[0]):
            assert cells[0][1:-1] not in rows, f"{cells[0]} is documented twice"
            rows[cells[0][1:-1]] = (int(cells[1]), cells[2].strip("`"), cells[4])
    return rows


@pytest.mark.parametrize("error", all_error_classes(), ids=lambda c: c.code)
def test_every_error_is_documented_with_its_exit_code(error: type[ModelkeepError]) -> None:
    rows = error_table()
    assert error.code in rows, f"add `{error.code}` to the table in docs/errors.md"
    assert rows[error.code] == (error.exit_code, error.__name__, error.default_hint), (
        f"the row of `{error.code}` in docs/errors.md disagrees with modelkeep.errors"
    )


def test_errors_documents_no_unknown_code() -> None:
    assert set(error_table()) == {c.code for c in all_error_classes()}


# (d) worked examples of docs/design.md ------------------------------------------------------


def test_the_audit_table_lists_every_event_kind_and_no_other() -> None:
    section = read("design.md").split("## Audit chain", 1)[1].split("\n## ", 1)[0]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    documented = {name for row in rows for name in re.findall(r"`([a-z]+\.[a-z]+)`", row)}
    assert documented == {kind.value for kind in EventKind}


def documented_details() -> list[tuple[set[str], set[str]]]:
    """(actions, top-level detail keys) of each row of the audit table: backticked names
    in the details column, outside parentheses (which describe the key before them)."""
    section = read("design.md").split("## Audit chain", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        actions, _subject, details = line.strip("|").split(" | ")[:3]
        kinds = set(re.findall(r"`([a-z]+\.[a-z]+)`", actions))
        if not kinds:
            continue  # another table of the section (the HTTP endpoints)
        unlinked = re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", details)
        top_level = re.sub(r"\([^)]*\)", "", unlinked)
        rows.append((kinds, set(re.findall(r"`([a-z_]+)`", top_level))))
    return rows


def an_audited_session(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> list[Any]:
    """A store taken through every kind of change the embedded store can make."""
    from modelkeep.domain.governance import NewCheckResult

    def run(*args: str) -> str:
        code, out = run_cli(list(args), capsys)
        assert code == 0, (args, out)
        return out

    for n in range(1, 6):
        (tmp_path / f"w{n}.bin").write_bytes(f"weights {n}\n".encode())
    (tmp_path / "data.csv").write_text("x,label\n1,0\n2,1\n")
    run("models", "create", "fraud")
    for n in (1, 2, 3):
        run("push", "fraud", str(tmp_path / f"w{n}.bin"), "--commit", "abc")
    run("datasets", "push", "tx", str(tmp_path / "data.csv"))
    run_id = json.loads(run("runs", "start", "--experiment", "e", "--json"))["id"]
    run("runs", "end", run_id)
    with modelkeep.connect(settings=Settings(uri=str(tmp_path / "store"))) as mk:
        with mk.start_run("e") as sdk_run:  # its buffered points are stored with its end
            sdk_run.log_metric("loss", 0.5)
        result = NewCheckResult("evaluation", "evaluation", {"accuracy": 0.9}, passed=True)
        mk.record_check("fraud@1", dataset="tx@1", result=result)
    run("approve", "fraud@1", "--to", "production", "--comment", "ok")
    run("reject", "fraud@2", "--to", "production")
    run("alias", "set", "fraud@1", "champion")
    run("alias", "rm", "fraud", "champion")
    run("policy", "set", str(ROOT / "examples" / "policy.yaml"))
    run("promote", "fraud@1", "--to", "staging")
    for n in (1, 2):
        run("promote", f"fraud@{n}", "--to", "production", "--override", "--reason", "test")
    run("rollback", "fraud", "--stage", "production", "--reason", "back")
    run("deploy", "fraud@1", "--env", "prod", "--reason", "first")
    run("deploy", "fraud@2", "--env", "prod", "--canary", "10")
    run("deploy", "promote", "fraud", "--env", "prod")
    run("deploy", "rollback", "fraud", "--env", "prod", "--reason", "back")
    run("archive", "fraud@3", "--reason", "old")
    run("bundle", "build", "fraud@1", "-o", str(tmp_path / "fraud-1.bundle.tar.gz"))
    for n in (4, 5):
        run("push", "fraud", str(tmp_path / f"w{n}.bin"), "--commit", "abc")
    run("retention", "set", "fraud", "--keep-last", "1")
    run("gc")
    run("retention", "clear", "fraud")
    run("audit", "checkpoint")
    run("users", "create", "bob", "--role", "viewer")
    run("users", "disable", "bob")
    run("users", "enable", "bob")
    run("users", "grant", "bob", "--role", "contributor", "--model", "fraud")
    run("users", "revoke", "bob", "--role", "contributor", "--model", "fraud")
    run("users", "grant", "bob", "--role", "viewer", "--experiment", "e")
    run("users", "grant", "bob", "--role", "viewer", "--dataset", "tx")
    run("users", "revoke", "bob", "--role", "viewer", "--dataset", "tx")
    token = json.loads(run("tokens", "create", "bob", "--label", "ci", "--json"))
    run("tokens", "revoke", token["token"])
    run("users", "delete", "bob")
    return [json.loads(line) for line in run("audit", "log", "--json").splitlines()]


def test_the_audit_table_lists_the_details_each_event_has(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELKEEP_URI", str(tmp_path / "store"))
    events = an_audited_session(tmp_path, capsys)
    rows = documented_details()
    written: dict[str, set[str]] = {}
    for event in events:
        written.setdefault(event["action"], set()).update(event["details"])
    assert len(written) >= 30, sorted(set(EventKind) - set(written))  # every kind of 2026-12
    for action, keys in written.items():
        documented = set().union(*(row for actions, row in rows if action in actions))
        assert keys <= documented, f"{action}: {sorted(keys - documented)} not documented"
    for actions, documented in rows:
        if not actions <= set(written):
            continue  # a kind this session does not make
        keys = set().union(*(written[action] for action in actions))
        assert documented <= keys, f"{sorted(actions)}: {sorted(documented - keys)} not written"


def test_the_code_structure_names_only_modules_that_exist() -> None:
    section = read("design.md").split("## Code structure", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"\b([a-z_]+\.py)\b", section))
    names = {p.name for p in Path(modelkeep.__file__).parent.rglob("*.py")}
    names |= {p.name for p in (Path(__file__).parent).glob("*.py")}
    assert len(named) > 20
    assert named <= names, named - names


def test_manifest_example_digest_is_what_the_code_computes() -> None:
    text = read("design.md")
    canonical = marked(text, "manifest-example")
    digest = marked(text, "manifest-digest").strip()
    document = json.loads(canonical)
    manifest = Manifest.of(FileEntry(f["path"], f["size"], f["digest"]) for f in document["files"])
    assert manifest.canonical_bytes() == canonical.encode("utf-8")
    assert manifest.digest == digest


def test_audit_example_hash_is_what_the_code_computes() -> None:
    text = read("design.md")
    canonical = marked(text, "audit-example-event")
    body = json.loads(canonical)
    event = AuditEvent(
        body["seq"],
        datetime.fromisoformat(body["at"]),
        body["actor"],
        body["action"],
        body["subject"],
        body["details"],
        GENESIS,
    )
    assert canonical_json(event.body()) == canonical.encode("utf-8")
    assert event.compute_hash() == marked(text, "audit-example-hash").strip()


def write_program(folder: Path, name: str, marker: str) -> Path:
    """A program of docs/design.md, with the ``canonical.py`` it imports beside it."""
    text = read("design.md")
    (folder / "canonical.py").write_text(marked(text, "canonical-json-program"), encoding="utf-8")
    program = folder / name
    program.write_text(marked(text, marker), encoding="utf-8")
    return program


def run_verifier(tmp_path: Path, events: list[dict[str, object]]) -> str:
    program = write_program(tmp_path, "verify_audit.py", "audit-verifier")
    done = subprocess.run(
        [sys.executable, str(program)],
        cwd=tmp_path,
        input=json_lines(events),
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def json_lines(events: list[dict[str, object]]) -> str:
    """What ``modelkeep audit log --json`` prints: one event per line."""
    return "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events)


def test_the_standalone_audit_verifier_agrees_with_modelkeep(tmp_path: Path) -> None:
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"weights\n")
    with modelkeep.connect(settings=Settings(uri=str(tmp_path / "store"))) as mk:
        mk.create_model("fraud", description="Ünïcode survives", require=["commit"])
        mk.push("fraud", [weights], version="1.0.0", commit="abc", metrics={"auc": 0.5})
        mk.promote("fraud@1", to="production", reason="ok")
        events = [e.to_dict() for e in mk.audit_log()]
    head = events[-1]["hash"]
    assert run_verifier(tmp_path, events) == f"intact: 3 events, head {head}"

    tampered = [dict(e) for e in events]
    tampered[1]["actor"] = "local:mallory"
    assert run_verifier(tmp_path, tampered) == "broken at seq 2"
    assert run_verifier(tmp_path, events[:1] + events[2:]) == "broken at seq 2"


def legacy_chain() -> list[dict[str, object]]:
    """Events as a release before canonical form 2 wrote them (floats and an astral key in
    their details), then one written now: what an upgraded store's log holds."""
    events: list[dict[str, object]] = []
    prev_hash = GENESIS
    at = datetime.fromisoformat("2026-03-03T10:00:00+00:00")
    for seq, details in enumerate(
        [{"seconds": 600.0, "tiny": 1e-07}, {"\U0001f600": 1, "\uff5a": 2.5}], start=1
    ):
        body = AuditEvent(seq, at, "local:ann", "run.end", f"run:{seq}", details).body()
        hashed = hashlib.sha256(prev_hash.encode() + legacy_json(body)).hexdigest()
        events.append({**body, "prev_hash": prev_hash, "hash": hashed})
        prev_hash = hashed
    now = chain(2, prev_hash, at, "local:ann", "run.end", "run:3", {"seconds": 600.0})
    return [*events, now.to_dict()]


def test_the_standalone_audit_verifier_accepts_legacy_and_canonical_events(
    tmp_path: Path,
) -> None:
    events = legacy_chain()
    assert run_verifier(tmp_path, events) == f"intact: 3 events, head {events[-1]['hash']}"
    edited = [dict(e) for e in events]
    edited[0]["details"] = {"seconds": 600, "tiny": 1e-07}  # the same number, other bytes
    assert run_verifier(tmp_path, edited) == "broken at seq 1"


def test_the_canonical_json_example_is_what_the_code_computes() -> None:
    text = read("design.md")
    value = json.loads(marked(text, "canonical-example-value"))
    canonical = marked(text, "canonical-example-canonical").encode("utf-8")
    assert canonical_json(value) == canonical
    assert legacy_json(value) == marked(text, "canonical-example-legacy").encode("utf-8")
    digest = "sha256:" + hashlib.sha256(canonical).hexdigest()
    assert digest == marked(text, "canonical-example-digest").strip()


def documented_canonical() -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": "canonical"}
    exec(
        compile(marked(read("design.md"), "canonical-json-program"), "canonical.py", "exec"),
        namespace,
    )
    return namespace


@settings(max_examples=300)
@given(json_values)
def test_the_documented_canonical_json_is_the_code_s(value: Any) -> None:
    """canonical.py of docs/design.md, on what json.loads gives, agrees with the code (and
    so with RFC 8785: tests/unit/test_canonical_json.py)."""
    program = documented_canonical()
    value = json.loads(json.dumps(value))
    assert program["jcs"](value).encode("utf-8") == canonical_json(value)
    assert program["forms"](value)[-1] == legacy_json(value)


def run_checkpoint_verifier(tmp_path: Path, log: str, key: Path, checkpoints: list[Path]) -> str:
    program = write_program(tmp_path, "verify_checkpoints.py", "audit-checkpoint-verifier")
    (tmp_path / "audit.jsonl").write_text(log, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(program), "audit.jsonl", str(key), *map(str, checkpoints)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


def test_the_checkpoint_verifier_agrees_with_modelkeep(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The program of docs/design.md, on what ``audit log --json``, ``audit key`` and the
    store's ``checkpoints/`` give an auditor: intact, truncated, rewritten, forged."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from modelkeep.domain.audit import Checkpoint, SignedCheckpoint

    store = tmp_path / "store"
    monkeypatch.setenv("MODELKEEP_URI", str(store))
    weights = tmp_path / "model.bin"
    weights.write_bytes(b"weights\n")
    for args in (
        ["models", "create", "fraud", "--description", "Ünïcode"],
        ["push", "fraud", str(weights)],
        ["audit", "checkpoint"],
        ["promote", "fraud@1", "--to", "production"],
        ["audit", "checkpoint"],
    ):
        assert run_cli(args, capsys)[0] == 0, args
    code, log = run_cli(["audit", "log", "--json"], capsys)
    assert code == 0
    code, pem = run_cli(["audit", "key"], capsys)
    assert code == 0 and pem.startswith("-----BEGIN PUBLIC KEY-----")
    key = tmp_path / "audit-key.pem"
    key.write_text(pem)
    checkpoints = sorted((store / "checkpoints").iterdir())
    assert len(checkpoints) == 2
    events = [json.loads(line) for line in log.splitlines()]
    assert len(events) == 5

    verdict = run_checkpoint_verifier(tmp_path, log, key, checkpoints)
    assert verdict == f"intact: 5 events, 2 checkpoints, head {events[-1]['hash']}"
    truncated = json_lines(events[:3])  # the second checkpoint signed seq 4
    assert run_checkpoint_verifier(tmp_path, truncated, key, checkpoints).startswith(
        "truncated at seq 4"
    )
    rewritten = rechain(events, 1, "actor", "local:mallory")
    assert run_checkpoint_verifier(tmp_path, json_lines(rewritten), key, checkpoints) == (
        f"rewritten at or before seq 2 (checkpoint {checkpoints[0]})"
    )
    signed = SignedCheckpoint.parse(checkpoints[1].read_bytes())
    other = Ed25519PrivateKey.generate()
    body: Checkpoint = signed.checkpoint
    forged = tmp_path / "forged.json"
    forged.write_bytes(
        SignedCheckpoint(body, other.sign(body.signed_bytes()).hex(), signed.public_key).to_bytes()
    )
    assert run_checkpoint_verifier(tmp_path, log, key, [forged]) == f"forged checkpoint {forged}"


def rechain(
    events: list[dict[str, object]], index: int, key: str, value: str
) -> list[dict[str, object]]:
    """``events`` with one field of one event changed and every hash after it recomputed:
    what someone who can write the database can do."""
    changed = [dict(e) for e in events]
    changed[index][key] = value
    prev_hash = GENESIS
    for event in changed:
        body = AuditEvent(
            int(str(event["seq"])),
            datetime.fromisoformat(str(event["at"])),
            str(event["actor"]),
            str(event["action"]),
            str(event["subject"]),
            dict(event["details"]),  # type: ignore[call-overload]
            prev_hash,
        )
        event["prev_hash"], event["hash"] = prev_hash, body.compute_hash()
        prev_hash = str(event["hash"])
    return changed


# attestations: the statement, the records, the bundle, the keyid ------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An exported attestation in which every optional part is present: a policy, a
    check, an approval, the previous version in the stage and an admin's override."""
    from modelkeep.domain.governance import NewCheckResult

    tmp = tmp_path_factory.mktemp("attested")
    for n in (1, 2):
        (tmp / f"w{n}.bin").write_bytes(f"weights {n}\n".encode())
    with modelkeep.connect(settings=Settings(uri=str(tmp / "store"))) as mk:
        mk.create_model("fraud")
        for n in (1, 2):
            mk.push("fraud", [tmp / f"w{n}.bin"], commit="abc")
        result = NewCheckResult("evaluation", "evaluation", {"accuracy": 1.0}, passed=True)
        mk.record_check("fraud@2", dataset=None, result=result)
        mk.approve("fraud@2", to="production", comment="looks right")
        mk.set_policy(ROOT / "examples" / "policy.yaml")
        for n in (1, 2):
            mk.promote(f"fraud@{n}", to="production", override=True, reason="test")
        (tmp / "store.pem").write_text(mk.audit_key().pem)
        return mk.export_attestation("fraud@2", tmp / "bundle", stage="production")


def bundle_statement(bundle: Path) -> dict[str, Any]:
    envelope = json.loads((bundle / "attestation.dsse.json").read_bytes())
    return dict(json.loads(base64.b64decode(envelope["payload"])))


def field_paths(value: Any, prefix: str = "") -> set[str]:
    """``a``, ``a.b``, ``a[].c``: every field of a JSON document, lists of objects opened."""
    paths: set[str] = set()
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, dict):
            continue
        for key, child in item.items():
            path = f"{prefix}.{key}" if prefix else key
            paths.add(path)
            opened = child if isinstance(child, dict) else None
            if isinstance(child, list) and child and isinstance(child[0], dict):
                path, opened = path + "[]", child  # type: ignore[assignment]
            if opened is not None:
                paths |= field_paths(opened, path)
    return paths


def table_fields(heading: str, first_header: str) -> list[str]:
    """The backticked names in the first column of the table under ``heading`` whose
    first header cell is ``first_header``."""
    section = read("design.md").split(heading, 1)[1].split("\n#", 1)[0]
    table = section.split(f"| {first_header} |", 1)[1].split("\n\n", 1)[0]
    cells = [line.split(" | ")[0] for line in table.splitlines()[2:]]
    return [name for cell in cells for name in re.findall(r"`([^`]+)`", cell)]


def test_every_field_of_a_real_statement_is_documented_and_no_other(bundle: Path) -> None:
    statement = bundle_statement(bundle)
    predicate = statement["predicate"]
    assert all(predicate[key] for key in ("previous", "policy", "override", "evaluation"))
    assert predicate["checks"] and predicate["approvals"]
    documented = table_fields("### The promotion statement", "field")
    assert len(documented) == len(set(documented))
    assert set(documented) == field_paths(statement)


@pytest.mark.parametrize(
    ("folder", "header"), [("checks", "check result field"), ("approvals", "approval field")]
)
def test_the_evidence_record_tables_name_every_field(
    bundle: Path, folder: str, header: str
) -> None:
    (record_file,) = (bundle / folder).iterdir()
    record = json.loads(record_file.read_bytes())
    assert set(table_fields("### Evidence records", header)) == set(record)
    named = {e["id"]: e["digest"] for e in bundle_statement(bundle)["predicate"][folder]}
    digest = "sha256:" + hashlib.sha256(record_file.read_bytes()).hexdigest()
    assert named[int(record_file.stem)] == digest  # the file is the bytes that were hashed


def test_the_bundle_layout_is_what_export_writes(bundle: Path) -> None:
    patterns = [line.split()[0] for line in marked(read("design.md"), "bundle-layout").splitlines()]
    expressions = [
        re.escape(p).replace("<id>", r"\d+").replace("<hex>", "[0-9a-f]{64}") for p in patterns
    ]
    written = sorted(p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file())
    matched = {e: [w for w in written if re.fullmatch(e, w)] for e in expressions}
    assert all(matched.values()), matched
    assert sorted(w for found in matched.values() for w in found) == written


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_the_keyid_recipe_gives_the_envelope_s_keyid(bundle: Path) -> None:
    recipe = marked(read("design.md"), "keyid-recipe")
    done = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", recipe],
        cwd=bundle.parent,
        capture_output=True,
        text=True,
        check=True,
    )
    envelope = json.loads((bundle / "attestation.dsse.json").read_bytes())
    assert done.stdout.strip() == envelope["signatures"][0]["keyid"]
    raw = public_key_from_pem((bundle.parent / "store.pem").read_bytes())
    assert envelope["signatures"][0]["keyid"] == "sha256:" + PublicKey.of(raw).fingerprint


# dataset profiles ---------------------------------------------------------------------------


def test_the_documented_profile_limits_are_the_defaults() -> None:
    from modelkeep.stats.profiling import Limits

    section = read("design.md").split("## Dataset profiles", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| ([\d,]+) \|", section, re.M)
    documented = {name: int(value.replace(",", "")) for name, value in rows}
    assert len(documented) == 5
    assert documented == {name: getattr(Limits(), name) for name in documented}


def profiled(path: Path, values: list[int], **limits: int) -> dict[str, Any]:
    from modelkeep.stats.profiling import Limits, profile_file

    path.write_text("x\n" + "".join(f"{v}\n" for v in values))
    profile = profile_file(path, limits=Limits(**limits)).to_dict()
    return dict(profile["columns"][0])


def type7(values: list[int], p: float) -> float:
    """The quantile as docs/design.md defines it (linear interpolation)."""
    ordered = sorted(values)
    h = (len(ordered) - 1) * p
    low = int(h)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (h - low) * (ordered[high] - ordered[low])


def test_a_profile_s_std_and_quantiles_are_computed_as_documented(tmp_path: Path) -> None:
    import statistics

    values = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4]
    column = profiled(tmp_path / "small.csv", values)
    assert column["approximate"] is False
    assert column["std"] == pytest.approx(statistics.stdev(values))  # n - 1
    names = {"p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}
    assert column["quantiles"] == {n: pytest.approx(type7(values, p)) for n, p in names.items()}


def test_sampled_quantiles_are_within_the_documented_rank_error(tmp_path: Path) -> None:
    """50,000 values, a sample of s = 2,000: each quantile's true rank is within
    p ± sqrt(ln(2/δ) / (2s)), δ = 0.001, as docs/design.md says."""
    import random

    size, sample = 50_000, 2_000
    values = list(range(size))
    random.Random(7).shuffle(values)
    limits = {"sample_values": sample, "sample_budget": sample, "min_share": sample}
    column = profiled(tmp_path / "large.csv", values, batch_rows=4_096, **limits)
    assert column["approximate"] is True and column["count"] == size
    assert column["mean"] == pytest.approx((size - 1) / 2)  # never sampled
    bound = math.sqrt(math.log(2 / 0.001) / (2 * sample))
    for name, p in {"p05": 0.05, "p25": 0.25, "p50": 0.5, "p75": 0.75, "p95": 0.95}.items():
        rank = column["quantiles"][name] / (size - 1)  # the values are 0 … size - 1
        assert abs(rank - p) <= bound, (name, rank)


# (e) commands shown in the docs are real ------------------------------------------------------


def shell_commands(text: str) -> Iterator[str]:
    """Each command line of the shell blocks (``$ `` prompts in console blocks)."""
    for block in blocks(text):
        if block.lang not in SHELL_LANGS:
            continue
        joined = block.body.replace("\\\n", " ")
        for line in joined.splitlines():
            if block.lang == "console":
                if line.startswith("$ "):
                    yield line[2:]
            else:
                yield line


def modelkeep_invocations(line: str) -> Iterator[list[str]]:
    """The arguments of every ``modelkeep`` run in a shell line (pipes, ``&&``, env vars)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    segment: list[str] = []
    redirected = False
    for token in [*lexer, ";"]:
        if redirected:  # the file a redirection names is no argument
            redirected = False
            continue
        if token in {">", ">>", "<"}:
            redirected = True
            continue
        if token in {"|", "||", "&&", ";", "&"}:
            while segment and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", segment[0]):
                segment.pop(0)
            if segment and Path(segment[0]).name == "modelkeep":
                yield segment[1:]
            segment = []
        else:
            segment.append(token)


def check_parses(args: list[str]) -> str:
    """Walk the click tree like the CLI would; raise click.UsageError if ``args`` is wrong."""
    command: click.Command = cli
    ctx = click.Context(cli, info_name="modelkeep")
    rest = list(args)
    while isinstance(command, click.Group):
        rest = skip_group_options(command, rest)
        if not rest:
            raise click.UsageError(f"'{ctx.command_path}' needs a command", ctx)
        sub = command.get_command(ctx, rest[0])
        if sub is None:
            raise click.UsageError(f"no command '{ctx.command_path} {rest[0]}'", ctx)
        ctx = click.Context(sub, info_name=sub.name or rest[0], parent=ctx)  # NAME@REF: its name
        command, rest = sub, rest[1:]
    command.make_context(ctx.info_name, rest, parent=ctx.parent)
    return ctx.command_path


def skip_group_options(group: click.Group, args: list[str]) -> list[str]:
    options = {name: p for p in group.params for name in getattr(p, "opts", [])}
    while args and args[0].startswith("-"):
        option = options.get(args[0])
        if option is None:
            raise click.UsageError(f"'{group.name}' has no option {args[0]}")
        args = args[1 if getattr(option, "is_flag", False) else 2 :]
    return args


def documented_invocations() -> list[tuple[str, list[str]]]:
    found = []
    for name in (
        "getting-started.md",
        "errors.md",
        "design.md",
        "configuration.md",
        "governance.md",
        "../README.md",
    ):
        for line in shell_commands(read(name)):
            found += [(name, args) for args in modelkeep_invocations(line)]
    return found


FIRST_SESSION = {
    "models create",
    "push",
    "versions",
    "show",
    "promote",
    "alias set",
    "resolve",
    "pull",
    "diff",
    "rollback",
    "archive",
    "verify",
    "gc",
    "audit log",
    "audit verify",
}


def test_getting_started_walks_through_every_everyday_command() -> None:
    shown: set[str] = set()
    for page, args in documented_invocations():
        if page == "getting-started.md":
            shown |= {args[0], " ".join(args[:2])}
    assert shown >= FIRST_SESSION
    assert any("--at" in args for _, args in documented_invocations())
    assert any("--dry-run" in args for _, args in documented_invocations())


@pytest.mark.parametrize(
    ("page", "args"),
    [
        pytest.param(page, args, id=f"{page}: {shlex.join(args)}")
        for page, args in documented_invocations()
    ],
)
def test_documented_command_is_a_real_command(page: str, args: list[str]) -> None:
    try:
        path = check_parses(args)
    except click.UsageError as exc:
        pytest.fail(f"{page}: 'modelkeep {shlex.join(args)}' does not parse: {exc}")
    assert path in command_paths(cli)


# links ------------------------------------------------------------------------------------


def anchors(text: str) -> set[str]:
    """GitHub's heading anchors: lowercase, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"^#+ (.+)$", text, re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


@pytest.mark.parametrize("page", sorted(p.name for p in DOCS.glob("*.md")))
def test_relative_links_resolve(page: str) -> None:
    text = read(page)
    for target, anchor in re.findall(r"\]\((?!https?:)([^)#\s]*)(?:#([^)\s]+))?\)", text):
        linked = (DOCS / target).resolve() if target else DOCS / page
        assert linked.is_file(), f"docs/{page} links to missing {target}"
        if anchor and linked.suffix == ".md":
            assert anchor in anchors(linked.read_text(encoding="utf-8")), (
                f"docs/{page} links to #{anchor}, which {linked.name} does not have"
            )


# getting-started.md runs as shown ------------------------------------------------------------

TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(\+00:00|Z)?")
ACTOR = re.compile(r"local:\S+")


def normalise(text: str) -> list[str]:
    """Lines without times, the user name, or the padding of table columns."""
    lines = []
    for line in text.splitlines():
        words = ACTOR.sub("local:<user>", TIME.sub("<time>", line)).split()
        if words:
            lines.append(" ".join(words))
    return lines


def session(text: str) -> list[tuple[str, str]]:
    """(command, expected output) for every ``$`` line of the console blocks."""
    steps: list[tuple[str, str]] = []
    for block in blocks(text):
        if block.lang != "console":
            continue
        for line in block.body.splitlines():
            if line.startswith("$ "):
                steps.append((line[2:], ""))
            else:
                command, output = steps[-1]
                steps[-1] = (command, output + line + "\n")
    return steps


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    capsys.readouterr()
    try:
        main(args)
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def with_real_time(args: list[str], capsys: pytest.CaptureFixture[str]) -> list[str]:
    """Replace ``--at TIME`` by the time of the alias's first move in this run."""
    if "--at" not in args:
        return args
    model, _, alias = args[args.index("resolve") + 1].partition("@")
    code, out = run_cli(["alias", "history", model, alias, "--json"], capsys)
    assert code == 0, out
    at = args.index("--at") + 1
    return [*args[:at], json.loads(out)[0]["at"], *args[at + 1 :]]


def test_getting_started_cli_session_runs_as_shown(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for command, expected in session(read("getting-started.md")):
        invocations = list(modelkeep_invocations(command))
        if not invocations:
            subprocess.run(command, shell=True, cwd=in_tmp, check=True)
            continue
        args = with_real_time(invocations[0], capsys)
        code, output = run_cli(args, capsys)
        fails = expected.startswith("error[")
        assert (code != 0) == fails, f"$ {command}\nexit {code}\n{output}"
        assert normalise(output) == normalise(expected), f"$ {command}"


def test_getting_started_sdk_example_prints_what_is_shown(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = read("getting-started.md")
    code = compile(marked(text, "sdk-example"), "docs/getting-started.md", "exec")
    exec(code, {"__name__": "getting_started"})
    assert capsys.readouterr().out == marked(text, "sdk-output") + "\n"


# pages that are scripts run top to bottom ---------------------------------------------------

SCRIPT_PAGES = ("tracking.md", "governance.md")
NOT_RUN = "not-run"  # the marker of a block a page shows but the test does not run


def page_script(text: str) -> str:
    """The page's shell and Python blocks, in order, as one bash script (a Python block
    runs from a here-document), stopping at the first command that fails."""
    parts = ["set -euo pipefail"]
    for block in blocks(text):
        if block.marker == NOT_RUN:
            continue
        if block.lang in {"sh", "bash"}:
            parts.append(block.body)
        elif block.lang == "python":
            parts.append(f"python - <<'PYTHON'\n{block.body}\nPYTHON")
        elif block.lang == "console":
            raise AssertionError("a script page shows commands in sh or bash blocks")
    return "\n".join(parts) + "\n"


def run_page(page: str, work: Path) -> subprocess.CompletedProcess[str]:
    """Run ``page`` as a script in ``work`` (the repository's examples beside it), on
    the embedded store of ``work``, with this checkout's modelkeep first on PATH."""
    (work / "examples").symlink_to(ROOT / "examples")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("MODELKEEP_") and key not in {"FORCE_COLOR", "COLUMNS"}
    }
    env |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")]),
        "MODELKEEP_CACHE_DIR": "off",
    }
    return subprocess.run(
        ["bash", "-c", page_script(read(page))],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
@pytest.mark.parametrize("page", SCRIPT_PAGES)
def test_page_runs_top_to_bottom_on_a_fresh_store(page: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    done = run_page(page, work)
    assert done.returncode == 0, f"docs/{page}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
