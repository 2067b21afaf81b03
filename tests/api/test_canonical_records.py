"""Record digests over HTTP are RFC 8785 (JCS) digests: a client in any language can
recompute them (here with the independent ``rfc8785`` package); a report that has no
canonical form (NaN) is refused rather than stored as invalid JSON. SQLite and PostgreSQL
(whose JSONB gives some floats back as integers)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
import rfc8785
from starlette.testclient import TestClient

from modelkeep.config import Settings
from tests.conftest import served_app

API = "/api/v1"
CHECKS = f"{API}/models/m/versions/1/checks"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def http(settings: Settings) -> Iterator[TestClient]:
    """The API as an admin, with version m@1."""
    with served_app(settings) as (client, token):
        client.headers["authorization"] = f"Bearer {token}"
        assert client.post(f"{API}/models", json={"name": "m"}).status_code == 201
        client.put(f"{API}/blobs/{digest_of(b'w')}", content=b"w")
        files = [{"path": "w.bin", "size": 1, "digest": digest_of(b"w")}]
        assert client.post(f"{API}/models/m/versions", json={"files": files}).status_code == 201
        yield client


def as_javascript_reads(value: Any) -> Any:
    """JSON as JavaScript parses it: every number a double (PostgreSQL's JSONB gives the
    float 1e21 back as the integer 1000000000000000000000)."""
    if isinstance(value, dict):
        return {k: as_javascript_reads(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_javascript_reads(v) for v in value]
    if type(value) is int and abs(value) > 2**53 - 1:
        return float(value)
    return value


def check(**metrics: float) -> dict[str, Any]:
    return {"suite": "evaluation", "kind": "evaluation", "metrics": metrics, "passed": True}


def test_a_record_with_600_0_has_the_digest_any_jcs_implementation_gives(
    http: TestClient,
) -> None:
    metrics = {"seconds": 600.0, "tiny": 1e-07, "large": 1.5e16, "huge": 1e21}
    answer = http.post(CHECKS, json=check(**metrics))
    assert answer.status_code == 201, answer.text
    reread = http.get(CHECKS).json()["items"][0]
    assert reread["digest"] == answer.json()["digest"]  # the same after the database
    for shown in (answer.json(), reread):
        record = {k: v for k, v in shown.items() if k not in ("id", "digest")}
        canonical = rfc8785.dumps(as_javascript_reads(record))
        assert b'"seconds":600,' in canonical and b'"tiny":1e-7' in canonical
        assert shown["digest"] == digest_of(canonical)
    events = http.get(f"{API}/audit").json()["items"]
    assert events[-1]["details"]["digest"] == answer.json()["digest"]


def test_a_report_without_a_canonical_form_is_refused(http: TestClient) -> None:
    body = '{"suite":"e","kind":"evaluation","metrics":{},"passed":true,"report":{"x":NaN}}'
    answer = http.post(CHECKS, content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_input"
    assert http.get(CHECKS).json()["items"] == []
