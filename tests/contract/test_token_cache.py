from __future__ import annotations

import time

import pytest

from modelkeep.bootstrap import open_context
from modelkeep.config import Settings
from modelkeep.errors import Unauthenticated
from modelkeep.services import admin
from modelkeep.services.context import ServiceContext


def test_without_a_time_every_request_is_checked(registry: ServiceContext) -> None:
    _, issued = admin.create_user(registry, "alice", "viewer")
    checking = admin.TokenCache(registry, ttl=0)
    assert checking.context_for(issued.secret).actor == "alice"
    with registry.store.transaction(write=True) as tx:  # a change nothing audited
        tx.users.set_disabled("alice", registry.clock())
        tx.commit()
    with pytest.raises(Unauthenticated):
        checking.context_for(issued.secret)
    with pytest.raises(Unauthenticated):
        checking.context_for(None)


@pytest.mark.parametrize("change", ["revoke the token", "disable", "delete", "revoke the grant"])
def test_a_cached_token_stops_at_once_when_its_user_or_grants_change(
    registry: ServiceContext, change: str
) -> None:
    _, issued = admin.create_user(registry, "alice", "viewer")
    remembering = admin.TokenCache(registry, ttl=3600)
    assert remembering.context_for(issued.secret).principal.grants
    if change == "revoke the token":
        admin.revoke_token(registry, issued.info.id)
    elif change == "disable":
        admin.set_disabled(registry, "alice", True)
    elif change == "delete":
        admin.delete_user(registry, "alice")
    else:
        admin.revoke_grant(registry, "alice", "viewer")
        assert remembering.context_for(issued.secret).principal.grants == ()
        return
    with pytest.raises(Unauthenticated):
        remembering.context_for(issued.secret)


def test_a_cached_token_is_remembered_while_nothing_changes(registry: ServiceContext) -> None:
    _, issued = admin.create_user(registry, "alice", "viewer")
    remembering = admin.TokenCache(registry, ttl=3600)
    assert remembering.context_for(issued.secret).actor == "alice"
    with registry.store.transaction(write=True) as tx:  # an unaudited change of the row
        tx.users.set_disabled("alice", registry.clock())
        tx.commit()
    assert remembering.context_for(issued.secret).actor == "alice"  # within its time
    with pytest.raises(Unauthenticated):
        admin.TokenCache(registry, ttl=0).context_for(issued.secret)


def test_a_remembered_token_is_answered_without_the_database_only_while_fresh(
    registry: ServiceContext, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, issued = admin.create_user(registry, "alice", "viewer")
    remembering = admin.TokenCache(registry, ttl=3600)
    assert remembering.remembered(issued.secret) is None  # never looked up
    assert remembering.context_for(issued.secret).actor == "alice"
    found = remembering.remembered(issued.secret)
    assert found is not None and found.actor == "alice"
    assert remembering.remembered("mk_unknown") is None
    admin.set_disabled(registry, "alice", True)  # this process's change: at once
    assert remembering.remembered(issued.secret) is None
    with pytest.raises(Unauthenticated):
        remembering.context_for(issued.secret)
    admin.set_disabled(registry, "alice", False)
    assert remembering.context_for(issued.secret).actor == "alice"
    other = open_context(settings)  # another process: seen once the head is read again
    try:
        admin.set_disabled(other, "alice", True)
    finally:
        other.close()
    later = time.monotonic() + admin.TokenCache.HEAD_RECHECK_SECONDS
    monkeypatch.setattr(admin.time, "monotonic", lambda: later)
    assert remembering.remembered(issued.secret) is None
    with pytest.raises(Unauthenticated):
        remembering.context_for(issued.secret)
