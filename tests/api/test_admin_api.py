"""Users, grants and tokens over HTTP; and every route's authentication and authorisation
through the server (the role matrix is computed from ``decide()``, so this checks the
wiring, not a copy of the table)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.routing import iter_route_contexts
from starlette.testclient import TestClient

from modelkeep.bootstrap import open_context
from modelkeep.client.client import Client
from modelkeep.client.http import HttpBackend
from modelkeep.config import Settings
from modelkeep.domain import access
from modelkeep.domain.access import ROLES, Actor, Grant
from modelkeep.errors import Forbidden, GrantNotFound, InvalidInput, TokenNotFound, Unauthenticated
from modelkeep.services import admin
from tests.api.test_api import assert_error, digest_of
from tests.conftest import CliRunnerInProcess, live_server, served_app

API = "/api/v1"
TOKEN = re.compile(r"^mk_[A-Za-z0-9_-]{43}$")
PUBLIC = {"/healthz", "/readyz", "/openapi.json", "/redoc"}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def server(settings: Settings) -> Iterator[tuple[TestClient, str]]:
    """The API served in process, with no default credentials, and an admin's token."""
    with served_app(settings) as (http, token):
        yield http, token


@pytest.fixture
def as_admin(server: tuple[TestClient, str]) -> Callable[..., Any]:
    http, token = server

    def call(method: str, path: str, **kwargs: Any) -> Any:
        return http.request(method, API + path, headers=bearer(token), **kwargs)

    return call


def create_user(
    as_admin: Callable[..., Any], name: str, role: str, model: str | None = None
) -> str:
    response = as_admin("POST", "/users", json={"name": name, "role": role, "model": model})
    assert response.status_code == 201, response.text
    return str(response.json()["token"]["token"])


# users and tokens -------------------------------------------------------------------------


