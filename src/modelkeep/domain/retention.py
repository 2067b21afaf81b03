"""Retention: which versions of a model its policy keeps, and which it releases.

A model's policy keeps its last ``keep_last`` versions by number, and every version that
an alias or stage pointed at within the last ``keep_days`` days (or that was registered
in that time). Whatever the policy, a version an alias or stage points at now is kept.
Every other version is **purged**: archived, and its files are no longer kept (``gc``
then deletes the blobs no other version needs); its manifest and metadata stay forever.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from modelkeep.domain.aliases import AliasEvent
from modelkeep.domain.versions import Version
from modelkeep.errors import InvalidInput

MAX_KEEP_LAST = 1_000_000
MAX_KEEP_DAYS = 36_500


@dataclass(frozen=True)
class RetentionPolicy:
    """A model's policy; ``keep_last`` and ``keep_days`` None: no rule of that kind."""

    model: str
    keep_last: int | None = None
    keep_days: int | None = None
    updated_at: datetime | None = None
    updated_by: str | None = None

    @property
    def is_set(self) -> bool:
        """False for the absence of a policy: every version is kept."""
        return self.keep_last is not None or self.keep_days is not None

    def describe(self) -> str:
        """``keep the last 3 versions and what an alias named within 30 days``."""
        rules = []
        if self.keep_last is not None:
            rules.append(f"the last {_count(self.keep_last, 'version')}")
        if self.keep_days is not None:
            rules.append(
                f"what was registered or named by an alias within {_count(self.keep_days, 'day')}"
            )
        return "keep " + " and ".join(rules) if rules else "keep every version (no policy)"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "keep_last": self.keep_last,
            "keep_days": self.keep_days,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "updated_by": self.updated_by,
        }


def check_policy(keep_last: int | None, keep_days: int | None) -> None:
    """A policy names at least one rule, each a whole number in range."""
    if keep_last is None and keep_days is None:
        raise InvalidInput(
            "a retention policy needs keep_last or keep_days",
            "give --keep-last N and/or --keep-days D, or clear the policy",
        )
    for name, value, most in (
        ("keep_last", keep_last, MAX_KEEP_LAST),
        ("keep_days", keep_days, MAX_KEEP_DAYS),
    ):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
            raise InvalidInput(f"{name} {value!r} is not a whole number from 1 to {most}")


def kept(
    policy: RetentionPolicy,
    versions: Sequence[Version],
    events: Iterable[AliasEvent],
    now: datetime,
) -> set[int]:
    """The numbers of the versions the policy keeps (or that an alias keeps now)."""
    numbers = {v.number for v in versions if v.aliases}  # named now: always kept
    if policy.keep_last is not None:
        numbers.update(sorted(v.number for v in versions)[-policy.keep_last :])
    if policy.keep_days is not None:
        since = now - timedelta(days=policy.keep_days)
        numbers.update(v.number for v in versions if v.created_at >= since)
        for event in events:  # pointed at before the move (old) or after it (new)
            if event.at >= since:
                numbers.update(n for n in (event.old, event.new) if n is not None)
    return numbers


def to_purge(
    policy: RetentionPolicy,
    versions: Sequence[Version],
    events: Iterable[AliasEvent],
    now: datetime,
) -> list[Version]:
    """The versions whose files the policy releases now (none without a policy)."""
    if not policy.is_set:
        return []
    keep = kept(policy, versions, events, now)
    return [v for v in versions if v.purged_at is None and v.number not in keep]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
