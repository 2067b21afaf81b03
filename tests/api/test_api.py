"""The HTTP API itself: status codes, the one error shape, streaming, pagination."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from modelkeep.config import Settings
from modelkeep.entrypoints.api.app import MAX_JSON_BYTES
from tests.conftest import served_app


@pytest.fixture
def http(settings: Settings) -> Iterator[TestClient]:
    """The API as an admin."""
    with served_app(settings) as (client, token):
        client.headers["authorization"] = f"Bearer {token}"
        yield client


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "hint"}
    assert body["error"]["code"] == code


def push(http: TestClient, model: str, data: bytes, path: str = "w.bin") -> dict[str, Any]:
    put = http.put(f"/api/v1/blobs/{digest_of(data)}", content=data)
    assert put.status_code == 201, put.text
    files = [{"path": path, "size": len(data), "digest": digest_of(data)}]
    response = http.post(f"/api/v1/models/{model}/versions", json={"files": files})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_health_checks(http: TestClient) -> None:
    assert http.get("/healthz").json() == {"status": "ok"}
    assert http.get("/readyz").json() == {"status": "ready"}


def test_openapi_describes_every_route(http: TestClient) -> None:
    spec = http.get("/openapi.json").json()
    paths = set(spec["paths"])
    for expected in (
        "/api/v1/models",
        "/api/v1/models/{name}/versions",
        "/api/v1/resolve",
        "/api/v1/blobs/{digest}",
        "/api/v1/audit",
        "/healthz",
        "/readyz",
    ):
        assert expected in paths


def test_a_version_round_trips_through_the_api(http: TestClient) -> None:
    assert http.post("/api/v1/models", json={"name": "m"}).status_code == 201
    version = push(http, "m", b"weights")
    assert version["number"] == 1
    assert http.get("/api/v1/models/m/versions/1").json() == version
    resolved = http.get("/api/v1/resolve", params={"ref": "m@latest"}).json()
    assert resolved == {"model": "m", "ref": "latest", "number": 1, "digest": version["digest"]}
    blob = http.get(f"/api/v1/blobs/{digest_of(b'weights')}")
    assert blob.content == b"weights"
    missing = http.post(
        "/api/v1/blobs/missing", json={"digests": [digest_of(b"weights"), digest_of(b"other")]}
    )
    assert missing.json() == {"missing": [digest_of(b"other")]}


def test_lists_are_keyset_paginated(http: TestClient) -> None:
    for name in ("a", "b", "c"):
        http.post("/api/v1/models", json={"name": name})
    first = http.get("/api/v1/models", params={"limit": 2}).json()
    assert [m["name"] for m in first["items"]] == ["a", "b"]
    assert first["next"] == "b"
    second = http.get("/api/v1/models", params={"limit": 2, "after": "b"}).json()
    assert [m["name"] for m in second["items"]] == ["c"]
    assert second["next"] is None
    for i in range(3):
        push(http, "a", f"w{i}".encode())
    page = http.get("/api/v1/models/a/versions", params={"limit": 2, "after": 1}).json()
    assert [v["number"] for v in page["items"]] == [2, 3]
    audit = http.get("/api/v1/audit", params={"limit": 2}).json()
    assert [e["seq"] for e in audit["items"]] == [1, 2] and audit["next"] == 2


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "code"),
    [
        ("GET", "/api/v1/models/nope", {}, 404, "model_not_found"),
        ("GET", "/api/v1/nowhere", {}, 404, "not_found"),
        ("POST", "/api/v1/models", {"json": {"name": "Bad Name"}}, 400, "invalid_name"),
        ("POST", "/api/v1/models", {"json": {"name": "m", "colour": "red"}}, 422, "invalid_input"),
        (
            "POST",
            "/api/v1/models",
            {"content": b"{not json", "headers": {"content-type": "application/json"}},
            422,
            "invalid_input",
        ),
        ("GET", "/api/v1/resolve", {"params": {"ref": "m@"}}, 400, "invalid_ref"),
        ("PUT", "/api/v1/blobs/sha256:abc", {"content": b"x"}, 400, "invalid_input"),
    ],
)
def test_bad_requests_get_the_one_error_shape(
    http: TestClient, method: str, path: str, kwargs: dict[str, Any], status: int, code: str
) -> None:
    assert_error(http.request(method, path, **kwargs), status, code)


@pytest.mark.parametrize("path", ["../etc/passwd", "/abs", "a\\\\b", "a/./b", "a\u0000b"])
def test_unsafe_manifest_paths_are_refused(http: TestClient, path: str) -> None:
    http.post("/api/v1/models", json={"name": "m"})
    http.put(f"/api/v1/blobs/{digest_of(b'x')}", content=b"x")
    files = [{"path": path, "size": 1, "digest": digest_of(b"x")}]
    response = http.post("/api/v1/models/m/versions", json={"files": files})
    assert_error(response, 400, "unsafe_path")
    assert http.get("/api/v1/models/m/versions").json()["items"] == []


def test_a_blob_whose_bytes_do_not_match_is_refused(http: TestClient, settings: Settings) -> None:
    response = http.put(f"/api/v1/blobs/{digest_of(b'claimed')}", content=b"actual")
    assert_error(response, 422, "digest_mismatch")
    assert http.post("/api/v1/blobs/missing", json={"digests": [digest_of(b"actual")]}).json()[
        "missing"
    ]


def test_a_body_shorter_than_its_content_length_stores_nothing(http: TestClient) -> None:
    data = b"0123456789"
    response = http.put(
        f"/api/v1/blobs/{digest_of(data)}", content=data[:5], headers={"content-length": "10"}
    )
    assert response.status_code in (400, 422), response.text
    assert http.post("/api/v1/blobs/missing", json={"digests": [digest_of(data)]}).json()[
        "missing"
    ] == [digest_of(data)]


def test_oversized_json_is_refused_before_it_is_read(http: TestClient) -> None:
    response = http.post(
        "/api/v1/models",
        content=b"{}",
        headers={"content-length": str(MAX_JSON_BYTES + 1), "content-type": "application/json"},
    )
    assert_error(response, 413, "invalid_input")


def test_registering_unuploaded_files_is_refused(http: TestClient) -> None:
    http.post("/api/v1/models", json={"name": "m"})
    files = [{"path": "w.bin", "size": 3, "digest": digest_of(b"abc")}]
    response = http.post("/api/v1/models/m/versions", json={"files": files})
    assert_error(response, 404, "blob_not_found")


def test_every_response_names_its_request(http: TestClient) -> None:
    response = http.get("/healthz", headers={"x-request-id": "req-42"})
    assert response.headers["x-request-id"] == "req-42"
    assert len(http.get("/healthz").headers["x-request-id"]) == 32
