"""One layout on every backend: ``blobs/sha256/ab/cdef…`` and a format file at the root."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from modelkeep.domain.manifest import DIGEST, check_digest
from modelkeep.errors import UnknownStoreFormat

STORE_FORMAT = 1
FORMAT_FILE = "modelkeep-store.json"
BLOB_PREFIX = "blobs/sha256/"


def blob_key(digest: str) -> str:
    hexpart = check_digest(digest).removeprefix("sha256:")
    return f"{BLOB_PREFIX}{hexpart[:2]}/{hexpart[2:]}"


def digest_of_key(key: str) -> str | None:
    """The digest a blob key names, or None if the key is not a blob's."""
    if not key.startswith(BLOB_PREFIX):
        return None
    fan, _, rest = key.removeprefix(BLOB_PREFIX).partition("/")
    candidate = "sha256:" + fan + rest
    return candidate if len(fan) == 2 and DIGEST.fullmatch(candidate) else None


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
