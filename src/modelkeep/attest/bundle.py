"""An exported attestation bundle, written and verified offline: no database, no server.

``modelkeep attest export NAME@REF DIR`` fills a directory with one promotion's
attestation and every piece of evidence it names (``write_bundle``)::

    DIR/attestation.dsse.json   the DSSE envelope (domain/attestation.py)
    DIR/public_key.pem          the store's Ed25519 public key (SubjectPublicKeyInfo PEM)
    DIR/manifest.json           the version's canonical manifest (sha256 = version digest)
    DIR/policy.yaml             the policy document (sha256 = the statement's policy digest;
                                absent when the statement names no policy)
    DIR/checks/<id>.json        each check result record: the bytes its record digest
                                (named in the statement) is the sha256 of
    DIR/approvals/<id>.json     each approval record, likewise
    DIR/reports/<hex>.json      each check's report (sha256 = the record's report_digest)

``verify_bundle`` checks all of it and reports every problem, not only the first. The
bundle's own ``public_key.pem`` proves only that the bundle is intact; a caller that wants
to know the store signed it passes the key it trusts.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from modelkeep.content.copying import sha256_of
from modelkeep.domain.attestation import (
    decode_envelope,
    key_id,
    parse_statement,
    public_key_from_pem,
    record_digests,
    subject_digest,
    verify_envelope,
)
from modelkeep.domain.canonical import canonical_forms
from modelkeep.domain.digest import hex_part, is_digest, sha256_digest
from modelkeep.domain.governance import Approval, CheckResult
from modelkeep.domain.manifest import Manifest
from modelkeep.errors import AttestationInvalid, DestinationConflict, ModelkeepError

ENVELOPE = "attestation.dsse.json"
PUBLIC_KEY = "public_key.pem"
MANIFEST = "manifest.json"
POLICY = "policy.yaml"
EVIDENCE_DIRS = ("checks", "approvals", "reports")
SHOWN_PROBLEMS = 3

_RECORD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


class BundleContents(Protocol):
    """What a bundle holds, as the services hand it out (``attestations.Evidence``)."""

    @property
    def envelope(self) -> bytes: ...
    @property
    def public_key(self) -> bytes: ...
    @property
    def manifest(self) -> bytes: ...
    @property
    def policy(self) -> str | None: ...
    @property
    def checks(self) -> Sequence[CheckResult]: ...
    @property
    def approvals(self) -> Sequence[Approval]: ...
    @property
    def reports(self) -> Mapping[str, bytes]: ...


def write_bundle(found: BundleContents, dest: Path) -> Path:
    """Write an attestation and its evidence into ``dest`` (new or empty), laid out as
    above (the records as canonical JSON, so their digests can be recomputed from the
    files)."""
    if dest.exists() and any(dest.iterdir()):
        raise DestinationConflict(f"{dest} is not empty", "export into a new or empty directory")
    for folder in EVIDENCE_DIRS:
        (dest / folder).mkdir(parents=True, exist_ok=True)
    (dest / ENVELOPE).write_bytes(found.envelope)
    (dest / PUBLIC_KEY).write_bytes(found.public_key)
    (dest / MANIFEST).write_bytes(found.manifest)
    if found.policy is not None:
        (dest / POLICY).write_bytes(found.policy.encode("utf-8"))
    named = _named_digests(found.envelope)
    for check in found.checks:
        (dest / "checks" / f"{check.id}.json").write_bytes(_record_bytes(check.record(), named))
    for approval in found.approvals:
        (dest / "approvals" / f"{approval.id}.json").write_bytes(
            _record_bytes(approval.record(), named)
        )
    for digest, data in found.reports.items():
        (dest / "reports" / f"{hex_part(digest)}.json").write_bytes(data)
    return dest


def _named_digests(envelope: bytes) -> set[str]:
    """The record digests the statement names (its signature is checked on verify)."""
    try:
        predicate = parse_statement(decode_envelope(envelope))["predicate"]
    except AttestationInvalid:
        return set()
    entries = [*(predicate.get("checks") or []), *(predicate.get("approvals") or [])]
    return {str(e.get("digest")) for e in entries if isinstance(e, dict)}


def _record_bytes(record: Mapping[str, Any], named: set[str]) -> bytes:
    """The record in the form whose sha256 the statement names: canonical JSON, or the
    legacy form for a record attested before canonical form 2 (``domain/canonical.py``)."""
    forms = canonical_forms(dict(record))
    return next((f for f in forms if sha256_digest(f) in named), forms[0])


@dataclass
class BundleReport:
    """What ``verify_bundle`` found: ``ok`` when no problem; ``checked`` says what was
    verified, in words; ``warnings`` (extra files) do not make it fail."""

    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    statement: dict[str, Any] = field(default_factory=dict)
    key: str = ""
    """Which key the signature was checked with, and its fingerprint."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": list(self.problems),
            "checked": list(self.checked),
            "warnings": list(self.warnings),
            "key": self.key,
            "statement": self.statement,
        }


