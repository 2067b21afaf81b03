"""Users, tokens and grants on SQLite and PostgreSQL; and services refusing what an
actor's roles do not allow, with the reason, before they change anything."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, text

from modelkeep.config import Settings
from modelkeep.domain.access import Actor, Grant
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.versions import PushRequest
from modelkeep.errors import (
    Forbidden,
    GrantNotFound,
    InvalidInput,
    InvalidName,
    ModelNotFound,
    TokenNotFound,
    Unauthenticated,
    UserExists,
    UserNotFound,
)
from modelkeep.services import admin, aliases, audit, governance, maintenance, models, versions
from modelkeep.services.context import ServiceContext
from modelkeep.storage.sql import migrate
from modelkeep.storage.sql.store import SqlMetadataStore

# Also on the in-memory store (tests/conftest.py); a test that reaches into SQL says so.
pytestmark = pytest.mark.backends("sqlite", "postgresql", "memory")


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock(registry: ServiceContext) -> Clock:
    """The registry's clock, moved by hand."""
    fake = Clock()
    registry.clock = fake
    return fake


def push(registry: ServiceContext, model: str, content: bytes) -> Any:
    info = versions.put_blob(registry, io.BytesIO(content))
    entry = FileEntry("w.bin", info.size, info.digest)
    return versions.register_version(registry, model, [entry], PushRequest())


def snapshot(registry: ServiceContext) -> dict[str, Any]:
    """What the operator sees of the whole store."""
    return {
        "models": [m.to_dict() for m in models.list_models(registry)],
        "versions": {
            m.name: [v.to_dict() for v in versions.list_versions(registry, m.name)]
            for m in models.list_models(registry)
        },
        "aliases": {
            m.name: [e.to_dict() for e in aliases.alias_history(registry, m.name)]
            for m in models.list_models(registry)
        },
        "audit": [e.to_dict() for e in audit.audit_log(registry)],
        "users": [u.to_dict() for u in admin.list_users(registry)],
        "tokens": [t.to_dict() for t in admin.list_tokens(registry)],
    }


def table_rows(database_url: str) -> dict[str, list[dict[str, Any]]]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            return {
                name: [dict(row._mapping) for row in conn.execute(text(f"SELECT * FROM {name}"))]
                for name in inspect(conn).get_table_names()
            }
    finally:
        engine.dispose()


# users and tokens ----------------------------------------------------------------------


def test_a_new_user_gets_a_token_that_authenticates(registry: ServiceContext) -> None:
    models.create_model(registry, "fraud")
    user, issued = admin.create_user(registry, "alice", "contributor", "fraud")

    assert user.name == "alice" and user.grants == (Grant("contributor", "fraud"),)
    assert user.active_tokens == 1 and user.created_by == registry.actor
    assert issued.secret.startswith("mk_") and len(issued.secret) == 3 + 43
    assert issued.info.user == "alice" and issued.info.expires_at is None
    actor = admin.authenticate(registry, issued.secret)
    assert actor == Actor("alice", (Grant("contributor", "fraud"),))


def test_every_token_is_different_and_each_authenticates(registry: ServiceContext) -> None:
    _, first = admin.create_user(registry, "bot", "viewer")
    second = admin.create_token(registry, "bot", label="ci")
    assert first.secret != second.secret and first.info.id != second.info.id
    assert second.info.label == "ci"
    for issued in (first, second):
        assert admin.authenticate(registry, issued.secret).name == "bot"
    assert [t.id for t in admin.list_tokens(registry, "bot")] == [first.info.id, second.info.id]


@pytest.mark.parametrize(
    "token", [None, "", "hello", "mk_", "mk_" + "A" * 43, "Bearer mk_x"], ids=repr
)
def test_unknown_tokens_are_refused(registry: ServiceContext, token: str | None) -> None:
    admin.create_user(registry, "alice", "viewer")
    with pytest.raises(Unauthenticated):
        admin.authenticate(registry, token)


def test_expired_tokens_are_refused(registry: ServiceContext, clock: Clock) -> None:
    _, issued = admin.create_user(registry, "alice", "viewer", expires_in=timedelta(days=1))
    assert issued.info.expires_at == clock.now + timedelta(days=1)
    clock.now += timedelta(hours=23)
    assert admin.authenticate(registry, issued.secret).name == "alice"
    clock.now += timedelta(hours=1)
    with pytest.raises(Unauthenticated, match=f"token {issued.info.id} of alice is expired"):
        admin.authenticate(registry, issued.secret)
    assert admin.list_users(registry)[0].active_tokens == 0
    with pytest.raises(InvalidInput):
        admin.create_token(registry, "alice", expires_in=timedelta(0))


