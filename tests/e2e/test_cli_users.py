"""``modelkeep users ...`` and ``modelkeep tokens ...`` run by an operator on the store."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from modelkeep.bootstrap import open_context
from modelkeep.config import Settings
from modelkeep.domain.access import Actor, Grant
from modelkeep.errors import Unauthenticated
from modelkeep.services import admin
from modelkeep.services.context import ServiceContext
from tests.conftest import CliRunnerInProcess
from tests.e2e.support import (
    assert_error_line,
    ok,
    ok_json,
    ok_json_lines,
    refused,
    store_unchanged,
)

TOKEN = re.compile(r"^mk_[A-Za-z0-9_-]{43}$")


def test_users_create_prints_a_token_that_authenticates(
    cli: CliRunnerInProcess, settings: Settings
) -> None:
    ok(cli("models", "create", "fraud"))
    created = ok_json(cli, "users", "create", "alice", "--role", "contributor", "--model", "fraud")
    assert set(created) == {"user", "token", "token_id", "expires_at"}
    assert TOKEN.match(created["token"]) and created["expires_at"] is None
    assert created["user"]["name"] == "alice"
    assert created["user"]["grants"] == [{"role": "contributor", "model": "fraud"}]
    assert created["user"]["tokens"] == 1
    assert created["user"]["created_by"].startswith("local:")

    registry = open_context(settings)
    try:
        actor = admin.authenticate(registry, created["token"])
    finally:
        registry.close()
    assert actor == Actor("alice", (Grant("contributor", "fraud"),))


def test_users_create_in_plain_text_shows_the_token_once_on_its_own_line(
    cli: CliRunnerInProcess,
) -> None:
    result = ok(cli("users", "create", "bob", "--role", "viewer", "--expires-in", "30"))
    lines = result.out.splitlines()
    assert lines[0] == "created user bob: viewer"
    assert "shown only now" in lines[1] and "expires" in lines[1]
    assert TOKEN.match(lines[2])
    listed = ok(cli("tokens", "list")).out
    assert "bob" in listed and lines[2] not in listed


def test_users_list_grant_and_revoke(cli: CliRunnerInProcess) -> None:
    ok(cli("models", "create", "fraud"))
    assert ok_json(cli, "users", "list") == []
    assert "no users yet" in ok(cli("users", "list")).out
    ok(cli("users", "create", "alice", "--role", "viewer"))
    granted = ok_json(cli, "users", "grant", "alice", "--role", "releaser", "--model", "fraud")
    assert granted["grants"] == [
        {"role": "viewer", "model": None},
        {"role": "releaser", "model": "fraud"},
    ]
    assert ok(cli("users", "grant", "alice", "--role", "viewer")).out == (
        "alice: viewer, releaser of fraud\n"
    )
    listed = ok_json(cli, "users", "list")
    assert [(u["name"], len(u["grants"]), u["tokens"]) for u in listed] == [("alice", 2, 1)]
    table = ok(cli("users", "list")).out
    assert "alice" in table and "releaser of fraud" in table

    revoked = ok_json(cli, "users", "revoke", "alice", "--role", "viewer")
    assert revoked["grants"] == [{"role": "releaser", "model": "fraud"}]
    with store_unchanged(cli):
        line = refused(cli, "users", "revoke", "alice", "--role", "viewer", code="grant_not_found")
        assert "alice is not a global viewer" in line
        refused(
            cli,
            "users",
            "grant",
            "alice",
            "--role",
            "viewer",
            "--model",
            "nope",
            code="model_not_found",
        )
        refused(cli, "users", "grant", "nobody", "--role", "viewer", code="user_not_found")
        refused(cli, "users", "create", "alice", "--role", "viewer", code="user_exists")
        refused(cli, "users", "create", "local:me", "--role", "admin", code="invalid_name")
        refused(cli, "users", "create", "Bob", "--role", "admin", code="invalid_name")
        refused(cli, "users", "create", "bob", "--role", "owner", code="usage", exit_code=2)
        refused(cli, "users", "create", "bob", code="usage", exit_code=2)
        refused(
            cli,
            "users",
            "create",
            "bob",
            "--role",
            "viewer",
            "--expires-in",
            "0",
            code="usage",
            exit_code=2,
        )


def test_tokens_create_list_and_revoke(cli: CliRunnerInProcess, settings: Settings) -> None:
    first = ok_json(cli, "users", "create", "alice", "--role", "viewer")
    second = ok_json(cli, "tokens", "create", "alice", "--label", "ci", "--expires-in", "7")
    assert TOKEN.match(second["token"]) and second["token"] != first["token"]
    assert second["user"] == "alice" and second["label"] == "ci"
    assert second["expires_at"] is not None and second["revoked_at"] is None
    plain = ok(cli("tokens", "create", "alice")).out.splitlines()
    assert plain[0].startswith("token 3 of alice (never expires)") and TOKEN.match(plain[1])

    listed = ok_json(cli, "tokens", "list", "alice")
    assert [(t["id"], t["label"], t["state"]) for t in listed] == [
        (first["token_id"], None, "active"),
        (second["id"], "ci", "active"),
        (3, None, "active"),
    ]
    assert all("token" not in t for t in listed)

    revoked = ok_json(cli, "tokens", "revoke", str(second["id"]))
    assert revoked["state"] == "revoked" and revoked["revoked_at"] is not None
    assert ok(cli("tokens", "revoke", first["token"])).out == (
        f"revoked token {first['token_id']} of alice\n"
    )
    states = [t["state"] for t in ok_json(cli, "tokens", "list")]
    assert states == ["revoked", "revoked", "active"]
    assert ok_json(cli, "users", "list")[0]["tokens"] == 1

    registry = open_context(settings)
    try:
        for secret in (first["token"], second["token"]):
            assert_refused_token(registry, secret)
    finally:
        registry.close()

    with store_unchanged(cli):
        refused(cli, "tokens", "revoke", "99", code="token_not_found")
        refused(cli, "tokens", "revoke", "abc", code="invalid_input")
        refused(cli, "tokens", "create", "nobody", code="user_not_found")
        refused(cli, "tokens", "list", "nobody", code="user_not_found")


@contextmanager
def opened(settings: Settings) -> Iterator[ServiceContext]:
    """The store, opened by its operator (as a server would, to check a token)."""
    registry = open_context(settings)
    try:
        yield registry
    finally:
        registry.close()


def assert_refused_token(registry: ServiceContext, secret: str) -> None:
    with pytest.raises(Unauthenticated, match="revoked"):
        admin.authenticate(registry, secret)


def test_users_disable_and_enable(cli: CliRunnerInProcess) -> None:
    ok(cli("users", "create", "alice", "--role", "viewer"))
    disabled = ok_json(cli, "users", "disable", "alice")
    assert disabled["disabled_at"] is not None
    assert ok(cli("users", "enable", "alice")).out == "enabled user alice\n"
    assert ok_json(cli, "users", "list")[0]["disabled_at"] is None


def test_a_disabled_users_token_is_refused_until_enabled(
    cli: CliRunnerInProcess, settings: Settings
) -> None:
    secret = ok_json(cli, "users", "create", "alice", "--role", "viewer")["token"]
    assert ok_json(cli, "users", "disable", "alice")["state"] == "disabled"
    assert ok_json(cli, "users", "list")[0]["state"] == "disabled"  # still listed
    with opened(settings) as registry, pytest.raises(Unauthenticated, match="alice is disabled"):
        admin.authenticate(registry, secret)
    ok(cli("users", "enable", "alice"))
    with opened(settings) as registry:
        assert admin.authenticate(registry, secret).name == "alice"


def test_users_delete_is_soft_revokes_tokens_and_cannot_be_undone(
    cli: CliRunnerInProcess, settings: Settings
) -> None:
    created = ok_json(cli, "users", "create", "alice", "--role", "viewer")
    second = ok_json(cli, "tokens", "create", "alice", "--label", "ci")
    ok(cli("users", "create", "bob", "--role", "viewer"))
    assert ok(cli("users", "delete", "alice")).out == "deleted user alice\n"

    with opened(settings) as registry:
        for secret in (created["token"], second["token"]):
            with pytest.raises(Unauthenticated, match="alice is deleted"):
                admin.authenticate(registry, secret)
    assert [u["name"] for u in ok_json(cli, "users", "list")] == ["bob"]
    everyone = ok_json(cli, "users", "list", "--all")
    assert [(u["name"], u["state"]) for u in everyone] == [("alice", "deleted"), ("bob", "active")]
    alice = everyone[0]
    assert alice["deleted_at"] is not None and alice["tokens"] == 0
    assert alice["grants"] == [{"role": "viewer", "model": None}]  # kept, no longer counting
    assert "deleted" in ok(cli("users", "list", "--all")).out
    assert "alice" not in ok(cli("users", "list")).out
    states = {t["id"]: t["state"] for t in ok_json(cli, "tokens", "list", "alice")}
    assert states == {created["token_id"]: "revoked", second["id"]: "revoked"}

    deletions = [e for e in ok_json_lines(cli, "audit", "log") if e["action"] == "user.delete"]
    assert [(e["subject"], e["details"]["tokens_revoked"]) for e in deletions] == [
        ("user:alice", [created["token_id"], second["id"]])
    ]
    assert deletions[0]["details"]["user_id"] == alice["id"]

    with store_unchanged(cli):
        assert ok_json(cli, "users", "delete", "alice")["deleted_at"] == alice["deleted_at"]
        for command in (
            ("users", "enable", "alice"),
            ("users", "disable", "alice"),
            ("users", "grant", "alice", "--role", "admin"),
            ("users", "revoke", "alice", "--role", "viewer"),
            ("tokens", "create", "alice"),
        ):
            line = refused(cli, *command, code="user_not_found")
            assert "alice' was deleted on" in line and "another name" in line, line
        line = refused(cli, "users", "create", "alice", "--role", "viewer", code="user_exists")
        assert "never given to another user" in line and "alice-2" in line, line
        refused(cli, "users", "delete", "nobody", code="user_not_found")
    ok(cli("users", "create", "alice-2", "--role", "viewer"))


def test_user_ids_are_never_reused_after_a_delete(cli: CliRunnerInProcess) -> None:
    # the newest user deleted: the case where a database that reuses the highest free
    # row id (SQLite without AUTOINCREMENT, had the row gone) would give its id again
    first = ok_json(cli, "users", "create", "ann", "--role", "viewer")["user"]["id"]
    second = ok_json(cli, "users", "create", "bob", "--role", "viewer")["user"]["id"]
    assert ok_json(cli, "users", "delete", "bob")["id"] == second
    third = ok_json(cli, "users", "create", "cid", "--role", "viewer")["user"]["id"]
    assert first < second < third
    ids = [u["id"] for u in ok_json(cli, "users", "list", "--all")]
    assert sorted(ids) == [first, second, third]


def test_the_last_active_global_admin_cannot_be_disabled_deleted_or_demoted(
    cli: CliRunnerInProcess,
) -> None:
    ok(cli("models", "create", "fraud"))
    ok(cli("users", "create", "root", "--role", "admin"))
    ok(cli("users", "create", "fraud-admin", "--role", "admin", "--model", "fraud"))
    with store_unchanged(cli):
        for verb in ("disable", "delete"):
            line = refused(cli, "users", verb, "root", code="conflict")
            assert "root is the last active global admin" in line, line
            assert "modelkeep users grant NAME --role admin" in line, line
        line = refused(cli, "users", "revoke", "root", "--role", "admin", code="conflict")
        assert "revoking their admin role would leave nobody" in line, line
    ok(cli("users", "create", "deputy", "--role", "viewer"))
    ok(cli("users", "grant", "deputy", "--role", "admin"))
    ok(cli("users", "revoke", "deputy", "--role", "admin"))  # root is still in charge
    ok(cli("users", "grant", "deputy", "--role", "admin"))
    ok(cli("users", "disable", "root"))
    line = refused(cli, "users", "delete", "deputy", code="conflict")
    assert "deputy is the last active global admin" in line  # root is disabled
    ok(cli("users", "delete", "root"))  # a disabled admin manages nothing: not the last one
    ok(cli("users", "disable", "fraud-admin"))  # an admin of one model is no global admin


def test_admin_changes_are_in_the_audit_log_without_secrets(cli: CliRunnerInProcess) -> None:
    created = ok_json(cli, "users", "create", "alice", "--role", "viewer")
    token = ok_json(cli, "tokens", "create", "alice")
    ok(cli("tokens", "revoke", str(token["id"])))
    log = ok(cli("audit", "log", "--json")).out
    actions = [(e["action"], e["subject"]) for e in ok_json_lines(cli, "audit", "log")]
    assert actions == [
        ("user.create", "user:alice"),
        ("token.create", "user:alice"),
        ("token.revoke", "user:alice"),
    ]
    for secret in (created["token"], token["token"]):
        assert secret not in log
        assert hashlib.sha256(secret.encode()).hexdigest() not in log
    ok(cli("audit", "verify"))


def test_an_unknown_subcommand_is_a_usage_error(cli: CliRunnerInProcess) -> None:
    assert_error_line(cli("users", "remove", "alice"), "usage", 2)
    assert_error_line(cli("tokens"), "usage", 2)