def raise_if_bad(report: BundleReport) -> None:
    """``AttestationInvalid`` with the first problems, if there are any."""
    if report.ok:
        return
    shown = "; ".join(report.problems[:SHOWN_PROBLEMS])
    more = len(report.problems) - SHOWN_PROBLEMS
    raise AttestationInvalid(shown + (f" (and {more} more)" if more > 0 else ""))


def verify_bundle(
    bundle: Path,
    files: Path | None = None,
    public_key_pem: bytes | None = None,
    key_source: str = "the key you passed",
    stage: str | None = None,
) -> BundleReport:
    """Check an exported bundle; with ``files``, also the model files in that directory;
    with ``stage``, that the signed statement attests a promotion to that stage.

    Only a trusted key (``public_key_pem``, named by ``key_source`` in the report) can
    verify it: without one, everything is still checked against the bundle's own key, and
    that is a problem, since whoever re-signs a bundle puts their own key in it."""
    report = BundleReport()
    public = _public_key(bundle, public_key_pem, key_source, report)
    statement = _statement(bundle, public, report)
    if statement is None:
        return report
    report.statement = statement
    predicate = statement["predicate"]
    _check_stage(predicate, stage, report)
    manifest = _check_manifest(bundle, subject_digest(statement), report)
    _check_policy(bundle, predicate.get("policy"), report)
    named_reports = _check_checks(bundle, _entries(predicate, "checks", report), report)
    _check_approvals(bundle, _entries(predicate, "approvals", report), report)
    _check_reports(bundle, named_reports, report)
    if files is not None and manifest is not None:
        check_files(files, manifest, report)
    return report


# signature and statement ------------------------------------------------------------------


def _public_key(bundle: Path, pem: bytes | None, source: str, report: BundleReport) -> bytes | None:
    if pem is None:
        source = f"the bundle's own {PUBLIC_KEY} (proves integrity, not who signed)"
        report.problems.append(
            f"no trusted key: the signature was checked only with the bundle's own "
            f"{PUBLIC_KEY}, which whoever re-signs a bundle replaces; give --public-key "
            "with the store's key ('modelkeep audit key > store.pem')"
        )
        pem = _read(bundle, PUBLIC_KEY, report)
        if pem is None:
            return None
    try:
        raw = public_key_from_pem(pem)
    except AttestationInvalid as exc:
        report.problems.append(f"{source}: {exc.message}")
        return None
    report.key = f"{source}, {key_id(raw)}"
    return raw


def _statement(bundle: Path, public: bytes | None, report: BundleReport) -> dict[str, Any] | None:
    """The statement, even when its signature fails (so that the evidence is still
    checked against it and every problem is reported); None if it cannot be read."""
    data = _read(bundle, ENVELOPE, report)
    if data is None:
        return None
    try:
        envelope = decode_envelope(data)
    except AttestationInvalid as exc:
        report.problems.append(f"{ENVELOPE}: {exc.message}")
        return None
    if public is not None:
        try:
            verify_envelope(envelope, public)
            report.checked.append(f"{ENVELOPE}: signature verified with {report.key}")
        except AttestationInvalid as exc:
            report.problems.append(f"{ENVELOPE}: {exc.message}")
    try:
        statement = parse_statement(envelope)
    except AttestationInvalid as exc:
        report.problems.append(f"{ENVELOPE}: {exc.message}")
        return None
    predicate = statement["predicate"]
    report.checked.append(
        f"{ENVELOPE}: promotion of {statement['subject'][0]['name']} to "
        f"{predicate.get('stage')} by {predicate.get('actor')} at {predicate.get('at')}"
    )
    return statement


