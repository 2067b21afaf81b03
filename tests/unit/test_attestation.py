"""Promotion statements in DSSE envelopes: known answers from the DSSE spec, round trips
with a real Ed25519 key, and every way an envelope is refused."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from modelkeep.domain.attestation import (
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    decode_envelope,
    key_id,
    open_envelope,
    pae,
    promotion_statement,
    public_key_from_pem,
    record_digest,
    sign_envelope,
    subject_digest,
    verify_envelope,
)
from modelkeep.domain.audit import canonical_json
from modelkeep.errors import AttestationInvalid, InvalidInput

VERSION_DIGEST = "sha256:" + "ab" * 32
# RFC 8032 section 7.1 TEST 1, the key the DSSE test vectors sign with
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")


def raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def statement(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "store_id": "store-1",
        "model": "fraud",
        "number": 3,
        "version_digest": VERSION_DIGEST,
        "stage": "production",
        "previous": {"number": 2, "digest": "sha256:" + "cd" * 32},
        "policy": {"version": 4, "digest": "sha256:" + "ef" * 32},
        "checks": [
            {
                "id": "7",
                "suite": "eval",
                "digest": "sha256:" + "01" * 32,
                "report_digest": "sha256:" + "02" * 32,
                "passed": True,
            }
        ],
        "approvals": [
            {
                "id": "9",
                "user": "bob",
                "decision": "approve",
                "comment": "ok",
                "at": "2026-03-03T10:00:00+00:00",
                "digest": "sha256:" + "03" * 32,
            }
        ],
        "evaluation": [{"kind": "metric", "rule": "auc >= 0.9", "passed": True, "detail": ""}],
        "actor": "carol",
        "at": "2026-03-03T11:00:00+00:00",
        "override": None,
    }
    fields.update(changes)
    return promotion_statement(**fields)


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def signed(key: Ed25519PrivateKey, document: dict[str, Any] | None = None) -> bytes:
    return sign_envelope(document or statement(), key.sign, key_id(raw_public(key)))


def edit(envelope: bytes, **fields: Any) -> bytes:
    document = json.loads(envelope)
    document.update(fields)
    return json.dumps(document).encode()


# the PAE and the DSSE test vectors ---------------------------------------------------------


def test_pae_of_the_spec_example() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_pae_counts_utf8_bytes_not_characters() -> None:
    payload = b'{"_type":"https://in-toto.io/Statement/v1"}'
    expected = (
        "445353457631203239206170706c69636174696f6e2f766e642e6578c3a46d706c652b6a736f6e2034"
        "33207b225f74797065223a2268747470733a2f2f696e2d746f746f2e696f2f53746174656d656e742f"
        "7631227d"
    )
    assert pae("application/vnd.exämple+json", payload).hex() == expected


def test_pae_of_an_empty_payload_ends_with_a_space() -> None:
    assert pae(PAYLOAD_TYPE, b"") == b"DSSEv1 28 application/vnd.in-toto+json 0 "


def test_a_dsse_test_vector_signature_verifies_with_either_base64_alphabet() -> None:
    """The DSSE repository's url-safe-base64 vector: keyids are only hints, so naming
    the key by our keyid does not change what was signed."""
    envelope = {
        "payload": "-_-_Pj8=",
        "payloadType": PAYLOAD_TYPE,
        "signatures": [
            {
                "keyid": key_id(RFC8032_PUBLIC),
                "sig": "P-_KHICeR7tI6S_YyejJTRtrXhcQyQ2LYPaL8h90KjC9qN8HU_svOQ6TuDOT1HIrsGW886DbWN"
                "WcCmX5twLrAw==",
            }
        ],
    }
    decoded = decode_envelope(json.dumps(envelope).encode())
    assert decoded.payload == bytes.fromhex("fbffbf3e3f")
    verify_envelope(decoded, RFC8032_PUBLIC)
    key = Ed25519PrivateKey.from_private_bytes(RFC8032_SEED)
    assert raw_public(key) == RFC8032_PUBLIC
    assert key.sign(pae(PAYLOAD_TYPE, decoded.payload)) == decoded.signatures[0][1]


def test_a_signature_over_another_payload_type_is_refused() -> None:
    """The DSSE 'payload-type-swapped' vector: the type is covered by the signature."""
    envelope = {
        "payload": "eyJfdHlwZSI6Imh0dHBzOi8vaW4tdG90by5pby9TdGF0ZW1lbnQvdjEifQ==",
        "payloadType": "application/vnd.example.other+json",
        "signatures": [
            {
                "sig": "2WAfaHm5jluo0w+0rk8uVkluELJYWjSmU9x7EUzx+AyteDGJ4/nqyJXfmAUVFIAoQafWm7Ax"
                "BZNw5M9ixNHiCA=="
            }
        ],
    }
    decoded = decode_envelope(json.dumps(envelope).encode())
    with pytest.raises(AttestationInvalid, match="does not verify"):
        verify_envelope(decoded, RFC8032_PUBLIC)
    honest = decode_envelope(json.dumps({**envelope, "payloadType": PAYLOAD_TYPE}).encode())
    verify_envelope(honest, RFC8032_PUBLIC)


# statements and round trips ----------------------------------------------------------------


def test_the_statement_is_an_in_toto_v1_statement_about_the_version() -> None:
    document = statement()
    assert document["_type"] == STATEMENT_TYPE
    assert document["predicateType"] == PREDICATE_TYPE
    assert document["subject"] == [{"name": "fraud@3", "digest": {"sha256": "ab" * 32}}]
    assert subject_digest(document) == VERSION_DIGEST
    assert document["predicate"]["policy"] == {"version": 4, "digest": "sha256:" + "ef" * 32}
    assert document["predicate"]["checks"][0]["id"] == "7"


def test_a_statement_needs_a_real_digest() -> None:
    with pytest.raises(InvalidInput):
        statement(version_digest="sha256:abc")


def test_sign_then_open_gives_the_statement_back(key: Ed25519PrivateKey) -> None:
    document = statement(override={"reason": "hotfix", "unmet": ["approvals >= 2"]})
    envelope = signed(key, document)
    assert open_envelope(envelope, raw_public(key)) == document


def test_the_envelope_is_canonical_dsse_json(key: Ed25519PrivateKey) -> None:
    envelope = signed(key)
    document = json.loads(envelope)
    assert canonical_json(document) == envelope
    assert document["payloadType"] == PAYLOAD_TYPE
    assert base64.b64decode(document["payload"]) == canonical_json(statement())
    [signature] = document["signatures"]
    assert signature["keyid"] == "sha256:" + hashlib.sha256(raw_public(key)).hexdigest()
    signed_bytes = pae(PAYLOAD_TYPE, canonical_json(statement()))
    key.public_key().verify(base64.b64decode(signature["sig"]), signed_bytes)


def test_a_signature_without_keyid_is_tried(key: Ed25519PrivateKey) -> None:
    document = json.loads(signed(key))
    del document["signatures"][0]["keyid"]
    assert open_envelope(json.dumps(document).encode(), raw_public(key)) == statement()


def test_record_digest_is_the_sha256_of_canonical_json() -> None:
    record = {"b": 1, "a": "é"}
    expected = hashlib.sha256('{"a":"é","b":1}'.encode()).hexdigest()
    assert record_digest(record) == "sha256:" + expected


def test_public_key_from_pem(key: Ed25519PrivateKey) -> None:
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert public_key_from_pem(pem) == raw_public(key)
    with pytest.raises(AttestationInvalid, match="not a PEM"):
        public_key_from_pem(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")


# refusals -----------------------------------------------------------------------------------


def test_a_tampered_payload_is_refused(key: Ed25519PrivateKey) -> None:
    forged = statement(stage="staging")
    payload = base64.b64encode(canonical_json(forged)).decode()
    with pytest.raises(AttestationInvalid, match="signature does not verify"):
        open_envelope(edit(signed(key), payload=payload), raw_public(key))


def test_a_tampered_signature_is_refused(key: Ed25519PrivateKey) -> None:
    document = json.loads(signed(key))
    sig = bytearray(base64.b64decode(document["signatures"][0]["sig"]))
    sig[0] ^= 1
    document["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    with pytest.raises(AttestationInvalid, match="signature does not verify"):
        open_envelope(json.dumps(document).encode(), raw_public(key))


def test_another_key_is_refused_and_named(key: Ed25519PrivateKey) -> None:
    other = raw_public(Ed25519PrivateKey.generate())
    with pytest.raises(AttestationInvalid, match=key_id(other)):
        open_envelope(signed(key), other)


def test_a_signature_labelled_for_another_key_is_not_tried(key: Ed25519PrivateKey) -> None:
    envelope = edit(signed(key))
    document = json.loads(envelope)
    document["signatures"][0]["keyid"] = "sha256:" + "00" * 32
    with pytest.raises(AttestationInvalid, match="signature does not verify"):
        open_envelope(json.dumps(document).encode(), raw_public(key))


def test_another_payload_type_signed_as_such_is_refused(key: Ed25519PrivateKey) -> None:
    payload = canonical_json(statement())
    sig = key.sign(pae("application/json", payload))
    envelope = {
        "payload": base64.b64encode(payload).decode(),
        "payloadType": "application/json",
        "signatures": [{"keyid": key_id(raw_public(key)), "sig": base64.b64encode(sig).decode()}],
    }
    with pytest.raises(AttestationInvalid, match="payloadType"):
        open_envelope(json.dumps(envelope).encode(), raw_public(key))


def test_a_relabelled_payload_type_is_refused(key: Ed25519PrivateKey) -> None:
    with pytest.raises(AttestationInvalid, match="signature does not verify"):
        open_envelope(edit(signed(key), payloadType="application/json"), raw_public(key))


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"payload": "not base64!"}, "payload is not valid base64"),
        ({"payload": "QUJD="}, "payload is not valid base64"),
        ({"payload": 12}, "payload is not a base64 string"),
        ({"signatures": [{"sig": "%%%"}]}, "signature 0 is not valid base64"),
        ({"signatures": []}, "no signatures"),
        ({"signatures": ["x"]}, "signature 0 is not a JSON object"),
        ({"payloadType": None}, "no payloadType"),
    ],
)
def test_a_malformed_envelope_names_its_problem(
    key: Ed25519PrivateKey, fields: dict[str, Any], problem: str
) -> None:
    with pytest.raises(AttestationInvalid, match=problem):
        open_envelope(edit(signed(key), **fields), raw_public(key))


def test_an_envelope_that_is_not_json_is_refused(key: Ed25519PrivateKey) -> None:
    with pytest.raises(AttestationInvalid, match="not JSON"):
        open_envelope(b"{oops", raw_public(key))
    with pytest.raises(AttestationInvalid, match="not a JSON object"):
        open_envelope(b"[]", raw_public(key))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda s: s.update(_type="https://in-toto.io/Statement/v0.1"), "_type"),
        (lambda s: s.update(predicateType="https://slsa.dev/provenance/v1"), "predicateType"),
        (lambda s: s.update(subject=[]), "exactly one"),
        (lambda s: s["subject"][0]["digest"].update(sha256="AB" * 32), "64 lowercase hex"),
        (lambda s: s["subject"][0].update(name="fraud@4"), "named 'fraud@4'"),
        (lambda s: s["predicate"].update(version_digest="sha256:" + "cd" * 32), "version_digest"),
        (lambda s: s.update(predicate=[]), "predicate is not a JSON object"),
    ],
)
def test_a_signed_statement_of_the_wrong_shape_is_refused(
    key: Ed25519PrivateKey, change: Any, problem: str
) -> None:
    document = statement()
    change(document)
    with pytest.raises(AttestationInvalid, match=problem):
        open_envelope(signed(key, document), raw_public(key))
