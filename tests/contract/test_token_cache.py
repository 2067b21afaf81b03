from __future__ import annotations

import pytest

from modelkeep.errors import Unauthenticated
from modelkeep.services import admin
from modelkeep.services.context import ServiceContext


def test_a_cached_token_is_checked_again_after_its_time(registry: ServiceContext) -> None:
    _, issued = admin.create_user(registry, "alice", "viewer")
    remembering = admin.TokenCache(registry, ttl=3600)
    checking = admin.TokenCache(registry, ttl=0)
    assert remembering.context_for(issued.secret).actor == "alice"
    assert checking.context_for(issued.secret).actor == "alice"
    admin.revoke_token(registry, issued.info.id)
    assert remembering.context_for(issued.secret).actor == "alice"  # within its time
    with pytest.raises(Unauthenticated):
        checking.context_for(issued.secret)
    with pytest.raises(Unauthenticated):
        admin.TokenCache(registry, ttl=3600).context_for(issued.secret)
    with pytest.raises(Unauthenticated):
        remembering.context_for(None)
