"""Keyset pagination: ``limit`` items after the cursor ``after``, and the next cursor.

Lists that grow without bound (a model's versions, the audit log) read only their page
from the database: their routes ask for ``limit + 1`` rows after the cursor (an index
range) and pass ``after=None`` here, so the extra row only says whether a next page exists.
Short lists (models, users, a version's checks) are cut here."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import Query

from modelkeep.domain.numbers import INT64_MAX

Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[int, Query(ge=0, le=INT64_MAX, description="The key of the last item seen")]
"""A numeric cursor: a row id or number, which the database holds in 64 bits."""


def page(
    keyed: Iterable[tuple[Any, dict[str, Any]]], limit: int, after: Any | None
) -> dict[str, Any]:
    """``keyed`` holds ``(key, document)`` pairs in ascending key order."""
    rest = [(k, d) for k, d in keyed if after is None or k > after]
    chunk = rest[:limit]
    more = len(rest) > limit
    return {"items": [d for _, d in chunk], "next": chunk[-1][0] if more and chunk else None}
