"""Which versions a retention policy keeps: the pure rules of domain/retention.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelkeep.domain.aliases import AliasEvent
from modelkeep.domain.retention import RetentionPolicy, check_policy, kept, to_purge
from modelkeep.domain.versions import Version, VersionMetadata
from modelkeep.errors import InvalidInput

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def version(number: int, days_ago: float, *aliases: str, purged: bool = False) -> Version:
    return Version(
        "m",
        number,
        None,
        f"sha256:{number:064x}",
        "archived" if purged else "active",
        NOW - timedelta(days=days_ago),
        "local:test",
        (),
        VersionMetadata(),
        aliases=aliases,
        purged_at=NOW - timedelta(days=1) if purged else None,
    )


def moved(alias: str, old: int | None, new: int | None, days_ago: float) -> AliasEvent:
    return AliasEvent("m", alias, "set", old, new, "local:test", NOW - timedelta(days=days_ago))


def numbers(found: list[Version]) -> list[int]:
    return [v.number for v in found]


def test_keep_last_keeps_the_highest_numbers_and_whatever_an_alias_names_now() -> None:
    versions = [
        version(1, 90, "production"),
        version(2, 80, "champion"),
        version(3, 70),
        version(4, 60),
        version(5, 50),
        version(6, 40),
    ]
    policy = RetentionPolicy("m", keep_last=2)
    assert kept(policy, versions, [], NOW) == {1, 2, 5, 6}
    assert numbers(to_purge(policy, versions, [], NOW)) == [3, 4]


def test_keep_days_keeps_what_an_alias_pointed_at_or_was_registered_in_the_window() -> None:
    versions = [version(n, 100 - n) for n in range(1, 8)]  # all registered 93+ days ago
    events = [
        moved("champion", None, 1, 60),  # set and moved on before the window: not kept
        moved("champion", 1, 2, 40),  # 2 was pointed at from 40 days ago...
        moved("champion", 2, 3, 20),  # ...until 20 days ago: inside the 30-day window
        moved("champion", 3, None, 10),  # 3 was pointed at until 10 days ago
        moved("staging", None, 4, 25),  # a stage counts like an alias
    ]
    versions.append(version(8, 2))  # registered within the window
    policy = RetentionPolicy("m", keep_days=30)
    assert kept(policy, versions, events, NOW) == {2, 3, 4, 8}
    assert numbers(to_purge(policy, versions, events, NOW)) == [1, 5, 6, 7]


def test_both_rules_keep_the_union_and_purged_versions_are_not_purged_again() -> None:
    versions = [version(1, 50, purged=True), version(2, 40), version(3, 30), version(4, 1)]
    policy = RetentionPolicy("m", keep_last=1, keep_days=7)
    events = [moved("champion", None, 3, 3), moved("champion", 3, 4, 2)]
    assert kept(policy, versions, events, NOW) == {3, 4}
    assert numbers(to_purge(policy, versions, events, NOW)) == [2]


def test_no_policy_purges_nothing() -> None:
    versions = [version(1, 400), version(2, 300)]
    assert to_purge(RetentionPolicy("m"), versions, [], NOW) == []


@pytest.mark.parametrize(
    ("keep_last", "keep_days"),
    [(None, None), (0, None), (None, 0), (-1, 3), (True, None), (2, 36_501), (1_000_001, None)],
)
def test_bad_policies_are_refused(keep_last: int | None, keep_days: int | None) -> None:
    with pytest.raises(InvalidInput):
        check_policy(keep_last, keep_days)


def test_a_policy_describes_itself() -> None:
    assert RetentionPolicy("m", keep_last=1).describe() == "keep the last 1 version"
    assert RetentionPolicy("m", keep_last=3, keep_days=30).describe() == (
        "keep the last 3 versions and what was registered or named by an alias within 30 days"
    )
