"""Whole numbers the stores keep: every integer column is a signed 64-bit BIGINT, so a
seed, a step or a cursor outside that range is refused here, not by the database."""

from __future__ import annotations

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def is_int64(value: object) -> bool:
    """A whole number (not a bool) that a BIGINT column holds."""
    return type(value) is int and INT64_MIN <= value <= INT64_MAX
