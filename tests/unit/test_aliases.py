from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelkeep.domain.aliases import AliasAction, AliasEvent, rollback_target, target_at
from modelkeep.errors import NothingToRollBack

T0 = datetime(2026, 3, 3, 10, 0, tzinfo=UTC)


def event(i: int, action: AliasAction, new: int | None, alias: str = "production") -> AliasEvent:
    return AliasEvent("m", alias, action, None, new, "local:ann", T0 + timedelta(minutes=i))


def test_rollback_pops_the_stage_history_like_a_stack() -> None:
    events = [event(0, "promote", 1), event(1, "promote", 2), event(2, "promote", 3)]
    assert rollback_target("production", events) == (3, 2)
    events.append(event(3, "rollback", 2))
    assert rollback_target("production", events) == (2, 1)
    events.append(event(4, "rollback", 1))
    with pytest.raises(NothingToRollBack):
        rollback_target("production", events)


def test_rollback_ignores_other_aliases() -> None:
    events = [event(0, "promote", 1), event(1, "promote", 5, alias="staging")]
    with pytest.raises(NothingToRollBack, match="no earlier target"):
        rollback_target("production", events)
    with pytest.raises(NothingToRollBack, match="never promoted"):
        rollback_target("production", [])


def test_target_at_answers_where_an_alias_pointed() -> None:
    events = [
        event(0, "set", 1, "champion"),
        event(10, "set", 2, "champion"),
        event(20, "rm", None, "champion"),
    ]
    assert target_at(events, "champion", T0 - timedelta(seconds=1)) is None
    assert target_at(events, "champion", T0 + timedelta(minutes=5)) == 1
    assert target_at(events, "champion", T0 + timedelta(minutes=10)) == 2
    assert target_at(events, "champion", T0 + timedelta(minutes=30)) is None