def _check_stage(predicate: Mapping[str, Any], stage: str | None, report: BundleReport) -> None:
    """An attestation proves a promotion to the stage its signed predicate names: checking
    ``NAME@production`` with a staging attestation proves nothing about production."""
    if stage is None:
        return
    if predicate.get("stage") != stage:
        report.problems.append(
            f"{ENVELOPE}: attests a promotion to {predicate.get('stage')}, not to {stage}"
        )
    else:
        report.checked.append(f"{ENVELOPE}: the attested stage is {stage}")


# manifest, policy -------------------------------------------------------------------------


def _check_manifest(bundle: Path, digest: str, report: BundleReport) -> Manifest | None:
    data = _read(bundle, MANIFEST, report)
    if data is None:
        return None
    found = sha256_digest(data)
    if found != digest:
        report.problems.append(
            f"{MANIFEST}: its sha256 is {found}, not the attested version digest {digest}"
        )
    else:
        report.checked.append(f"{MANIFEST}: sha256 is the attested version digest {digest}")
    try:
        manifest = Manifest.parse(data)
    except (ModelkeepError, ValueError, KeyError, TypeError, AttributeError) as exc:
        report.problems.append(f"{MANIFEST}: not a manifest ({_reason(exc)})")
        return None
    if manifest.canonical_bytes() != data:
        report.problems.append(f"{MANIFEST}: not in canonical form")
    report.checked.append(f"{MANIFEST}: {len(manifest.files)} file(s), {manifest.total_size} B")
    return manifest


def _check_policy(bundle: Path, policy: Any, report: BundleReport) -> None:
    if policy is None:
        if (bundle / POLICY).exists():
            report.warnings.append(f"{POLICY}: present, but the statement names no policy")
        else:
            report.checked.append("policy: none was in force")
        return
    expected = policy.get("digest") if isinstance(policy, dict) else None
    data = _read(bundle, POLICY, report)
    if data is None:
        return
    found = sha256_digest(data)
    if found != expected:
        report.problems.append(f"{POLICY}: its sha256 is {found}, not the attested {expected}")
    else:
        report.checked.append(f"{POLICY}: version {policy.get('version')}, digest {found}")


# evidence records -------------------------------------------------------------------------


def _entries(predicate: Mapping[str, Any], kind: str, report: BundleReport) -> list[dict[str, Any]]:
    """The statement's ``checks`` or ``approvals`` whose id can name a file."""
    found: list[dict[str, Any]] = []
    for entry in predicate.get(kind) or []:
        record_id = str(entry.get("id")) if isinstance(entry, dict) else ""
        if not _RECORD_ID.fullmatch(record_id):
            report.problems.append(f"the statement names a {kind} record with id {record_id!r}")
            continue
        found.append(entry)
    return found


def _check_checks(
    bundle: Path, checks: list[dict[str, Any]], report: BundleReport
) -> dict[str, str]:
    """Each check record; returns report digest -> the check that names it."""
    named: dict[str, str] = {}
    for check in checks:
        where = f"checks/{check['id']}.json"
        record = _check_record(bundle, where, check, report)
        if record is None:
            continue
        report_digest = record.get("report_digest")
        if check.get("report_digest") not in (None, report_digest):
            report.problems.append(f"{where}: report_digest differs from the statement's")
        for key in ("producer", "dataset", "dataset_digest"):  # provenance, where stated
            if check.get(key) is not None and check.get(key) != record.get(key):
                report.problems.append(f"{where}: its {key} differs from the statement's")
        if isinstance(report_digest, str):
            named[report_digest] = where
    _warn_extra(bundle / "checks", {f"{c['id']}.json" for c in checks}, report)
    return named


def _check_approvals(bundle: Path, approvals: list[dict[str, Any]], report: BundleReport) -> None:
    for approval in approvals:
        where = f"approvals/{approval['id']}.json"
        record = _check_record(bundle, where, approval, report)
        if record is not None and approval.get("user") not in (None, record.get("user")):
            report.problems.append(f"{where}: its user differs from the statement's")
    _warn_extra(bundle / "approvals", {f"{a['id']}.json" for a in approvals}, report)


