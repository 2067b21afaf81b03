"""Serving bundles: one deterministic, signed tar.gz per model version.

``modelkeep bundle build NAME@REF`` writes (members sorted by name; docs/design.md,
"Serving bundles")::

    bundle.dsse.json    DSSE envelope whose payload is bundle.json, signed with the
                        store's Ed25519 audit key (payloadType PAYLOAD_TYPE)
    bundle.json         the bundle manifest: every other entry with sha256 and size
    files/<path>        each file of the version, byte for byte
    manifest.json       the version's canonical manifest (sha256 = the version digest)
    public_key.pem      the store's public key (proves integrity only, not who signed)
    runtime.lock.json   the serving packages installed where it was built, with hashes
    serving.json        model, number, digest, format, attestations

``verify_archive`` checks all of it offline and reports every problem.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.metadata
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from modelkeep.attest.archive import Found, Member, read_members, write_archive
from modelkeep.domain.attestation import (
    decode_envelope,
    key_id,
    pae,
    public_key_from_pem,
    verify_envelope,
)
from modelkeep.domain.canonical import canonical_json
from modelkeep.domain.digest import PREFIX, sha256_digest
from modelkeep.domain.manifest import FileEntry, Manifest
from modelkeep.errors import AttestationInvalid, BundleInvalid, ModelkeepError

BUNDLE_FORMAT = 1
FILES = "files/"
MANIFEST = "manifest.json"
SERVING = "serving.json"
LOCK = "runtime.lock.json"
BUNDLE_MANIFEST = "bundle.json"
SIGNATURE = "bundle.dsse.json"
PUBLIC_KEY = "public_key.pem"
UNLISTED = (BUNDLE_MANIFEST, SIGNATURE, PUBLIC_KEY)
PAYLOAD_TYPE = "application/vnd.modelkeep.bundle+json"
KEPT = frozenset((*UNLISTED, MANIFEST, SERVING, LOCK))
"""The members whose bytes verify reads; every other one is only hashed, as it streams."""
MAX_KEPT = 64 * 1024 * 1024
"""Larger than any real manifest: a bigger kept member is refused, not held in memory."""
PYTHON_DECLARATION = "modelkeep.yaml"
SERVING_PACKAGES = ("modelkeep", "numpy", "onnxruntime", "skops", "scikit-learn")
SHOWN_PROBLEMS = 3
NO_TRUSTED_KEY = "no trusted key"


def detect_format(paths: Iterable[str]) -> str:
    """``python`` (a modelkeep.yaml at the top), ``onnx``, ``sklearn`` (a .skops file),
    or ``files`` when nothing says how to serve it."""
    names = list(paths)
    if PYTHON_DECLARATION in names:
        return "python"
    if any(n.endswith(".onnx") for n in names):
        return "onnx"
    if any(n.endswith(".skops") for n in names):
        return "sklearn"
    return "files"


def serving_config(
    model: str,
    number: int,
    digest: str,
    paths: Sequence[str],
    attestations: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """What a server needs to know to serve the version, beside its files."""
    return {
        "format": BUNDLE_FORMAT,
        "model": model,
        "number": number,
        "digest": digest,
        "model_format": detect_format(paths),
        "files": FILES,
        "attestations": [dict(a) for a in attestations],
    }


def runtime_lock(packages: Sequence[str] = SERVING_PACKAGES) -> dict[str, Any]:
    """The installed version of each serving package (absent ones are left out), with
    the sha256 of its RECORD file: RECORD lists every installed file with its own
    sha256, so this one hash covers the whole installed package. ``wheel_sha256`` is
    the hash pip recorded of the archive it installed from, when it recorded one."""
    found = []
    for name in packages:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        record = dist.read_text("RECORD")
        found.append(
            {
                "name": name,
                "version": dist.version,
                "record_sha256": (
                    hashlib.sha256(record.encode("utf-8")).hexdigest() if record else None
                ),
                "wheel_sha256": _wheel_hash(dist),
            }
        )
    return {"format": BUNDLE_FORMAT, "packages": found}


def _wheel_hash(dist: importlib.metadata.Distribution) -> str | None:
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    try:
        info = json.loads(text).get("archive_info", {})
    except (ValueError, AttributeError):
        return None
    hashes = info.get("hashes", {}) if isinstance(info, dict) else {}
    value = hashes.get("sha256") if isinstance(hashes, dict) else None
    return value if isinstance(value, str) else None


# building ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundleInputs:
    """Everything a bundle holds, as the store gives it."""

    model: str
    number: int
    manifest: bytes
    """The version's canonical manifest bytes (their sha256 is the version digest)."""
    open_file: Callable[[str], BinaryIO]
    """Opens a file of the version by its digest."""
    serving: Mapping[str, Any]
    lock: Mapping[str, Any]
    public_key_pem: bytes
    sign: Callable[[bytes], bytes]
    """The store's Ed25519 signature of some bytes."""
    public_key_raw: bytes