def test_an_admin_creates_a_user_whose_token_is_shown_once_and_authenticates(
    server: tuple[TestClient, str], as_admin: Callable[..., Any]
) -> None:
    http, _ = server
    assert as_admin("POST", "/models", json={"name": "fraud"}).status_code == 201
    response = as_admin(
        "POST", "/users", json={"name": "alice", "role": "contributor", "model": "fraud"}
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == {"user", "token"}
    user, token = created["user"], created["token"]
    assert user["name"] == "alice" and user["tokens"] == 1 and user["disabled_at"] is None
    assert user["grants"] == [{"role": "contributor", "model": "fraud"}]
    assert user["created_by"] == "test-admin"
    secret = token["token"]
    assert TOKEN.match(secret)
    assert token["user"] == "alice" and token["expires_at"] is None

    pushed = http.put(f"{API}/blobs/{digest_of(b'w')}", content=b"w", headers=bearer(secret))
    assert pushed.status_code == 201, pushed.text
    models = http.get(f"{API}/models", headers=bearer(secret))
    assert [m["name"] for m in models.json()["items"]] == ["fraud"]

    another = as_admin("POST", "/tokens", json={"user": "alice", "label": "ci", "expires_in": 60})
    assert another.status_code == 201, another.text
    second = another.json()
    assert TOKEN.match(second["token"]) and second["label"] == "ci"
    assert second["state"] == "active" and second["expires_at"] is not None
    assert http.get(f"{API}/models", headers=bearer(second["token"])).status_code == 200

    listings = [
        as_admin("GET", "/users"),
        as_admin("GET", "/users/alice"),
        as_admin("GET", "/tokens"),
        as_admin("GET", "/tokens", params={"user": "alice"}),
        as_admin("GET", "/audit"),
    ]
    for listing in listings:
        assert listing.status_code == 200, listing.text
        for shown in (secret, second["token"]):
            assert shown not in listing.text
            assert hashlib.sha256(shown.encode()).hexdigest() not in listing.text
    tokens = as_admin("GET", "/tokens", params={"user": "alice"}).json()["items"]
    assert [(t["id"], t["label"], t["state"]) for t in tokens] == [
        (token["id"], None, "active"),
        (second["id"], "ci", "active"),
    ]
    assert all("token" not in t for t in tokens)


def test_grants_disable_enable_and_revoke_through_the_api(
    server: tuple[TestClient, str], as_admin: Callable[..., Any]
) -> None:
    http, _ = server
    as_admin("POST", "/models", json={"name": "fraud"})
    secret = create_user(as_admin, "bob", "viewer")
    granted = as_admin("POST", "/users/bob/grants", json={"role": "releaser", "model": "fraud"})
    assert granted.status_code == 200, granted.text
    assert granted.json()["grants"] == [
        {"role": "viewer", "model": None},
        {"role": "releaser", "model": "fraud"},
    ]
    revoked = as_admin("DELETE", "/users/bob/grants", params={"role": "viewer"})
    assert revoked.json()["grants"] == [{"role": "releaser", "model": "fraud"}]
    assert_error(
        as_admin("DELETE", "/users/bob/grants", params={"role": "viewer"}), 404, "grant_not_found"
    )
    assert_error(
        as_admin("POST", "/users/bob/grants", json={"role": "owner"}), 400, "invalid_input"
    )
    assert_error(
        as_admin("POST", "/users/bob/grants", json={"role": "viewer", "model": "nope"}),
        404,
        "model_not_found",
    )
    assert_error(as_admin("GET", "/users/nobody"), 404, "user_not_found")
    assert_error(as_admin("GET", "/users/Bad%20Name"), 400, "invalid_name")
    assert_error(
        as_admin("POST", "/users", json={"name": "bob", "role": "viewer"}), 409, "user_exists"
    )

    disabled = as_admin("POST", "/users/bob/disable")
    assert disabled.status_code == 200 and disabled.json()["disabled_at"] is not None
    assert_error(http.get(f"{API}/models", headers=bearer(secret)), 401, "unauthenticated")
    assert as_admin("POST", "/users/bob/enable").json()["disabled_at"] is None
    assert http.get(f"{API}/models/fraud", headers=bearer(secret)).status_code == 200

    token_id = as_admin("GET", "/tokens", params={"user": "bob"}).json()["items"][0]["id"]
    gone = as_admin("DELETE", f"/tokens/{token_id}")
    assert gone.status_code == 200 and gone.json()["state"] == "revoked"
    assert_error(http.get(f"{API}/models", headers=bearer(secret)), 401, "unauthenticated")
    again = as_admin("DELETE", f"/tokens/{token_id}")
    assert again.json()["revoked_at"] == gone.json()["revoked_at"]
    assert_error(as_admin("DELETE", "/tokens/999"), 404, "token_not_found")
    assert_error(as_admin("POST", "/tokens/revoke", json={"token": "abc"}), 400, "invalid_input")

    other = as_admin("POST", "/tokens", json={"user": "bob"}).json()["token"]
    by_secret = as_admin("POST", "/tokens/revoke", json={"token": other})
    assert by_secret.status_code == 200 and by_secret.json()["state"] == "revoked"
    assert_error(http.get(f"{API}/models", headers=bearer(other)), 401, "unauthenticated")


def test_a_deleted_user_is_refused_listed_only_on_request_and_its_name_stays_taken(
    server: tuple[TestClient, str], as_admin: Callable[..., Any]
) -> None:
    http, _ = server
    as_admin("POST", "/models", json={"name": "fraud"})
    secret = create_user(as_admin, "bob", "releaser", "fraud")
    assert http.get(f"{API}/models/fraud", headers=bearer(secret)).status_code == 200

    deleted = as_admin("DELETE", "/users/bob")
    assert deleted.status_code == 200, deleted.text
    bob = deleted.json()
    assert bob["state"] == "deleted" and bob["deleted_at"] is not None and bob["tokens"] == 0
    refused = http.get(f"{API}/models/fraud", headers=bearer(secret))
    assert_error(refused, 401, "unauthenticated")
    assert "bob is deleted" in refused.json()["error"]["message"]

    names = [u["name"] for u in as_admin("GET", "/users").json()["items"]]
    assert names == ["test-admin"]
    everyone = as_admin("GET", "/users", params={"include_deleted": "true"}).json()["items"]
    assert [(u["name"], u["state"]) for u in everyone] == [
        ("bob", "deleted"),
        ("test-admin", "active"),
    ]
    assert as_admin("GET", "/users/bob").json()["state"] == "deleted"
    again = as_admin("DELETE", "/users/bob")
    assert again.status_code == 200 and again.json()["deleted_at"] == bob["deleted_at"]
    reused = as_admin("POST", "/users", json={"name": "bob", "role": "viewer"})
    assert_error(reused, 409, "user_exists")
    assert "never given to another user" in reused.json()["error"]["message"]
    assert_error(as_admin("POST", "/users/bob/enable"), 404, "user_not_found")
    assert_error(as_admin("POST", "/tokens", json={"user": "bob"}), 404, "user_not_found")
    assert_error(as_admin("DELETE", "/users/nobody"), 404, "user_not_found")
    newer = as_admin("POST", "/users", json={"name": "bob-2", "role": "viewer"}).json()["user"]
    assert newer["id"] > bob["id"]


def test_an_admin_may_not_disable_or_delete_themselves(
    server: tuple[TestClient, str], as_admin: Callable[..., Any]
) -> None:
    http, _ = server
    for method, path in (("POST", "/users/test-admin/disable"), ("DELETE", "/users/test-admin")):
        response = as_admin(method, path)
        assert_error(response, 409, "conflict")
        assert "would lock you out" in response.json()["error"]["message"]
        assert "another global admin" in response.json()["error"]["hint"]
    other = create_user(as_admin, "other", "admin")
    by_other = http.post(f"{API}/users/test-admin/disable", headers=bearer(other))
    assert by_other.status_code == 200 and by_other.json()["state"] == "disabled"
    assert_error(as_admin("GET", "/users"), 401, "unauthenticated")


def test_a_server_caching_tokens_refuses_a_disabled_or_deleted_user_at_once(
    settings: Settings,
) -> None:
    caching = dataclasses.replace(settings, token_cache_seconds=3600)
    with served_app(caching) as (http, token):

        def as_admin(method: str, path: str, **kwargs: Any) -> Any:
            return http.request(method, API + path, headers=bearer(token), **kwargs)

        assert as_admin("POST", "/models", json={"name": "fraud"}).status_code == 201
        secret = create_user(as_admin, "bob", "viewer", "fraud")
        read = lambda: http.get(f"{API}/models/fraud", headers=bearer(secret))  # noqa: E731
        assert read().status_code == 200  # now remembered for an hour
        as_admin("POST", "/users/bob/disable")
        assert_error(read(), 401, "unauthenticated")
        as_admin("POST", "/users/bob/enable")
        assert read().status_code == 200
        as_admin("DELETE", "/users/bob/grants", params={"role": "viewer", "model": "fraud"})
        assert_error(read(), 403, "forbidden")
        as_admin("POST", "/users/bob/grants", json={"role": "viewer", "model": "fraud"})
        assert read().status_code == 200
        operator = open_context(settings)  # another process, on the store itself
        try:
            admin.delete_user(operator, "bob")
        finally:
            operator.close()
        time.sleep(admin.TokenCache.HEAD_RECHECK_SECONDS)  # what another process changed
        assert_error(read(), 401, "unauthenticated")


def test_users_and_tokens_are_keyset_paginated(as_admin: Callable[..., Any]) -> None:
    for name in ("a-b", "ab", "a.c"):
        create_user(as_admin, name, "viewer")
    names: list[str] = []
    after: str | None = None
    while True:
        params = {"limit": 2, **({"after": after} if after else {})}
        body = as_admin("GET", "/users", params=params).json()
        names += [u["name"] for u in body["items"]]
        if body["next"] is None:
            break
        after = body["next"]
    assert names == sorted(["a-b", "ab", "a.c", "test-admin"])
    first = as_admin("GET", "/tokens", params={"limit": 2}).json()
    rest = as_admin("GET", "/tokens", params={"limit": 2, "after": first["next"]}).json()
    ids = [t["id"] for t in first["items"] + rest["items"]]
    assert ids == sorted(ids) and len(ids) == 4 and rest["next"] is None


# authentication ---------------------------------------------------------------------------


def protected_routes(http: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) of the app but the public ones, path parameters filled in."""
    found = []
    for route in iter_route_contexts(http.app.routes):  # type: ignore[attr-defined]
        path = route.path or ""
        if path in PUBLIC or path.startswith("/docs"):
            continue
        filled = re.sub(r"\{[^}]+\}", "1", path)
        found += [(method, filled) for method in sorted(route.methods or ())]
    return found


def bad_tokens(settings: Settings, as_admin: Callable[..., Any]) -> dict[str, dict[str, str]]:
    revoked = create_user(as_admin, "revoked", "admin")
    assert as_admin("POST", "/tokens/revoke", json={"token": revoked}).status_code == 200
    disabled = create_user(as_admin, "disabled", "admin")
    assert as_admin("POST", "/users/disabled/disable").status_code == 200
    operator = open_context(settings)
    try:
        operator.clock = lambda: datetime.now(UTC) - timedelta(days=1)
        expired = admin.create_token(operator, "test-admin", timedelta(hours=1)).secret
    finally:
        operator.close()
    return {
        "none": {},
        "empty": {"authorization": "Bearer "},
        "not bearer": {"authorization": f"Basic {revoked}"},
        "not a token": bearer("hunter2"),
        "unknown": bearer("mk_" + "A" * 43),
        "revoked": bearer(revoked),
        "expired": bearer(expired),
        "disabled user": bearer(disabled),
    }


def test_every_route_but_health_and_docs_needs_a_valid_token(
    settings: Settings, server: tuple[TestClient, str], as_admin: Callable[..., Any]
) -> None:
    http, _ = server
    routes = protected_routes(http)
    assert ("GET", f"{API}/users") in routes and ("DELETE", f"{API}/tokens/1") in routes
    assert len(routes) > 25
    for kind, headers in bad_tokens(settings, as_admin).items():
        for method, path in routes:
            response = http.request(method, path, headers=headers)
            assert_error(response, 401, "unauthenticated")
            assert response.json()["error"]["message"], (kind, method, path)
    assert http.get("/healthz").status_code == 200
    assert http.get("/openapi.json").status_code == 200


# authorisation ----------------------------------------------------------------------------


def admin_route_calls() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        ("GET", "/users", {}),
        ("POST", "/users", {"json": {"name": "eve", "role": "admin"}}),
        ("GET", "/users/test-admin", {}),
        ("POST", "/users/test-admin/grants", {"json": {"role": "viewer"}}),
        ("DELETE", "/users/test-admin/grants", {"params": {"role": "admin"}}),
        ("POST", "/users/test-admin/disable", {}),
        ("POST", "/users/test-admin/enable", {}),
        ("DELETE", "/users/test-admin", {}),
        ("GET", "/tokens", {}),
        ("POST", "/tokens", {"json": {"user": "test-admin"}}),
        ("DELETE", "/tokens/1", {}),
        ("POST", "/tokens/revoke", {"json": {"token": "1"}}),
    ]


def test_admin_routes_are_refused_to_others_with_the_reason(
    server: tuple[TestClient, str], as_admin: Callable[..., Any]
) -> None:
    http, _ = server
    as_admin("POST", "/models", json={"name": "fraud"})
    for name, role, model in [
        ("contrib", "contributor", None),
        ("fraud-admin", "admin", "fraud"),
        ("reader", "viewer", None),
    ]:
        secret = create_user(as_admin, name, role, model)
        for method, path, kwargs in admin_route_calls():
            response = http.request(method, API + path, headers=bearer(secret), **kwargs)
            assert_error(response, 403, "forbidden")
            message = response.json()["error"]["message"]
            assert "manage-users needs a global admin" in message, message
    users = as_admin("GET", "/users").json()["items"]
    assert [u["name"] for u in users] == ["contrib", "fraud-admin", "reader", "test-admin"]
    assert len(as_admin("GET", "/tokens").json()["items"]) == 4
    route_paths = {(m, p) for m, p in protected_routes(http) if "/users" in p or "/tokens" in p}
    called = {(m, API + re.sub(r"/test-admin", "/1", p)) for m, p, _ in admin_route_calls()}
    assert route_paths == called, "every admin route is in admin_route_calls"


Step = tuple[access.Action, str | None, Callable[[dict[str, str]], Any]]


class Actions:
    """Each API action, on a model of its own prepared by the admin, done with a token."""

    def __init__(self, http: TestClient, as_admin: Callable[..., Any]) -> None:
        self.http = http
        self.as_admin = as_admin

    def prepare(self, model: str, versions: int = 2) -> None:
        assert self.as_admin("POST", "/models", json={"name": model}).status_code == 201
        for n in range(versions):
            data = f"{model} {n}".encode()
            self.as_admin("PUT", f"/blobs/{digest_of(data)}", content=data)
            files = [{"path": "w.bin", "size": len(data), "digest": digest_of(data)}]
            created = self.as_admin("POST", f"/models/{model}/versions", json={"files": files})
            assert created.status_code == 201, created.text

    def request(self, method: str, path: str, **kwargs: Any) -> Callable[[dict[str, str]], Any]:
        """The call, to be made with the given headers."""
        return lambda headers: self.http.request(method, API + path, headers=headers, **kwargs)

    def steps(self, action: str, model: str) -> list[Step]:
        """What to call: the access action, the model decide() is asked about, the call."""
        method: Callable[[str], list[Step]] = getattr(self, action.replace(" ", "_"))
        return method(model)

    def create_model(self, model: str) -> list[Step]:
        body = {"name": f"{model}-new"}
        return [(access.CREATE_MODEL, model, self.request("POST", "/models", json=body))]

    def push(self, model: str) -> list[Step]:
        data = f"{model} pushed".encode()
        digest = digest_of(data)
        files = [{"path": "w.bin", "size": len(data), "digest": digest}]
        self.as_admin("PUT", f"/blobs/{digest}", content=data)  # so the POST stands alone
        register = self.request("POST", f"/models/{model}/versions", json={"files": files})
        return [
            (access.PUSH, access.ANY_MODEL, self.request("PUT", f"/blobs/{digest}", content=data)),
            (access.PUSH, model, register),
        ]

    def set_alias(self, model: str) -> list[Step]:
        body = {"version": "1", "reason": "r"}
        path = f"/models/{model}/aliases/champion"
        return [(access.SET_ALIAS, model, self.request("PUT", path, json=body))]

    def promote(self, model: str) -> list[Step]:
        body = {"version": "1", "to": "staging"}
        return [
            (access.PROMOTE, model, self.request("POST", f"/models/{model}/promote", json=body))
        ]

    def rollback(self, model: str) -> list[Step]:
        for number in ("1", "2"):
            moved = self.as_admin(
                "POST", f"/models/{model}/promote", json={"version": number, "to": "staging"}
            )
            assert moved.status_code == 200, moved.text
        body = {"stage": "staging"}
        return [
            (access.ROLLBACK, model, self.request("POST", f"/models/{model}/rollback", json=body))
        ]

    def archive(self, model: str) -> list[Step]:
        path = f"/models/{model}/versions/1/archive"
        return [(access.ARCHIVE, model, self.request("POST", path, json={}))]

    def verify(self, model: str) -> list[Step]:
        body = {"ref": f"{model}@1"}
        return [(access.VERIFY, model, self.request("POST", "/verify", json=body))]

    def gc(self, model: str) -> list[Step]:
        return [(access.GC, None, self.request("POST", "/gc", json={"dry_run": True}))]

    def read_version(self, model: str) -> list[Step]:
        return [(access.READ, model, self.request("GET", f"/models/{model}/versions/1"))]

    def audit_log(self, model: str) -> list[Step]:
        return [(access.READ, None, self.request("GET", "/audit"))]

    def create_user(self, model: str) -> list[Step]:
        body = {"name": f"{model}-user", "role": "viewer"}
        return [(access.MANAGE_USERS, None, self.request("POST", "/users", json=body))]


ACTIONS = [
    "create model",
    "push",
    "set alias",
    "promote",
    "rollback",
    "archive",
    "verify",
    "gc",
    "read version",
    "audit log",
    "create user",
]


@pytest.mark.parametrize("role", list(ROLES))
def test_each_role_may_do_through_the_server_what_decide_allows(
    role: str, server: tuple[TestClient, str], as_admin: Callable[..., Any]
) -> None:
    http, _ = server
    actions = Actions(http, as_admin)
    global_token = create_user(as_admin, f"global-{role}", role)
    scoped_token = ""
    outcomes: list[tuple[str, str, int, bool]] = []
    for scope in ("global", "model"):
        for i, action in enumerate(ACTIONS):
            model = f"{scope[0]}{i}"
            actions.prepare(model)
            if scope == "global":
                name, token = f"global-{role}", global_token
            else:
                name = f"scoped-{role}"
                if not scoped_token:
                    scoped_token = create_user(as_admin, name, role, model)
                else:
                    as_admin("POST", f"/users/{name}/grants", json={"role": role, "model": model})
                token = scoped_token
            held = as_admin("GET", f"/users/{name}").json()["grants"]
            actor = Actor(name, tuple(Grant(g["role"], g["model"]) for g in held))
            for what, resource, call in actions.steps(action, model):
                decision = access.decide(actor, what, resource)
                response = call(bearer(token))
                outcomes.append((scope, action, response.status_code, decision.allowed))
                if decision.allowed:
                    assert 200 <= response.status_code < 300, (scope, action, response.text)
                else:
                    assert_error(response, 403, "forbidden")
                    assert response.json()["error"]["message"] == decision.reason
    assert any(ok for *_, ok in outcomes), "every role may do something"
    assert any(not ok for *_, ok in outcomes), "no role, on one model, may do everything"


# the SDK and the CLI over HTTP --------------------------------------------------------------


def sdk_as(http: TestClient, token: str, settings: Settings) -> Client:
    """Another SDK client on the same app, with its own connection (and credentials)."""
    own = TestClient(http.app, base_url="http://testserver")
    return Client(HttpBackend("http://testserver", token, http=own), settings)


def test_the_sdk_manages_users_and_tokens_over_http(settings: Settings) -> None:
    with served_app(settings) as (http, token):
        mk = Client(HttpBackend("http://testserver", token, http=http), settings)
        mk.create_model("fraud")
        user, issued = mk.create_user(
            "alice", role="viewer", model="fraud", expires_in=timedelta(days=7)
        )
        assert user.name == "alice" and user.grants == (Grant("viewer", "fraud"),)
        assert TOKEN.match(issued.secret) and issued.info.user == "alice"
        assert (
            issued.info.expires_at is not None and issued.info.state(datetime.now(UTC)) == "active"
        )
        assert [u.name for u in mk.list_users()] == ["alice", "test-admin"]

        granted = mk.grant("alice", role="releaser")
        assert set(granted.grants) == {Grant("viewer", "fraud"), Grant("releaser")}
        assert mk.revoke_grant("alice", role="viewer", model="fraud").grants == (Grant("releaser"),)
        with pytest.raises(GrantNotFound):
            mk.revoke_grant("alice", role="viewer", model="fraud")

        second = mk.create_token("alice", label="ci")
        assert second.info.label == "ci" and second.secret != issued.secret
        assert [t.id for t in mk.list_tokens("alice")] == [issued.info.id, second.info.id]
        assert len(mk.list_tokens()) == 3

        alice = sdk_as(http, second.secret, settings)
        assert [m.name for m in alice.list_models()] == ["fraud"]
        with pytest.raises(Forbidden, match="manage-users needs a global admin"):
            alice.list_users()

        assert mk.disable_user("alice").disabled_at is not None
        assert mk.enable_user("alice").disabled_at is None
        mk.create_user("carol", role="viewer")
        gone = mk.delete_user("carol")
        assert gone.state == "deleted" and gone.deleted_at is not None and gone.id is not None
        assert [u.name for u in mk.list_users()] == ["alice", "test-admin"]
        everyone = mk.list_users(include_deleted=True)
        assert [(u.name, u.state) for u in everyone] == [
            ("alice", "active"),
            ("carol", "deleted"),
            ("test-admin", "active"),
        ]
        revoked = mk.revoke_token(second.info.id)
        assert revoked.revoked_at is not None and revoked.id == second.info.id
        assert mk.revoke_token(issued.secret).revoked_at is not None
        assert mk.list_users()[0].active_tokens == 0
        with pytest.raises(TokenNotFound):
            mk.revoke_token(999)
        with pytest.raises(InvalidInput):
            mk.revoke_token("abc")
        with pytest.raises(InvalidInput):
            mk.create_token("alice", expires_in=timedelta(0))
        rejected = sdk_as(http, issued.secret, settings)
        with pytest.raises(Unauthenticated, match="revoked"):
            rejected.list_models()


def test_the_cli_manages_users_against_a_server(
    settings: Settings, cli: CliRunnerInProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    with live_server(settings) as (url, token):
        monkeypatch.setenv("MODELKEEP_URI", url)
        monkeypatch.setenv("MODELKEEP_TOKEN", token)
        monkeypatch.delenv("MODELKEEP_DATABASE_URL")

        def ok(*args: str) -> Any:
            result = cli(*args, "--json")
            assert result.code == 0, result
            return json.loads(result.out)

        created = ok("users", "create", "alice", "--role", "viewer", "--expires-in", "30")
        assert TOKEN.match(created["token"]) and created["user"]["name"] == "alice"
        assert created["expires_at"] is not None
        assert [u["name"] for u in ok("users", "list")] == ["alice", "live-admin"]
        assert ok("users", "grant", "alice", "--role", "contributor")["grants"] == [
            {"role": "viewer", "model": None},
            {"role": "contributor", "model": None},
        ]
        assert len(ok("users", "revoke", "alice", "--role", "viewer")["grants"]) == 1
        assert ok("users", "disable", "alice")["disabled_at"] is not None
        assert ok("users", "enable", "alice")["disabled_at"] is None
        ok("users", "create", "carol", "--role", "viewer")
        assert ok("users", "delete", "carol")["state"] == "deleted"
        assert [u["name"] for u in ok("users", "list")] == ["alice", "live-admin"]
        assert [u["name"] for u in ok("users", "list", "--all")] == [
            "alice",
            "carol",
            "live-admin",
        ]
        issued = ok("tokens", "create", "alice", "--label", "ci")
        assert issued["label"] == "ci" and TOKEN.match(issued["token"])
        listed = ok("tokens", "list", "alice")
        assert [t["state"] for t in listed] == ["active", "active"]
        assert created["token"] not in json.dumps(listed)
        assert ok("tokens", "revoke", str(issued["id"]))["state"] == "revoked"
        assert ok("tokens", "revoke", created["token"])["state"] == "revoked"

        monkeypatch.setenv("MODELKEEP_TOKEN", created["token"])
        refused = cli("users", "list")
        assert refused.code == 1 and refused.err.startswith("error[unauthenticated]: ")
