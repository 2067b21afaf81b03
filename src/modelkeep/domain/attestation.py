"""Signed promotion attestations: an in-toto v1 Statement in a DSSE envelope.

Every promotion of a version to a stage writes one. The *statement* binds the version
digest (its subject) to the evidence that justified the promotion: the policy in force,
the check results and approvals (each named by its record digest), the rule outcomes and
any admin override. The *envelope* carries the statement's canonical JSON and the store's
Ed25519 signature over its DSSE pre-authentication encoding, so anyone holding the store's
public key can check it offline with any DSSE tool:

    {"payload": base64(canonical statement),
     "payloadType": "application/vnd.in-toto+json",
     "signatures": [{"keyid": "sha256:<hex of sha256(raw public key)>", "sig": base64(sig)}]}

DSSE (github.com/secure-systems-lab/dsse, protocol.md) signs
``PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`` where LEN is the
byte length in ASCII decimal; verifiers accept standard and URL-safe base64, and the keyid
only narrows which signatures are tried, it never decides anything.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from modelkeep.domain.canonical import canonical_forms, canonical_json
from modelkeep.domain.digest import PREFIX, is_digest, sha256_digest
from modelkeep.errors import AttestationInvalid, InvalidInput

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://modelkeep.dev/attestations/promotion/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
DEPLOYMENT_PREDICATE_TYPE = "https://modelkeep.dev/attestations/deployment/v1"

_HEX64 = re.compile(r"[0-9a-f]{64}")
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")


def record_digest(record: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of a record's canonical JSON: how a statement names evidence."""
    return sha256_digest(canonical_json(dict(record)))


def record_digests(record: Mapping[str, Any]) -> tuple[str, ...]:
    """Every digest ``record`` may have been named by: its canonical one first, then the
    legacy one of a record made before canonical form 2 (``domain/canonical.py``)."""
    return tuple(sha256_digest(form) for form in canonical_forms(dict(record)))


def key_id(public_raw: bytes) -> str:
    """The keyid of a raw 32-byte Ed25519 public key: ``sha256:<hex of sha256(key)>``."""
    return sha256_digest(public_raw)