def test_revoked_tokens_are_refused_by_id_or_by_secret(registry: ServiceContext) -> None:
    _, first = admin.create_user(registry, "alice", "viewer")
    second = admin.create_token(registry, "alice")
    revoked = admin.revoke_token(registry, str(first.info.id))
    assert revoked.revoked_at is not None
    with pytest.raises(Unauthenticated, match="revoked"):
        admin.authenticate(registry, first.secret)
    assert admin.authenticate(registry, second.secret).name == "alice"

    admin.revoke_token(registry, second.secret)
    with pytest.raises(Unauthenticated, match="revoked"):
        admin.authenticate(registry, second.secret)
    events = len(audit.audit_log(registry))
    assert admin.revoke_token(registry, first.info.id).revoked_at == revoked.revoked_at
    assert len(audit.audit_log(registry)) == events  # revoking twice changes nothing
    with pytest.raises(TokenNotFound):
        admin.revoke_token(registry, 999)
    with pytest.raises(TokenNotFound):
        admin.revoke_token(registry, "mk_" + "B" * 43)
    with pytest.raises(InvalidInput):
        admin.revoke_token(registry, "first")


def test_a_disabled_user_cannot_authenticate_until_enabled(registry: ServiceContext) -> None:
    _, issued = admin.create_user(registry, "alice", "viewer")
    assert admin.set_disabled(registry, "alice", True).disabled_at is not None
    with pytest.raises(Unauthenticated, match="alice is disabled"):
        admin.authenticate(registry, issued.secret)
    assert admin.set_disabled(registry, "alice", False).disabled_at is None
    assert admin.authenticate(registry, issued.secret).name == "alice"


def test_user_names_are_unique_and_checked(registry: ServiceContext) -> None:
    admin.create_user(registry, "alice", "viewer")
    with pytest.raises(UserExists):
        admin.create_user(registry, "alice", "admin")
    for bad in ("local:alice", "Alice", "a b"):
        with pytest.raises(InvalidName):
            admin.create_user(registry, bad, "viewer")
    with pytest.raises(InvalidInput):
        admin.create_user(registry, "bob", "owner")
    with pytest.raises(UserNotFound):
        admin.create_token(registry, "nobody")
    with pytest.raises(UserNotFound):
        admin.list_tokens(registry, "nobody")
    assert [u.name for u in admin.list_users(registry)] == ["alice"]


def test_grants_add_up_and_are_revoked(registry: ServiceContext) -> None:
    models.create_model(registry, "fraud")
    _, issued = admin.create_user(registry, "alice", "viewer")
    admin.grant(registry, "alice", "releaser", "fraud")
    events = len(audit.audit_log(registry))
    user = admin.grant(registry, "alice", "viewer")  # held already: nothing happens
    assert len(audit.audit_log(registry)) == events
    assert user.grants == (Grant("viewer"), Grant("releaser", "fraud"))
    assert admin.authenticate(registry, issued.secret).grants == user.grants

    user = admin.revoke_grant(registry, "alice", "viewer")
    assert user.grants == (Grant("releaser", "fraud"),)
    with pytest.raises(GrantNotFound, match="alice is not a global viewer"):
        admin.revoke_grant(registry, "alice", "viewer")
    with pytest.raises(GrantNotFound):
        admin.revoke_grant(registry, "alice", "releaser", "churn")
    with pytest.raises(ModelNotFound):
        admin.grant(registry, "alice", "releaser", "churn")
    with pytest.raises(UserNotFound):
        admin.grant(registry, "nobody", "viewer")


@pytest.mark.backends("sqlite", "postgresql")  # reads the SQL tables
def test_tokens_are_stored_only_as_their_sha256(
    registry: ServiceContext, settings: Settings
) -> None:
    _, issued = admin.create_user(registry, "alice", "viewer")
    extra = admin.create_token(registry, "alice", label="ci")

    rows = table_rows(settings.database_url)
    hashes = {row["token_hash"] for row in rows["tokens"]}
    assert hashes == {hashlib.sha256(t.secret.encode()).hexdigest() for t in (issued, extra)}
    everything = json.dumps(rows, default=str)
    for token in (issued, extra):
        assert token.secret not in everything
        assert token.secret.removeprefix("mk_")[:16] not in everything
    audit = json.dumps(rows["audit_events"], default=str)
    assert not any(h in audit for h in hashes)


