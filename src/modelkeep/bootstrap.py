"""The composition root: the one place that reads settings and picks adapters."""

from __future__ import annotations

import getpass
from pathlib import Path

from modelkeep.config import Settings
from modelkeep.errors import UnsupportedUri
from modelkeep.services.registry import Registry
from modelkeep.storage.blobs.local import LocalBlobStore
from modelkeep.storage.sql.store import SqlMetadataStore

DATABASE_FILE = "modelkeep.db"


def local_actor() -> str:
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "local:unknown"


def store_root(uri: str) -> Path:
    if uri.startswith(("http://", "https://")):
        raise UnsupportedUri(
            f"{uri} is a server URL; this modelkeep has no server yet",
            "use a directory path for the embedded store",
        )
    if "://" in uri and not uri.startswith("file://"):
        raise UnsupportedUri(f"{uri!r} is not a store location")
    return Path(uri.removeprefix("file://")).expanduser().absolute()


def open_registry(settings: Settings) -> Registry:
    root = store_root(settings.uri)
    blobs = LocalBlobStore(root)
    database_url = settings.database_url or f"sqlite:///{root / DATABASE_FILE}"
    store = SqlMetadataStore.open(
        database_url, blob_store_id=blobs.store_id, busy_timeout_ms=settings.sqlite_busy_timeout_ms
    )
    return Registry(store, blobs, actor=local_actor())
