"""The server applies the path rule of a new version itself (issue 12): a client that
skips the CLI's checks and registers unsafe paths over HTTP is refused with
``unsafe_path``, for model versions, dataset versions and run artifacts alike."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from modelkeep.config import Settings
from tests.conftest import served_app

API = "/api/v1"
DATA = b"weights"
DIGEST = "sha256:" + hashlib.sha256(DATA).hexdigest()

UNSAFE = {
    "file and folder": ["a", "a/b"],
    "case": ["Model.bin", "model.bin"],
    "folder case": ["Sub/x.bin", "sub/y.bin"],
    "NFC and NFD": ["caf\u00e9.bin", "cafe\u0301.bin"],
    "NFD alone": ["cafe\u0301.bin"],
    "newline": ["model\n.bin"],
    "carriage return": ["model\r.bin"],
    "DEL": ["model\x7f.bin"],
    "line separator": ["model\u2028.bin"],
    "part over 255 bytes": ["d/" + "é" * 128],  # 256 bytes, 128 characters
}


@pytest.fixture
def http(settings: Settings) -> Iterator[TestClient]:
    """The API as an admin, on a model ``m``, with the blob ``DATA`` uploaded."""
    with served_app(settings) as (client, token):
        client.headers["authorization"] = f"Bearer {token}"
        assert client.post(f"{API}/models", json={"name": "m"}).status_code == 201
        assert client.put(f"{API}/blobs/{DIGEST}", content=DATA).status_code in (200, 201)
        yield client


def post(http: TestClient, url: str, body: dict[str, Any]) -> Any:
    """POST ``body`` as JSON with non-ASCII escaped: a lone surrogate is sent as the
    escape ``\\udce9``, which a JSON parser reads back as that code point."""
    headers = {"content-type": "application/json"}
    return http.post(f"{API}{url}", content=json.dumps(body), headers=headers)


def entries(paths: list[str]) -> list[dict[str, object]]:
    return [{"path": p, "size": len(DATA), "digest": DIGEST} for p in paths]


def assert_unsafe(response: Any) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "unsafe_path", error
    assert error["hint"], error


@pytest.mark.parametrize("case", sorted(UNSAFE))
def test_a_new_version_with_unsafe_paths_is_refused(http: TestClient, case: str) -> None:
    assert_unsafe(post(http, "/models/m/versions", {"files": entries(UNSAFE[case])}))
    assert http.get(f"{API}/models/m/versions").json()["items"] == []
    assert_unsafe(post(http, "/datasets/d/versions", {"files": entries(UNSAFE[case])}))


def test_a_part_of_255_bytes_and_nfc_names_are_accepted(http: TestClient) -> None:
    paths = ["d/" + "é" * 127 + "x", "caf\u00e9.bin", "Model.bin", "sub/model.bin"]
    response = http.post(f"{API}/models/m/versions", json={"files": entries(paths)})
    assert response.status_code == 201, response.text
    assert sorted(f["path"] for f in response.json()["files"]) == sorted(paths)


def test_a_run_artifact_with_an_unsafe_path_is_refused(http: TestClient) -> None:
    started = http.post(f"{API}/runs", json={"experiment": "e"})
    assert started.status_code == 201, started.text
    run = started.json()["id"]
    for path in ("model\n.bin", "cafe\u0301.bin"):
        body = {"path": path, "size": len(DATA), "digest": DIGEST}
        assert_unsafe(post(http, f"/runs/{run}/artifacts", body))
    assert http.get(f"{API}/runs/{run}").json()["artifacts"] == []


def test_a_path_that_is_not_unicode_is_refused_by_the_schema(http: TestClient) -> None:
    """JSON can carry a lone surrogate (not UTF-8 once encoded): the request parser
    refuses it before the path rule sees it, with the one error shape, never a 500."""
    response = post(http, "/models/m/versions", {"files": entries(["caf\udce9.bin"])})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_input"
    assert http.get(f"{API}/models/m/versions").json()["items"] == []