def members(inputs: BundleInputs) -> list[Member]:
    """The bundle's members, sorted by name, its manifest signed."""
    version = Manifest.parse(inputs.manifest)
    listed = [
        *[_file_member(entry, inputs.open_file) for entry in version.files],
        Member.of_bytes(MANIFEST, inputs.manifest),
        Member.of_bytes(SERVING, canonical_json(dict(inputs.serving))),
        Member.of_bytes(LOCK, canonical_json(dict(inputs.lock))),
    ]
    document = bundle_manifest(inputs.model, inputs.number, version.digest, listed)
    envelope = sign_manifest(document, inputs.sign, key_id(inputs.public_key_raw))
    unlisted = [
        Member.of_bytes(BUNDLE_MANIFEST, document),
        Member.of_bytes(SIGNATURE, envelope),
        Member.of_bytes(PUBLIC_KEY, inputs.public_key_pem),
    ]
    return sorted([*listed, *unlisted], key=lambda m: m.name)


def _file_member(entry: FileEntry, open_file: Callable[[str], BinaryIO]) -> Member:
    return Member(FILES + entry.path, entry.size, lambda: open_file(entry.digest), entry.digest)


def bundle_manifest(model: str, number: int, version_digest: str, listed: list[Member]) -> bytes:
    """Canonical JSON of every listed entry (``path``, ``sha256``, ``size``), by path.
    A version file's sha256 is its manifest digest; the others are hashed here."""
    entries = []
    for member in sorted(listed, key=lambda m: m.name):
        digest = member.digest
        if digest is None:
            with member.open() as stream:
                digest = sha256_digest(stream.read())
        entries.append({"path": member.name, "sha256": digest, "size": member.size})
    document = {
        "format": BUNDLE_FORMAT,
        "model": model,
        "number": number,
        "version_digest": version_digest,
        "entries": entries,
    }
    return canonical_json(document)


def sign_manifest(document: bytes, sign: Callable[[bytes], bytes], keyid: str) -> bytes:
    """The DSSE envelope of the bundle manifest (canonical JSON)."""
    signature = sign(pae(PAYLOAD_TYPE, document))
    envelope = {
        "payload": base64.b64encode(document).decode("ascii"),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{"keyid": keyid, "sig": base64.b64encode(signature).decode("ascii")}],
    }
    return canonical_json(envelope)


def write_bundle(inputs: BundleInputs, out: BinaryIO) -> None:
    write_archive(members(inputs), out)


@dataclass(frozen=True)
class BuiltBundle:
    """A bundle written: the version it holds and the sha256 of its bytes."""

    model: str
    number: int
    version_digest: str
    digest: str
    size: int

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.number}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "number": self.number,
            "version_digest": self.version_digest,
            "digest": self.digest,
            "size": self.size,
        }


# verifying --------------------------------------------------------------------------------


@dataclass
class BundleCheck:
    """What ``bundle verify`` found: ``problems`` make it fail; ``digest`` is the sha256
    of the archive's bytes; ``key`` which key checked the signature."""

    digest: str = ""
    model: str | None = None
    number: int | None = None
    version_digest: str | None = None
    key: str = ""
    problems: list[str] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "digest": self.digest,
            "model": self.model,
            "number": self.number,
            "version_digest": self.version_digest,
            "key": self.key,
            "problems": list(self.problems),
            "checked": list(self.checked),
        }

    def raise_if_bad(self) -> None:
        if self.ok:
            return
        shown = "; ".join(self.problems[:SHOWN_PROBLEMS])
        more = len(self.problems) - SHOWN_PROBLEMS
        message = shown + (f" (and {more} more)" if more > 0 else "")
        if len(self.problems) == 1 and self.problems[0].startswith(NO_TRUSTED_KEY):
            raise BundleInvalid(
                NO_TRUSTED_KEY + ": the signature was checked only with the bundle's own key",
                "give --public-key PEM with the store's key ('modelkeep audit key > "
                "store.pem'), or --store-key with --uri naming the registry",
            )
        raise BundleInvalid(message)


