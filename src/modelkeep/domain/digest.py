"""The one spelling of a content digest: ``sha256:`` and 64 lowercase hex digits.

Every digest modelkeep stores or shows (blobs, chunks, manifests, recipes, records,
policies, keys) is made here, so that its form cannot drift between layers.
"""

from __future__ import annotations

import hashlib
import re
from typing import Protocol

from modelkeep.errors import InvalidInput

PREFIX = "sha256:"
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


class Hasher(Protocol):
    """What ``digest_of`` needs of a hash object (``hashlib.sha256()``)."""

    def hexdigest(self) -> str: ...


def sha256_digest(data: bytes | bytearray | memoryview) -> str:
    """``sha256:<hex>`` of ``data``."""
    return PREFIX + hashlib.sha256(data).hexdigest()


def digest_of(hasher: Hasher) -> str:
    """``sha256:<hex>`` of what a sha256 hash object was fed."""
    return PREFIX + hasher.hexdigest()


def is_digest(text: str) -> bool:
    return DIGEST.fullmatch(text) is not None


def check_digest(digest: str) -> str:
    """``digest`` unchanged, or ``InvalidInput`` if it is not ``sha256:<64 hex>``."""
    if not is_digest(digest):
        raise InvalidInput(f"{digest!r} is not a digest", "write it as sha256:<64 hex digits>")
    return digest


def hex_part(digest: str) -> str:
    """The hex digits of a digest (its name in a fan-out directory or a file name)."""
    return digest.removeprefix(PREFIX)
