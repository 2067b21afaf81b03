"""One layout on every backend: ``blobs/sha256/ab/cdef…``, a format file at the root, and
named write-once documents such as ``checkpoints/<seq>-<hash12>.json``."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass

from modelkeep.domain.digest import PREFIX, check_digest, hex_part, is_digest
from modelkeep.errors import InvalidInput, UnknownStoreFormat

STORE_FORMAT = 1
FORMAT_FILE = "modelkeep-store.json"
BLOB_PREFIX = "blobs/sha256/"
NAMED_PREFIXES = ("checkpoints/",)
"""The prefixes of named objects (``put_named``): never blobs, never temporary files."""
_NAMED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def blob_key(digest: str) -> str:
    hexpart = hex_part(check_digest(digest))
    return f"{BLOB_PREFIX}{hexpart[:2]}/{hexpart[2:]}"


def digest_of_key(key: str) -> str | None:
    """The digest a blob key names, or None if the key is not a blob's."""
    if not key.startswith(BLOB_PREFIX):
        return None
    fan, _, rest = key.removeprefix(BLOB_PREFIX).partition("/")
    candidate = PREFIX + fan + rest
    return candidate if len(fan) == 2 and is_digest(candidate) else None


def check_named_prefix(prefix: str) -> str:
    if prefix not in NAMED_PREFIXES:
        raise InvalidInput(
            f"{prefix!r} is not a prefix of named objects", f"use one of {NAMED_PREFIXES}"
        )
    return prefix


def check_named_key(key: str) -> str:
    """``PREFIX/NAME`` with a known prefix and a plain file name (no ``..``, no ``/``)."""
    prefix, _, name = key.partition("/")
    if prefix + "/" not in NAMED_PREFIXES or not _NAMED_NAME.fullmatch(name):
        raise InvalidInput(
            f"{key!r} is not the key of a named object",
            f"use PREFIX/NAME with a prefix in {NAMED_PREFIXES}",
        )
    return key


@dataclass(frozen=True)
class StoreFormat:
    format: int
    store_id: str

    @classmethod
    def new(cls) -> StoreFormat:
        return cls(STORE_FORMAT, uuid.uuid4().hex)

    def to_bytes(self) -> bytes:
        return json.dumps({"format": self.format, "store_id": self.store_id}).encode() + b"\n"

    @classmethod
    def parse(cls, data: bytes, where: str) -> StoreFormat:
        try:
            document = json.loads(data)
            fmt, store_id = document["format"], document["store_id"]
        except (ValueError, KeyError, TypeError):
            raise UnknownStoreFormat(f"{where} is not a modelkeep format file") from None
        if fmt != STORE_FORMAT or not isinstance(store_id, str):
            raise UnknownStoreFormat(
                f"{where} has store format {fmt!r}; this modelkeep knows format {STORE_FORMAT}"
            )
        return cls(fmt, store_id)