class _Digesting:
    """A read-only stream that hashes every byte read from ``inner``."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.hasher = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self._inner.read(size)
        self.hasher.update(data)
        return data

    def drain(self) -> None:
        while self.read(1024 * 1024):
            pass


def verify_archive(
    archive: BinaryIO, public_key_pem: bytes | None, key_source: str = "the key you passed"
) -> BundleCheck:
    """Check a bundle: its signature (with ``public_key_pem``, the key you trust; without
    one, with the bundle's own key, which is then a problem), every entry's sha256 and
    size against the signed bundle manifest, and the version manifest against both."""
    report = BundleCheck()
    stream = _Digesting(archive)
    found: dict[str, Found] = {}
    try:
        for member in read_members(stream, KEPT.__contains__, MAX_KEPT):  # type: ignore[arg-type]
            if member.name in found:
                report.problems.append(f"{member.name}: in the archive twice")
            found[member.name] = member
        stream.drain()
    except ModelkeepError as exc:
        report.problems.append(exc.message)
    report.digest = PREFIX + stream.hasher.hexdigest()
    if report.problems:
        return report
    document = _signed_manifest(found, public_key_pem, key_source, report)
    if document is not None:
        _check_entries(found, document, report)
        _check_version(found, document, report)
    return report


def _signed_manifest(
    found: Mapping[str, Found], pem: bytes | None, source: str, report: BundleCheck
) -> dict[str, Any] | None:
    if pem is None:
        source = f"the bundle's own {PUBLIC_KEY} (proves integrity, not who signed)"
        report.problems.append(
            f"{NO_TRUSTED_KEY}: the signature was checked only with the bundle's own "
            f"{PUBLIC_KEY}, which whoever re-signs a bundle replaces; give --public-key "
            "with the store's key ('modelkeep audit key > store.pem')"
        )
        pem = _data(found, PUBLIC_KEY, report)
    data = _data(found, BUNDLE_MANIFEST, report)
    envelope_bytes = _data(found, SIGNATURE, report)
    if pem is None or data is None or envelope_bytes is None:
        return None
    try:
        raw = public_key_from_pem(pem)
        report.key = f"{source}, {key_id(raw)}"
        envelope = decode_envelope(envelope_bytes)
        if envelope.payload_type != PAYLOAD_TYPE or envelope.payload != data:
            report.problems.append(f"{SIGNATURE}: it does not sign {BUNDLE_MANIFEST}")
        verify_envelope(envelope, raw)
        report.checked.append(f"{SIGNATURE}: signature verified with {report.key}")
    except AttestationInvalid as exc:
        report.problems.append(f"{SIGNATURE}: {exc.message}")
    try:
        document = json.loads(data)
        if not isinstance(document, dict) or not isinstance(document.get("entries"), list):
            raise ValueError("no entries list")
    except (ValueError, UnicodeDecodeError) as exc:
        report.problems.append(f"{BUNDLE_MANIFEST}: not a bundle manifest ({exc})")
        return None
    report.model, report.number = document.get("model"), document.get("number")
    report.version_digest = document.get("version_digest")
    return document


def _check_entries(
    found: Mapping[str, Found], document: dict[str, Any], report: BundleCheck
) -> None:
    listed: set[str] = set()
    bad = 0
    for entry in document["entries"]:
        name = entry.get("path") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            report.problems.append(f"{BUNDLE_MANIFEST}: an entry without a path")
            continue
        listed.add(name)
        member = found.get(name)
        if member is None:
            report.problems.append(f"{name}: listed in {BUNDLE_MANIFEST}, missing")
        elif member.size != entry.get("size") or member.digest != entry.get("sha256"):
            report.problems.append(
                f"{name}: sha256 {member.digest} ({member.size} B), the signed manifest "
                f"says {entry.get('sha256')} ({entry.get('size')} B)"
            )
        else:
            continue
        bad += 1
    for name in sorted(set(found) - listed - set(UNLISTED)):
        report.problems.append(f"{name}: in the archive, not in the signed {BUNDLE_MANIFEST}")
    if not bad:
        report.checked.append(f"{BUNDLE_MANIFEST}: all {len(listed)} entries match")


def _check_version(
    found: Mapping[str, Found], document: dict[str, Any], report: BundleCheck
) -> None:
    """The version manifest is the one the bundle names, and lists exactly its files."""
    data = _data(found, MANIFEST, report)
    if data is None:
        return
    digest = sha256_digest(data)
    if digest != document.get("version_digest"):
        report.problems.append(
            f"{MANIFEST}: its sha256 is {digest}, not the version digest "
            f"{document.get('version_digest')}"
        )
    try:
        version = Manifest.parse(data)
    except (ModelkeepError, ValueError, KeyError, TypeError, AttributeError):
        report.problems.append(f"{MANIFEST}: not a version manifest")
        return
    files = {name: m for name, m in found.items() if name.startswith(FILES)}
    for entry in version.files:
        member = files.pop(FILES + entry.path, None)
        if member is None or (member.digest, member.size) != (entry.digest, entry.size):
            report.problems.append(f"{FILES}{entry.path}: not the file {MANIFEST} lists")
    for name in sorted(files):
        report.problems.append(f"{name}: not a file of the version")
    serving = _json(found, SERVING, report)
    if serving is not None and serving.get("digest") != digest:
        report.problems.append(f"{SERVING}: names digest {serving.get('digest')}, not {digest}")
    if not report.problems:
        report.checked.append(
            f"{MANIFEST}: {report.model}@{report.number}, {len(version.files)} file(s), {digest}"
        )


def _data(found: Mapping[str, Found], name: str, report: BundleCheck) -> bytes | None:
    member = found.get(name)
    if member is None or member.data is None:
        report.problems.append(f"{name}: missing from the bundle")
        return None
    return member.data


def _json(found: Mapping[str, Found], name: str, report: BundleCheck) -> dict[str, Any] | None:
    data = _data(found, name, report)
    if data is None:
        return None
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        value = None
    if not isinstance(value, dict):
        report.problems.append(f"{name}: not a JSON object")
        return None
    return value