def public_key_from_pem(pem: bytes) -> bytes:
    """The raw 32 bytes of an Ed25519 SubjectPublicKeyInfo PEM key."""
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise AttestationInvalid(f"the public key is not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AttestationInvalid("the public key is not an Ed25519 key")
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


# the statement ----------------------------------------------------------------------------


def promotion_statement(
    *,
    store_id: str,
    model: str,
    number: int,
    version_digest: str,
    stage: str,
    previous: Mapping[str, Any] | None,
    policy: Mapping[str, Any] | None,
    checks: Sequence[Mapping[str, Any]],
    approvals: Sequence[Mapping[str, Any]],
    evaluation: Sequence[Mapping[str, Any]],
    actor: str,
    at: str,
    override: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The in-toto v1 Statement that ``model@number`` (``version_digest``) went to
    ``stage``, with the evidence that justified it (see the module docstring)."""
    if not is_digest(version_digest):
        raise InvalidInput(f"{version_digest!r} is not a digest", "write it as sha256:<64 hex>")
    predicate = {
        "store_id": store_id,
        "model": model,
        "number": number,
        "version_digest": version_digest,
        "stage": stage,
        "previous": _plain(previous),
        "policy": _plain(policy),
        "checks": [_plain(c) for c in checks],
        "approvals": [_plain(a) for a in approvals],
        "evaluation": [_plain(e) for e in evaluation],
        "actor": actor,
        "at": at,
        "override": _plain(override),
    }
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": f"{model}@{number}", "digest": {"sha256": version_digest[7:]}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": predicate,
    }


def deployment_statement(
    *,
    store_id: str,
    state: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    action: str,
    policy: Mapping[str, Any] | None,
    actor: str,
    at: str,
    reason: str | None,
) -> dict[str, Any]:
    """The in-toto v1 Statement that a deployment's desired state became ``state`` (a
    ``DesiredState.to_dict()``): its subjects are the versions it serves, by digest."""
    subjects = []
    for backend in state["backends"]:
        if not is_digest(backend["digest"]):
            raise InvalidInput(f"{backend['digest']!r} is not a digest", "sha256:<64 hex>")
        subjects.append({"name": backend["ref"], "digest": {"sha256": backend["digest"][7:]}})
    predicate = {
        "store_id": store_id,
        "action": action,
        "state": _plain(state),
        "previous": _plain(previous),
        "policy": _plain(policy),
        "actor": actor,
        "at": at,
        "reason": reason,
    }
    return {
        "_type": STATEMENT_TYPE,
        "subject": subjects,
        "predicateType": DEPLOYMENT_PREDICATE_TYPE,
        "predicate": predicate,
    }


def _plain(value: Any) -> Any:
    """A JSON copy of ``value`` (mappings become dicts, tuples lists), so the statement
    is exactly what ``canonical_json`` will sign."""
    if value is None:
        return None
    return json.loads(canonical_json(dict(value) if isinstance(value, Mapping) else value))


def subject_digest(statement: Mapping[str, Any]) -> str:
    """The attested version digest, ``sha256:<hex>``."""
    return PREFIX + str(statement["subject"][0]["digest"]["sha256"])


# DSSE -------------------------------------------------------------------------------------


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding: the bytes that are signed."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign_envelope(
    statement: Mapping[str, Any], sign: Callable[[bytes], bytes], keyid: str
) -> bytes:
    """The DSSE envelope of ``statement``, signed by ``sign``, as canonical JSON bytes."""
    payload = canonical_json(dict(statement))
    signature = sign(pae(PAYLOAD_TYPE, payload))
    envelope = {
        "payload": base64.b64encode(payload).decode("ascii"),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{"keyid": keyid, "sig": base64.b64encode(signature).decode("ascii")}],
    }
    return canonical_json(envelope)


@dataclass(frozen=True)
class Envelope:
    """A decoded DSSE envelope; nothing in it is trusted until ``verify_envelope``."""

    payload_type: str
    payload: bytes
    signatures: tuple[tuple[str | None, bytes], ...]
    """``(keyid or None, signature bytes)`` each."""


def decode_envelope(data: bytes) -> Envelope:
    """Parse the envelope JSON; ``AttestationInvalid`` names what is malformed."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AttestationInvalid(f"the envelope is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise AttestationInvalid("the envelope is not a JSON object")
    payload_type = document.get("payloadType")
    if not isinstance(payload_type, str):
        raise AttestationInvalid("the envelope has no payloadType string")
    payload = _b64(document.get("payload"), "payload")
    raw_signatures = document.get("signatures")
    if not isinstance(raw_signatures, list) or not raw_signatures:
        raise AttestationInvalid("the envelope has no signatures list")
    signatures = tuple(_signature(s, i) for i, s in enumerate(raw_signatures))
    return Envelope(payload_type, payload, signatures)


def _signature(entry: Any, index: int) -> tuple[str | None, bytes]:
    if not isinstance(entry, dict):
        raise AttestationInvalid(f"signature {index} is not a JSON object")
    keyid = entry.get("keyid")
    if keyid is not None and not isinstance(keyid, str):
        raise AttestationInvalid(f"signature {index} has a keyid that is not a string")
    return keyid or None, _b64(entry.get("sig"), f"signature {index}")


def _b64(text: Any, what: str) -> bytes:
    """Standard or URL-safe base64, padded, strictly decoded (DSSE accepts either)."""
    if not isinstance(text, str):
        raise AttestationInvalid(f"the envelope's {what} is not a base64 string")
    standard = text.replace("-", "+").replace("_", "/")
    if "=" not in standard:
        standard += "=" * (-len(standard) % 4)
    if len(standard) % 4 or not _BASE64.fullmatch(standard):
        raise AttestationInvalid(f"the envelope's {what} is not valid base64")
    try:
        return base64.b64decode(standard, validate=True)
    except (binascii.Error, ValueError):
        raise AttestationInvalid(f"the envelope's {what} is not valid base64") from None


def verify_envelope(envelope: Envelope, public_key: bytes) -> None:
    """Accept if a signature meant for ``public_key`` (its keyid, or none) verifies over
    the PAE of the envelope's own payload type and payload."""
    keyid = key_id(public_key)
    try:
        key = Ed25519PublicKey.from_public_bytes(public_key)
    except ValueError:
        raise AttestationInvalid("the public key is not a raw 32-byte Ed25519 key") from None
    signed = pae(envelope.payload_type, envelope.payload)
    for sig_keyid, signature in envelope.signatures:
        if sig_keyid not in (None, keyid):
            continue
        try:
            key.verify(signature, signed)
        except InvalidSignature:
            continue
        return
    raise AttestationInvalid(f"signature does not verify with the store's key {keyid}")


def parse_statement(envelope: Envelope) -> dict[str, Any]:
    """The promotion statement inside a (verified) envelope, its shape checked."""
    if envelope.payload_type != PAYLOAD_TYPE:
        raise AttestationInvalid(f"payloadType is {envelope.payload_type!r}, not {PAYLOAD_TYPE!r}")
    try:
        statement = json.loads(envelope.payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise AttestationInvalid(f"the payload is not JSON ({exc})") from None
    problem = statement_problem(statement)
    if problem:
        raise AttestationInvalid(problem)
    assert isinstance(statement, dict)
    return statement


def statement_problem(statement: Any) -> str:
    """What makes ``statement`` not a modelkeep promotion statement; "" if nothing."""
    if not isinstance(statement, dict):
        return "the payload is not a JSON object"
    if statement.get("_type") != STATEMENT_TYPE:
        return f"_type is {statement.get('_type')!r}, not {STATEMENT_TYPE!r}"
    if statement.get("predicateType") != PREDICATE_TYPE:
        return f"predicateType is {statement.get('predicateType')!r}, not {PREDICATE_TYPE!r}"
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        return "the predicate is not a JSON object"
    return _subject_problem(statement.get("subject"), predicate)


def _subject_problem(subject: Any, predicate: Mapping[str, Any]) -> str:
    if not isinstance(subject, list) or len(subject) != 1 or not isinstance(subject[0], dict):
        return "the subject is not a list of exactly one entry"
    digest = subject[0].get("digest")
    hex_ = digest.get("sha256") if isinstance(digest, dict) else None
    if not isinstance(hex_, str) or not _HEX64.fullmatch(hex_):
        return "the subject has no sha256 digest of 64 lowercase hex digits"
    if predicate.get("version_digest") != PREFIX + hex_:
        return "the subject's digest is not the predicate's version_digest"
    name = f"{predicate.get('model')}@{predicate.get('number')}"
    if subject[0].get("name") != name:
        return f"the subject is named {subject[0].get('name')!r}, not {name!r}"
    return ""


def open_envelope(data: bytes, public_key: bytes) -> dict[str, Any]:
    """The statement of a DSSE envelope whose signature ``public_key`` (raw 32 bytes)
    verifies; ``AttestationInvalid`` names the first problem otherwise."""
    envelope = decode_envelope(data)
    verify_envelope(envelope, public_key)
    return parse_statement(envelope)
