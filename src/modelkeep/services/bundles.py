"""Serving bundles and OpenSSF signatures of a version, signed with the store's keys.

``build`` writes the version's deterministic, signed bundle (attest/serving.py) and
records its digest on the version: a ``version.bundle`` audit event, once per distinct
digest, which ``lineage`` and the audit log show. ``openssf_signature`` signs the
version's files for OpenSSF's ``model_signing verify key`` (attest/openssf.py) with the
store's P-256 key. Both only read the version: whoever may read it may have them. Both
list the files of the stored manifest, checked against the version digest, never the
file rows alone (a changed row must not get into a signed bundle or signature).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import BinaryIO

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelkeep.attest import openssf, serving
from modelkeep.attest.serving import BuiltBundle
from modelkeep.domain import access
from modelkeep.domain.digest import PREFIX, sha256_digest
from modelkeep.domain.events import EventKind
from modelkeep.domain.manifest import Manifest
from modelkeep.domain.versions import Version
from modelkeep.errors import DigestMismatch, StoreUnavailable
from modelkeep.ports.blobs import AuditSigner, ModelSigner
from modelkeep.ports.unit_of_work import Transaction
from modelkeep.services import files as file_service
from modelkeep.services import integrity, versions
from modelkeep.services.context import ServiceContext


class _Counting:
    """Writes through to ``out``, hashing and counting the bytes."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        self.size += len(data)
        self._out.write(data)
        return len(data)

    def flush(self) -> None:
        self._out.flush()


def _checked_version(ctx: ServiceContext, ref: str) -> Version:
    """The version of ``ref``, refused (``record_tampered``) if its row or file list is
    not what its push recorded, as ``pull`` refuses it."""
    version = versions.get_version(ctx, ref)
    version.check_files_kept()
    with ctx.store.transaction() as tx:
        integrity.check_version(tx, version)
    return version


def build(ctx: ServiceContext, ref: str, out: BinaryIO) -> BuiltBundle:
    """Write the bundle of ``ref`` to ``out`` and record its digest on the version."""
    version = _checked_version(ctx, ref)
    manifest = _manifest_bytes(ctx, version)
    listed = Manifest.parse(manifest).files
    with ctx.store.transaction() as tx:
        attestations = tx.governance.attestations(version.model, version.number)
    config = serving.serving_config(
        version.model,
        version.number,
        version.digest,
        [f.path for f in listed],
        [{"stage": a.stage, "envelope_digest": a.envelope_digest} for a in attestations],
    )
    signer = _audit_signer(ctx)
    raw = signer.public_key(create=True) or b""
    inputs = serving.BundleInputs(
        model=version.model,
        number=version.number,
        manifest=manifest,
        open_file=lambda digest: file_service.open_file(ctx, digest),
        serving=config,
        lock=serving.runtime_lock(),
        public_key_pem=_pem(raw),
        sign=signer.sign,
        public_key_raw=raw,
    )
    counting = _Counting(out)
    serving.write_bundle(inputs, counting)  # type: ignore[arg-type]
    built = BuiltBundle(
        version.model,
        version.number,
        version.digest,
        PREFIX + counting.hasher.hexdigest(),
        counting.size,
    )
    _record(ctx, version, built)
    return built


def _manifest_bytes(ctx: ServiceContext, version: Version) -> bytes:
    data = ctx.blobs.read_bytes(version.digest)
    if sha256_digest(data) != version.digest:
        raise DigestMismatch(
            f"the manifest of {version.ref} does not hash to its digest {version.digest}",
            "run 'modelkeep verify' on the version and restore it from a backup",
        )
    return data


def _record(ctx: ServiceContext, version: Version, built: BuiltBundle) -> None:
    """A ``version.bundle`` event, unless this digest is recorded on the version already
    (a build is deterministic: building again records nothing new)."""
    with ctx.store.transaction(write=True) as tx:
        if built.digest in bundle_digests(tx, version.ref):
            return
        details = {"digest": built.digest, "version_digest": version.digest, "size": built.size}
        ctx.record_event(tx, EventKind.VERSION_BUNDLE, version.ref, details, ctx.clock())
        tx.commit()


def bundle_digests(tx: Transaction, version_ref: str) -> list[str]:
    """The bundle digests recorded on ``NAME@N``, oldest first."""
    return [
        str(e.details.get("digest"))
        for e in tx.audit.about([version_ref])
        if e.action == EventKind.VERSION_BUNDLE.value and e.subject == version_ref
    ]


def recorded_bundles(ctx: ServiceContext, refs: Sequence[str]) -> dict[str, list[str]]:
    """``NAME@N`` -> its recorded bundle digests, for versions the caller has read."""
    with ctx.store.transaction() as tx:
        return {ref: bundle_digests(tx, ref) for ref in refs}


def _audit_signer(ctx: ServiceContext) -> AuditSigner:
    if ctx.signer is None:
        raise StoreUnavailable(
            "this registry was opened without a signing key: bundles are signed",
            "open it with modelkeep.connect() or set MODELKEEP_SIGNING_KEY",
        )
    return ctx.signer


def _pem(raw: bytes) -> bytes:
    return Ed25519PublicKey.from_public_bytes(raw).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


# OpenSSF model signing ---------------------------------------------------------------------


def openssf_signature(ctx: ServiceContext, ref: str) -> bytes:
    """The model_signing signature (Sigstore bundle JSON) of the version's files."""
    version = _checked_version(ctx, ref)
    listed = Manifest.parse(_manifest_bytes(ctx, version)).files
    signer = _model_signer(ctx)
    return openssf.signature_bundle(version.model, listed, signer.sign, signer.public_key_pem())


def openssf_public_key(ctx: ServiceContext) -> str:
    """The PEM public key that checks ``openssf_signature``, made on first use."""
    ctx.authorize(access.READ, None)
    return _model_signer(ctx).public_key_pem().decode("ascii")


def _model_signer(ctx: ServiceContext) -> ModelSigner:
    if ctx.model_signer is None:
        raise StoreUnavailable(
            "this registry was opened without a model-signing key",
            "open it with modelkeep.connect() or 'modelkeep server'",
        )
    return ctx.model_signer
