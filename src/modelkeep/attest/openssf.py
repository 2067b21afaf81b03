"""OpenSSF model-signing signatures (github.com/sigstore/model-transparency, v1.0 format).

``modelkeep sign NAME@REF -o FILE`` writes what ``model_signing sign key`` would have
written for the version's files, built from the manifest's sha256 digests instead of
re-hashing them, so that ``model_signing verify key DIR --signature FILE --public_key
PEM`` passes on a pulled copy of the version. The file is a Sigstore bundle (media type
``application/vnd.dev.sigstore.bundle.v0.3+json``) holding a DSSE envelope of an in-toto
v1 statement:

- ``predicateType`` ``https://model_signing/signature/v1.0``;
- ``predicate.serialization``: ``{"method": "files", "hash_type": "sha256",
  "allow_symlinks": false}``; ``predicate.resources``: one
  ``{"name": PATH, "algorithm": "sha256", "digest": HEX}`` per file, sorted by path;
- one ``subject`` named after the model, whose sha256 is that of the concatenated raw
  32-byte digests of the resources, in their order.

The signature is ECDSA P-256 with SHA-256 (DER) over the DSSE pre-authentication
encoding; the bundle's ``verificationMaterial.publicKey.hint`` is the hex sha256 of the
public key's SubjectPublicKeyInfo PEM, as model_signing writes and checks it. That tool
accepts only NIST curves, hence a P-256 key beside the store's Ed25519 audit key.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from modelkeep.domain.attestation import pae
from modelkeep.domain.canonical import canonical_json
from modelkeep.domain.digest import hex_part
from modelkeep.domain.manifest import FileEntry

BUNDLE_MEDIA_TYPE = "application/vnd.dev.sigstore.bundle.v0.3+json"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://model_signing/signature/v1.0"


def statement(model_name: str, files: Sequence[FileEntry]) -> dict[str, Any]:
    """The in-toto statement model_signing signs for these files."""
    ordered = sorted(files, key=lambda f: f.path)
    root = hashlib.sha256()
    resources = []
    for entry in ordered:
        hex_digest = hex_part(entry.digest)
        root.update(bytes.fromhex(hex_digest))
        resources.append({"name": entry.path, "algorithm": "sha256", "digest": hex_digest})
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model_name, "digest": {"sha256": root.hexdigest()}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "serialization": {"method": "files", "hash_type": "sha256", "allow_symlinks": False},
            "resources": resources,
        },
    }


def signature_bundle(
    model_name: str,
    files: Sequence[FileEntry],
    sign: Callable[[bytes], bytes],
    public_key_pem: bytes,
) -> bytes:
    """The Sigstore bundle (JSON bytes) of the statement, signed by ``sign`` (ECDSA
    P-256 SHA-256, DER) with the key whose SubjectPublicKeyInfo PEM is given."""
    payload = canonical_json(statement(model_name, files))
    signature = sign(pae(PAYLOAD_TYPE, payload))
    document = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {
            "publicKey": {"hint": hashlib.sha256(public_key_pem).hexdigest()},
            "tlogEntries": [],
        },
        "dsseEnvelope": {
            "payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": PAYLOAD_TYPE,
            "signatures": [{"sig": base64.b64encode(signature).decode("ascii")}],
        },
    }
    return canonical_json(document)