def test_admin_changes_are_audited_without_secrets(registry: ServiceContext) -> None:
    models.create_model(registry, "fraud")
    _, issued = admin.create_user(registry, "alice", "contributor", "fraud")
    token = admin.create_token(registry, "alice", expires_in=timedelta(days=7), label="ci")
    admin.grant(registry, "alice", "releaser", "fraud")
    admin.revoke_grant(registry, "alice", "releaser", "fraud")
    admin.revoke_token(registry, token.info.id)
    admin.set_disabled(registry, "alice", True)
    admin.set_disabled(registry, "alice", False)

    events = [e for e in audit.audit_log(registry) if e.subject.startswith("user:")]
    assert [(e.action, e.subject) for e in events] == [
        ("user.create", "user:alice"),
        ("token.create", "user:alice"),
        ("grant.add", "user:alice"),
        ("grant.remove", "user:alice"),
        ("token.revoke", "user:alice"),
        ("user.disable", "user:alice"),
        ("user.enable", "user:alice"),
    ]
    assert all(e.actor == registry.actor for e in events)
    assert events[0].details == {
        "role": "contributor",
        "model": "fraud",
        "token_id": issued.info.id,
        "expires_at": None,
    }
    assert events[1].details["token_id"] == token.info.id and events[1].details["label"] == "ci"
    assert events[2].details == {"role": "releaser", "model": "fraud"}
    assert events[4].details == {"token_id": token.info.id}
    text_of_log = json.dumps([e.to_dict() for e in audit.audit_log(registry)])
    for secret in (issued.secret, token.secret):
        assert secret not in text_of_log
        assert hashlib.sha256(secret.encode()).hexdigest() not in text_of_log
    assert audit.verify(registry).ok
    assert audit.audit_log(registry, "alice") == []  # user events are not a model's


# registries acting for users -------------------------------------------------------------


@pytest.fixture
def fraud(registry: ServiceContext) -> ServiceContext:
    """A store with model fraud (versions 1 and 2, production at 1) and model churn."""
    models.create_model(registry, "fraud")
    models.create_model(registry, "churn")
    push(registry, "fraud", b"one")
    push(registry, "fraud", b"two")
    governance.promote(registry, "fraud@1", "production")
    return registry


def as_user(registry: ServiceContext, *grants: Grant) -> ServiceContext:
    return registry.for_actor(Actor("alice", grants))


def assert_forbidden(call: Any, reason: str) -> None:
    with pytest.raises(Forbidden) as caught:
        call()
    assert caught.value.message == reason
    assert caught.value.code == "forbidden" and caught.value.exit_code == 1


def test_a_viewer_reads_but_cannot_push(fraud: ServiceContext) -> None:
    viewer = as_user(fraud, Grant("viewer", "fraud"))
    before = snapshot(fraud)

    assert [v.number for v in versions.list_versions(viewer, "fraud")] == [1, 2]
    assert versions.resolve(viewer, "fraud@production").number == 1
    assert versions.get_version(viewer, "fraud@2").created_by == fraud.actor
    assert [m.name for m in models.list_models(viewer)] == ["fraud"]  # churn is not theirs
    assert (
        versions.open_blob(viewer, versions.get_version(viewer, "fraud@1").files[0].digest).read()
        == b"one"
    )
    reason = "alice is a viewer of fraud; push on fraud needs contributor or admin"
    assert_forbidden(
        lambda: push(viewer, "fraud", b"three"),
        ("alice is a viewer of fraud; push on some model needs contributor or admin on some model"),
    )
    assert_forbidden(lambda: versions.register_version(viewer, "fraud", [], PushRequest()), reason)
    assert_forbidden(lambda: versions.check_push(viewer, "fraud", PushRequest()), reason)
    assert_forbidden(
        lambda: aliases.set_alias(viewer, "fraud@2", "champion"),
        "alice is a viewer of fraud; set-alias on fraud needs contributor or admin",
    )
    assert_forbidden(
        lambda: models.get_model(viewer, "churn"),
        (
            "alice is a viewer of fraud; read on churn needs viewer, runner, contributor, "
            "approver, releaser or admin"
        ),
    )
    assert_forbidden(
        lambda: audit.audit_log(viewer),
        (
            "alice is a viewer of fraud; read on every model needs a global viewer, "
            "runner, contributor, approver, releaser or admin"
        ),
    )
    assert audit.audit_log(viewer, "fraud")[0].action == "model.create"
    assert snapshot(fraud) == before


def test_a_contributor_pushes_but_cannot_promote(fraud: ServiceContext) -> None:
    contributor = as_user(fraud, Grant("contributor", "fraud"))
    before = snapshot(fraud)

    for call in (
        lambda: governance.promote(contributor, "fraud@2", "production", reason="try").event,
        lambda: governance.promote(contributor, "fraud@2", "staging").event,
    ):
        assert_forbidden(
            call, "alice is a contributor of fraud; promote on fraud needs releaser or admin"
        )
    assert_forbidden(
        lambda: aliases.rollback(contributor, "fraud", "production"),
        "alice is a contributor of fraud; rollback on fraud needs releaser or admin",
    )
    assert_forbidden(
        lambda: models.create_model(contributor, "new"),
        "alice is a contributor of fraud; create-model needs a global contributor or admin",
    )
    assert_forbidden(
        lambda: versions.list_versions(contributor, "churn"),
        "alice is a contributor of fraud; read on churn needs viewer, runner, contributor, "
        "approver, releaser or admin",
    )
    assert snapshot(fraud) == before

    version = push(contributor, "fraud", b"three")
    assert version.number == 3 and version.created_by == "alice"
    aliases.set_alias(contributor, "fraud@3", "candidate")
    assert versions.archive(contributor, "fraud@2").status == "archived"
    assert_forbidden(
        lambda: push(contributor, "churn", b"four"),
        "alice is a contributor of fraud; push on churn needs contributor or admin",
    )
    assert [e.actor for e in audit.audit_log(fraud, "fraud")][-3:] == ["alice"] * 3


