"""Deployments over HTTP: the routes, who may use them, and the feed gateways follow
(``GET /api/v1/deployments?env=ENV``: ETag, 304, long-poll)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

import modelkeep
from modelkeep.client.client import Client
from modelkeep.client.http import HttpBackend
from modelkeep.config import Settings
from tests.conftest import FileMaker, live_server, served_app

API = "/api/v1"


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def server(settings: Settings, files: FileMaker) -> Iterator[tuple[TestClient, Callable[..., Any]]]:
    """The API in process with fraud@1..3 and churn@1 pushed, and a caller as the admin."""
    with served_app(settings) as (http, token):

        def as_admin(
            method: str, path: str, headers: dict[str, str] | None = None, **kw: Any
        ) -> Any:
            return http.request(
                method, API + path, headers={**bearer(token), **(headers or {})}, **kw
            )

        mk = Client(HttpBackend("http://testserver", token, http=http), settings)
        for model, count in (("fraud", 3), ("churn", 1)):
            mk.create_model(model)
            for _ in range(count):
                mk.push(model, [files.make()])
        yield http, as_admin


def user(as_admin: Callable[..., Any], name: str, role: str, model: str | None = None) -> str:
    response = as_admin("POST", "/users", json={"name": name, "role": role, "model": model})
    assert response.status_code == 201, response.text
    return str(response.json()["token"]["token"])


def test_deploy_status_history_promote_rollback(
    server: tuple[TestClient, Callable[..., Any]],
) -> None:
    _, as_admin = server
    done = as_admin("POST", "/models/fraud/deployments/prod", json={"version": "1"})
    assert done.status_code == 200, done.text
    assert done.json()["state"]["backends"][0]["role"] == "stable"
    canary = {"version": "2", "canary": 25, "reason": "try", "expect_revision": 1}
    assert as_admin("POST", "/models/fraud/deployments/prod", json=canary).status_code == 200
    status = as_admin("GET", "/models/fraud/deployments/prod").json()
    assert status["revision"] == 2
    assert [(b["ref"], b["weight"]) for b in status["backends"]] == [
        ("fraud@1", 75),
        ("fraud@2", 25),
    ]
    promoted = as_admin("POST", "/models/fraud/deployments/prod/promote", json={"reason": "good"})
    assert promoted.json()["action"] == "promote"
    back = as_admin("POST", "/models/fraud/deployments/prod/rollback", json={"expect_revision": 3})
    assert back.json()["state"]["backends"] == status["backends"]
    history = as_admin("GET", "/models/fraud/deployments/prod/history", params={"limit": 2})
    body = history.json()
    assert [c["revision"] for c in body["items"]] == [1, 2] and body["next"] == 2


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"version": "2", "canary": 150}, 400, "invalid_input"),
        ({"version": "2", "ab": 10}, 400, "invalid_input"),
        ({"version": "2", "canary": 10, "sticky": "header:x"}, 400, "invalid_input"),
        ({"version": "2", "shadow": 10, "ab": 10, "sticky": "header:x"}, 400, "invalid_input"),
        ({"version": "2", "expect_revision": 7}, 409, "deployment_moved"),
        ({"version": "9"}, 404, "version_not_found"),
        ({"version": "2", "weight": 3}, 422, "invalid_input"),
    ],
)
def test_bad_deploys_are_refused_with_their_code_and_change_nothing(
    server: tuple[TestClient, Callable[..., Any]], body: dict[str, Any], status: int, code: str
) -> None:
    _, as_admin = server
    as_admin("POST", "/models/fraud/deployments/prod", json={"version": "1"})
    before = as_admin("GET", "/deployments", params={"env": "prod"}).json()
    refused = as_admin("POST", "/models/fraud/deployments/prod", json=body)
    assert refused.status_code == status, refused.text
    assert refused.json()["error"]["code"] == code
    assert as_admin("GET", "/deployments", params={"env": "prod"}).json() == before


def test_a_releaser_deploys_a_contributor_and_a_viewer_may_not(
    server: tuple[TestClient, Callable[..., Any]],
) -> None:
    http, as_admin = server
    tokens = {role: user(as_admin, role, role) for role in ("releaser", "contributor", "viewer")}
    scoped = user(as_admin, "churn-releaser", "releaser", "churn")
    path = f"{API}/models/fraud/deployments/prod"
    for role in ("contributor", "viewer"):
        refused = http.post(path, json={"version": "1"}, headers=bearer(tokens[role]))
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    refused = http.post(path, json={"version": "1"}, headers=bearer(scoped))
    assert refused.status_code == 403, "a releaser of churn does not deploy fraud"
    done = http.post(path, json={"version": "1"}, headers=bearer(tokens["releaser"]))
    assert done.status_code == 200 and done.json()["actor"] == "releaser"
    for role in ("contributor", "viewer"):
        for action in ("promote", "rollback"):
            refused = http.post(f"{path}/{action}", json={}, headers=bearer(tokens[role]))
            assert refused.status_code == 403
        assert http.get(path, headers=bearer(tokens[role])).status_code == 200


def test_the_feed_lists_only_the_models_the_caller_may_read(
    server: tuple[TestClient, Callable[..., Any]],
) -> None:
    http, as_admin = server
    for model in ("fraud", "churn"):
        as_admin("POST", f"/models/{model}/deployments/prod", json={"version": "1"})
    as_admin("POST", "/models/fraud/deployments/dev", json={"version": "2"})
    everything = as_admin("GET", "/deployments", params={"env": "prod"})
    body = everything.json()
    assert set(body) == {"env", "etag", "deployments"} and body["env"] == "prod"
    assert [d["model"] for d in body["deployments"]] == ["churn", "fraud"]
    assert everything.headers["etag"] == f'"{body["etag"]}"'
    gateway = user(as_admin, "gateway", "runner")  # a global read: the whole environment
    seen = http.get(f"{API}/deployments", params={"env": "prod"}, headers=bearer(gateway))
    assert seen.json() == body
    churn_only = user(as_admin, "churn-viewer", "viewer", "churn")
    seen = http.get(f"{API}/deployments", params={"env": "prod"}, headers=bearer(churn_only))
    assert [d["model"] for d in seen.json()["deployments"]] == ["churn"]
    assert seen.json()["etag"] != body["etag"]
    bad = as_admin("GET", "/deployments", params={"env": "PROD!"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_input"


def test_the_feed_answers_304_while_nothing_changed_and_200_once_it_did(
    server: tuple[TestClient, Callable[..., Any]],
) -> None:
    _, as_admin = server
    as_admin("POST", "/models/fraud/deployments/prod", json={"version": "1"})
    first = as_admin("GET", "/deployments", params={"env": "prod"})
    etag = first.headers["etag"]
    for tag in (etag, etag.strip('"'), f"W/{etag}", f'"other", {etag}'):
        again = as_admin(
            "GET", "/deployments", params={"env": "prod"}, headers={"if-none-match": tag}
        )
        assert again.status_code == 304 and again.headers["etag"] == etag and again.content == b""
    started = time.monotonic()
    waited = as_admin(
        "GET", "/deployments", params={"env": "prod", "wait": 0.5}, headers={"if-none-match": etag}
    )
    assert waited.status_code == 304 and 0.45 <= time.monotonic() - started < 3
    as_admin("POST", "/models/fraud/deployments/dev", json={"version": "2"})  # another env
    same = as_admin("GET", "/deployments", params={"env": "prod"}, headers={"if-none-match": etag})
    assert same.status_code == 304
    as_admin("POST", "/models/fraud/deployments/prod", json={"version": "2", "canary": 5})
    changed = as_admin(
        "GET", "/deployments", params={"env": "prod"}, headers={"if-none-match": etag}
    )
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()["deployments"][0]["revision"] == 2


@pytest.mark.backends("sqlite", "postgresql")
def test_a_long_poll_answers_within_a_second_of_a_change(
    settings: Settings, files: FileMaker
) -> None:
    with live_server(settings) as (url, token), modelkeep.connect(url, token=token) as mk:
        http = httpx.Client(base_url=url + API, headers=bearer(token), timeout=60)
        mk.create_model("fraud")
        for _ in range(2):
            mk.push("fraud", [files.make()])
        mk.deploy("fraud@1", env="prod")
        etag = http.get("/deployments", params={"env": "prod"}).headers["etag"]
        answered: dict[str, Any] = {}

        def poll() -> None:
            response = http.get(
                "/deployments",
                params={"env": "prod", "wait": 20},
                headers={"if-none-match": etag},
            )
            answered["at"] = time.monotonic()
            answered["response"] = response

        waiter = threading.Thread(target=poll)
        waiter.start()
        time.sleep(1.0)
        assert "at" not in answered, "the long-poll waits while nothing changes"
        changed_at = time.monotonic()
        mk.deploy("fraud@2", env="prod", canary=20)
        waiter.join(timeout=20)
        http.close()
    response = answered["response"]
    assert response.status_code == 200
    assert response.json()["deployments"][0]["revision"] == 2
    assert answered["at"] - changed_at < 1.0


@pytest.mark.backends("sqlite")
def test_waiting_gateways_hold_no_worker_thread(settings: Settings, files: FileMaker) -> None:
    """More long-polls wait at once than the server has worker threads (40), and a
    deploy still goes through at once and wakes every one of them."""
    waiters = 48
    with live_server(settings) as (url, token), modelkeep.connect(url, token=token) as mk:
        mk.create_model("fraud")
        for _ in range(2):
            mk.push("fraud", [files.make()])
        mk.deploy("fraud@1", env="prod")
        etag = httpx.get(
            f"{url}{API}/deployments", params={"env": "prod"}, headers=bearer(token)
        ).headers["etag"]
        limits = httpx.Limits(max_connections=waiters + 4)
        with httpx.Client(
            base_url=url + API, headers=bearer(token), timeout=60, limits=limits
        ) as http:

            def poll(_: int) -> int:
                response = http.get(
                    "/deployments",
                    params={"env": "prod", "wait": 25},
                    headers={"if-none-match": etag},
                )
                return response.status_code

            with ThreadPoolExecutor(waiters) as pool:
                polls = [pool.submit(poll, i) for i in range(waiters)]
                time.sleep(1.5)
                assert not any(p.done() for p in polls)
                started = time.monotonic()
                mk.deploy("fraud@2", env="prod", canary=20)
                assert time.monotonic() - started < 3, "the deploy did not wait for a thread"
                codes = [p.result(timeout=20) for p in polls]
                woken = time.monotonic() - started
    assert codes == [200] * waiters
    assert woken < 5
