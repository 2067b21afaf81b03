"""The bundle and signature routes: made by the server (it holds the keys), readable by
whoever may read the version, and errors in the API's one shape."""

from __future__ import annotations

import hashlib

from starlette.testclient import TestClient

from tests.api.test_admin_api import API, bearer, create_user
from tests.api.test_api import assert_error, http, push  # noqa: F401 (http: a fixture)


def test_the_server_builds_the_bundle_and_names_its_digest(http: TestClient) -> None:  # noqa: F811
    assert http.post(f"{API}/models", json={"name": "fraud"}).status_code == 201
    version = push(http, "fraud", b"weights", "model.onnx")
    first = http.post(f"{API}/models/fraud/versions/1/bundle")
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "application/gzip"
    digest = "sha256:" + hashlib.sha256(first.content).hexdigest()
    assert first.headers["modelkeep-bundle-digest"] == digest
    assert first.headers["modelkeep-version-digest"] == version["digest"]
    assert (first.headers["modelkeep-model"], first.headers["modelkeep-number"]) == ("fraud", "1")
    again = http.post(f"{API}/models/fraud/versions/latest/bundle")
    assert again.content == first.content
    events = http.get(f"{API}/audit", params={"limit": 100}).json()["items"]
    assert [e["details"]["digest"] for e in events if e["action"] == "version.bundle"] == [digest]


def test_bundle_and_signature_errors_have_the_api_shape(http: TestClient) -> None:  # noqa: F811
    assert_error(http.post(f"{API}/models/nope/versions/1/bundle"), 404, "model_not_found")
    assert http.post(f"{API}/models", json={"name": "fraud"}).status_code == 201
    assert_error(http.post(f"{API}/models/fraud/versions/3/bundle"), 404, "version_not_found")
    assert_error(
        http.post(f"{API}/models/fraud/versions/3/openssf-signature"), 404, "version_not_found"
    )
    assert http.get(f"{API}/audit/key", params={"format": "pem"}).status_code == 422


def test_a_reader_of_another_model_gets_neither(http: TestClient) -> None:  # noqa: F811
    for name in ("fraud", "churn"):
        assert http.post(f"{API}/models", json={"name": name}).status_code == 201
    push(http, "fraud", b"weights")

    def as_admin(method: str, path: str, **kwargs: object) -> object:
        return http.request(method, API + path, **kwargs)  # type: ignore[arg-type]

    secret = create_user(as_admin, "bob", "viewer", "churn")
    for what in ("bundle", "openssf-signature"):
        response = http.post(
            f"{API}/models/fraud/versions/1/{what}",
            headers={**bearer(secret)},
        )
        assert_error(response, 403, "forbidden")
    key = http.get(f"{API}/audit/key", params={"format": "openssf"})
    assert key.status_code == 200 and key.json()["pem"].startswith("-----BEGIN PUBLIC KEY-----")
