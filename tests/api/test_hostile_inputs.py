"""Inputs that made the server fail (500) before, found by fuzzing the API: each is now
refused with the one error shape, on SQLite and on PostgreSQL (which stores no NUL)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from modelkeep.config import Settings
from tests.conftest import served_app

API = "/api/v1"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def http(settings: Settings) -> Iterator[TestClient]:
    """The API as an admin, on a model ``m`` with version 1 in staging and 2 after it."""
    with served_app(settings) as (client, token):
        client.headers["authorization"] = f"Bearer {token}"
        assert client.post(f"{API}/models", json={"name": "m"}).status_code == 201
        for n in (1, 2):
            register(client, f"weights {n}".encode())
        client.post(f"{API}/models/m/promote", json={"version": "1", "to": "staging"})
        client.post(f"{API}/models/m/promote", json={"version": "2", "to": "staging"})
        yield client


def register(http: TestClient, data: bytes, **details: Any) -> Any:
    http.put(f"{API}/blobs/{digest_of(data)}", content=data)
    files = [{"path": "w.bin", "size": len(data), "digest": digest_of(data)}]
    return http.post(f"{API}/models/m/versions", json={"files": files, **details})


def assert_refused(response: Any, code: str) -> None:
    assert response.status_code == 400, response.text
    assert set(response.json()["error"]) == {"code", "message", "hint"}
    assert response.json()["error"]["code"] == code


OUT_OF_RANGE_TIMES = [
    "0001-01-01T00:00:00",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59-01:00",
]


@pytest.mark.parametrize("when", OUT_OF_RANGE_TIMES)
def test_times_out_of_range_are_refused(http: TestClient, when: str) -> None:
    at = http.get(f"{API}/resolve", params={"ref": "m@staging", "at": when})
    assert_refused(at, "invalid_input")
    assert "out of range" in at.json()["error"]["message"]
    assert_refused(http.get(f"{API}/audit", params={"since": when}), "invalid_input")


def test_times_at_the_edges_of_the_calendar_are_answered(http: TestClient) -> None:
    early = http.get(f"{API}/resolve", params={"ref": "m@staging", "at": "0001-01-01T00:00:00Z"})
    assert early.status_code == 404, early.text
    late = http.get(
        f"{API}/resolve", params={"ref": "m@staging", "at": "9999-12-31T23:59:59.999999Z"}
    )
    assert late.json()["number"] == 2
    assert http.get(f"{API}/audit", params={"since": "9999-12-31T23:59:59"}).json() == {
        "items": [],
        "next": None,
    }


NUL = "a\x00b"


def body(**fields: Any) -> dict[str, Any]:
    return {"json": fields}


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "code"),
    [
        ("POST", "/models", body(name="n", description=NUL), "invalid_input"),
        ("PUT", "/models/m/aliases/champ", body(version="1", reason=NUL), "invalid_input"),
        (
            "POST",
            "/models/m/promote",
            body(version="1", to="production", reason=NUL),
            "invalid_input",
        ),
        ("POST", "/models/m/rollback", body(stage="staging", reason=NUL), "invalid_input"),
        ("POST", "/models/m/versions/2/archive", body(reason=NUL), "invalid_input"),
        ("GET", "/models/m/aliases", {"params": {"alias": NUL}}, "invalid_name"),
        ("GET", "/models/m/aliases", {"params": {"alias": "\U0001f600"}}, "invalid_name"),
    ],
)
def test_text_with_nul_is_refused_before_it_reaches_the_database(
    http: TestClient, method: str, path: str, kwargs: dict[str, Any], code: str
) -> None:
    before = http.get(f"{API}/audit").json()["items"]
    assert_refused(http.request(method, API + path, **kwargs), code)
    assert http.get(f"{API}/audit").json()["items"] == before


def test_an_alias_removal_reason_with_nul_is_refused(http: TestClient) -> None:
    http.put(f"{API}/models/m/aliases/champ", json={"version": "1"})
    removed = http.delete(f"{API}/models/m/aliases/champ", params={"reason": NUL})
    assert_refused(removed, "invalid_input")
    assert http.get(f"{API}/models/m/versions/1").json()["aliases"] == ["champ"]


@pytest.mark.parametrize(
    ("details", "code"),
    [
        ({"message": NUL}, "invalid_input"),
        ({"metadata": {"meta": {"k": NUL}}}, "invalid_metadata"),
        ({"metadata": {"params": {"k": NUL}}}, "invalid_metadata"),
    ],
)
def test_a_version_with_nul_in_its_text_is_refused(
    http: TestClient, details: dict[str, Any], code: str
) -> None:
    assert_refused(register(http, b"other weights", **details), code)
    check = http.post(f"{API}/models/m/versions/check", json=details)
    assert_refused(check, code)
    assert [v["number"] for v in http.get(f"{API}/models/m/versions").json()["items"]] == [1, 2]


# integers beyond 64 bits, and request ids fit for the audit chain ------------------------

BEYOND_64_BITS = [2**63, 2**70, -(2**63) - 1]


@pytest.mark.parametrize("number", BEYOND_64_BITS)
def test_cursors_beyond_64_bits_are_refused(http: TestClient, number: int) -> None:
    for path in ("/models/m/versions", "/audit", "/models/m/aliases", "/policy/history"):
        answer = http.get(f"{API}{path}", params={"after": number})
        assert answer.status_code == 422, (path, answer.text)
        assert answer.json()["error"]["code"] == "invalid_input"


@pytest.mark.parametrize("number", BEYOND_64_BITS)
def test_seeds_beyond_64_bits_are_refused(http: TestClient, number: int) -> None:
    run = http.post(f"{API}/runs", json={"experiment": "e", "seed": number})
    assert_refused(run, "invalid_input")
    assert "64 bits" in run.json()["error"]["message"]
    version = register(http, b"seeded", metadata={"seed": number})
    assert version.status_code == 400, version.text
    assert "64 bits" in version.json()["error"]["message"]
    assert http.get(f"{API}/models/m").json()["versions"] == 2  # nothing was registered


def test_the_largest_seed_and_step_are_kept(http: TestClient) -> None:
    run = http.post(f"{API}/runs", json={"experiment": "e", "seed": 2**63 - 1})
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]
    batch = {"names": ["loss"], "steps": [2**63 - 1], "values": [1.0], "at": [1.7e9]}
    assert http.post(f"{API}/runs/{run_id}/metrics", json=batch).status_code == 200
    assert http.get(f"{API}/runs/{run_id}").json()["seed"] == 2**63 - 1


@pytest.mark.parametrize("step", [2**63, -1])
def test_steps_out_of_range_are_refused(http: TestClient, step: int) -> None:
    run_id = http.post(f"{API}/runs", json={"experiment": "e"}).json()["id"]
    batch = {"names": ["loss"], "steps": [step], "values": [1.0], "at": [1.7e9]}
    assert_refused(http.post(f"{API}/runs/{run_id}/metrics", json=batch), "invalid_input")


def test_a_long_or_unprintable_request_id_is_replaced(http: TestClient) -> None:
    for given in ("x" * 30_000, "a b", "id;drop"):
        answer = http.post(f"{API}/models", json={"name": "n"}, headers={"x-request-id": given})
        kept = answer.headers["x-request-id"]
        assert kept != given and len(kept) == 32
        http.post(f"{API}/models", json={"name": "n2"}, headers={"x-request-id": given})
    events = http.get(f"{API}/audit", params={"limit": 1000}).json()["items"]
    assert all(len(e["details"].get("request_id", "")) <= 128 for e in events)


def test_a_plain_request_id_is_kept_and_audited(http: TestClient) -> None:
    given = "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7"
    answer = http.post(f"{API}/models", json={"name": "traced"}, headers={"x-request-id": given})
    assert answer.status_code == 201 and answer.headers["x-request-id"] == given
    events = http.get(f"{API}/audit", params={"model": "traced"}).json()["items"]
    assert [e["details"]["request_id"] for e in events] == [given]