def test_a_releaser_promotes_but_cannot_push(fraud: ServiceContext) -> None:
    releaser = as_user(fraud, Grant("releaser"))
    event = governance.promote(releaser, "fraud@2", "production", reason="better").event
    assert (event.old, event.new, event.actor) == (1, 2, "alice")
    assert aliases.rollback(releaser, "fraud", "production").new == 1
    before = snapshot(fraud)
    assert_forbidden(
        lambda: versions.register_version(releaser, "fraud", [], PushRequest()),
        "alice is a global releaser; push on fraud needs contributor or admin",
    )
    assert_forbidden(
        lambda: versions.archive(releaser, "fraud@2"),
        "alice is a global releaser; archive on fraud needs contributor or admin",
    )
    assert snapshot(fraud) == before


def test_only_admins_verify_collect_garbage_and_manage_users(fraud: ServiceContext) -> None:
    contributor = as_user(fraud, Grant("contributor"))
    before = snapshot(fraud)
    assert_forbidden(
        lambda: maintenance.gc(contributor, grace_seconds=0),
        "alice is a global contributor; gc needs a global admin",
    )
    assert_forbidden(
        lambda: maintenance.verify(contributor),
        "alice is a global contributor; verify on every model needs a global admin",
    )
    assert_forbidden(
        lambda: maintenance.verify(contributor, "fraud@1"),
        "alice is a global contributor; verify on fraud needs admin",
    )
    manage = "alice is a global contributor; manage-users needs a global admin"
    assert_forbidden(lambda: admin.create_user(contributor, "mallory", "admin"), manage)
    assert_forbidden(lambda: admin.grant(contributor, "alice", "admin"), manage)
    assert_forbidden(lambda: admin.list_users(contributor), manage)
    assert_forbidden(lambda: admin.create_token(contributor, "alice"), manage)
    assert snapshot(fraud) == before

    model_admin = as_user(fraud, Grant("admin", "fraud"))
    assert maintenance.verify(model_admin, "fraud@1").ok
    assert_forbidden(
        lambda: maintenance.verify(model_admin),
        "alice is an admin of fraud; verify on every model needs a global admin",
    )
    assert maintenance.gc(as_user(fraud, Grant("admin")), grace_seconds=3600).blobs == 0


def test_an_actor_without_grants_sees_nothing(fraud: ServiceContext) -> None:
    nobody = as_user(fraud)
    assert_forbidden(
        lambda: models.list_models(nobody),
        "alice has no role; read on some model needs viewer, runner, contributor, "
        "approver, releaser or admin on some model",
    )
    assert_forbidden(
        lambda: versions.open_blob(nobody, "sha256:" + "0" * 64),
        "alice has no role; read on some model needs viewer, runner, contributor, "
        "approver, releaser or admin on some model",
    )


def test_a_token_opens_a_registry_for_its_user(fraud: ServiceContext) -> None:
    _, issued = admin.create_user(fraud, "carol", "contributor", "fraud")
    served = admin.context_for_token(fraud, issued.secret)
    assert served.principal == Actor("carol", (Grant("contributor", "fraud"),))
    assert served.actor == "carol" and served.store is fraud.store
    assert push(served, "fraud", b"by carol").created_by == "carol"
    served.close()  # a per-request registry leaves the shared store open
    assert versions.get_version(fraud, "fraud@3").created_by == "carol"
    with pytest.raises(TypeError):
        fraud.for_actor("carol")  # type: ignore[arg-type]


# migrations -------------------------------------------------------------------------------


@pytest.fixture
def database_at_0001(database_url: str) -> str:
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    engine = create_engine(database_url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
    engine.dispose()
    return database_url


@pytest.mark.backends("sqlite", "postgresql")  # migrates SQL
@pytest.mark.empty_database
def test_a_0001_database_gains_the_user_tables(database_at_0001: str) -> None:
    store = SqlMetadataStore.open(database_at_0001, blob_store_id="s1")
    store.close()
    engine = create_engine(database_at_0001)
    with engine.connect() as conn:
        assert migrate.current_revision(conn) == migrate.HEAD
        assert {"users", "tokens", "grants"} <= set(inspect(conn).get_table_names())
    engine.dispose()