def _check_record(
    bundle: Path, where: str, entry: Mapping[str, Any], report: BundleReport
) -> dict[str, Any] | None:
    """The record file, if its record digest is the one the statement names."""
    data = _read(bundle, where, report)
    if data is None:
        return None
    try:
        record = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        report.problems.append(f"{where}: not JSON ({exc})")
        return None
    if not isinstance(record, dict):
        report.problems.append(f"{where}: not a JSON object")
        return None
    expected = entry.get("digest")
    found = _record_digest_of(data, record, expected)
    if found != expected:
        report.problems.append(
            f"{where}: record digest is {found}, not the attested {expected}: it was changed"
        )
        return None
    report.checked.append(f"{where}: record digest {found}")
    version = record.get("version_digest")
    if version is not None and version != subject_digest(report.statement):
        report.problems.append(f"{where}: the record is about version {version}, not this one")
    return record


def _record_digest_of(data: bytes, record: dict[str, Any], expected: Any) -> str:
    """The record digest: ``expected`` if the file is the very bytes it is the sha256
    of, or if the record hashes to it in canonical or legacy form; a file exported with
    its row ``id`` and ``digest`` beside the record's fields is hashed without those two
    (they are not part of the record)."""
    candidates = (sha256_digest(data), *record_digests(record))
    if "id" in record or "digest" in record:
        rest = {k: v for k, v in record.items() if k not in ("id", "digest")}
        candidates += record_digests(rest)
    if expected in candidates:
        return str(expected)
    return candidates[1] if len(candidates) > 1 else candidates[0]


def _check_reports(bundle: Path, named: dict[str, str], report: BundleReport) -> None:
    expected_names = set()
    for digest, check in sorted(named.items()):
        if not is_digest(digest):
            report.problems.append(f"{check}: report_digest {digest!r} is not a digest")
            continue
        where = f"reports/{hex_part(digest)}.json"
        expected_names.add(f"{hex_part(digest)}.json")
        path = bundle / where
        if not path.is_file():
            report.problems.append(f"{where}: missing (the report of {check})")
            continue
        found = file_digest(path)
        if found != digest:
            report.problems.append(f"{where}: its sha256 is {found}, not {digest}: it was changed")
        else:
            report.checked.append(f"{where}: sha256 matches {check}")
    _warn_extra(bundle / "reports", expected_names, report)


# model files ------------------------------------------------------------------------------


def check_files(files: Path, manifest: Manifest, report: BundleReport) -> None:
    """Every manifest file under ``files`` with its size and sha256; extra files warn."""
    bad = 0
    for entry in manifest.files:
        problem = _file_problem(files / entry.path, entry.size, entry.digest)
        if problem:
            report.problems.append(f"{files / entry.path}: {problem}")
            bad += 1
    if not bad:
        report.checked.append(f"{files}: all {len(manifest.files)} file(s) match the manifest")
    listed = {entry.path for entry in manifest.files}
    for extra in sorted(set(_relative_files(files)) - listed):
        report.warnings.append(f"{files / extra}: not in the manifest")


def _file_problem(path: Path, size: int, digest: str) -> str:
    if not path.is_file():
        return "missing"
    found_size = path.stat().st_size
    if found_size != size:
        return f"{found_size} B, the manifest says {size} B"
    found = file_digest(path)
    if found != digest:
        return f"sha256 is {found}, the manifest says {digest}"
    return ""


def file_digest(path: Path) -> str:
    """``sha256:<hex>`` of a file, read in constant memory."""
    with path.open("rb") as handle:
        return sha256_of(handle)[0]


def _relative_files(root: Path) -> Iterator[str]:
    """Every file under ``root`` as a POSIX relative path (symlinked dirs not entered)."""
    for folder, _dirs, names in os.walk(root):
        for name in names:
            yield (Path(folder) / name).relative_to(root).as_posix()


# helpers ----------------------------------------------------------------------------------


def _read(bundle: Path, where: str, report: BundleReport) -> bytes | None:
    """The bytes of ``bundle/where``, or None with the problem reported."""
    try:
        return (bundle / where).read_bytes()
    except FileNotFoundError:
        report.problems.append(f"{where}: missing from the bundle")
    except OSError as exc:
        report.problems.append(f"{where}: cannot be read ({exc.strerror or exc})")
    return None


def _warn_extra(folder: Path, expected: set[str], report: BundleReport) -> None:
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        if path.name not in expected:
            report.warnings.append(
                f"{folder.name}/{path.name}: not named by the statement (ignored)"
            )


def _reason(exc: Exception) -> str:
    return exc.message if isinstance(exc, ModelkeepError) else f"{type(exc).__name__}: {exc}"
