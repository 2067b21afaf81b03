"""The composition root: the one place that reads settings and picks adapters.

Settings -> adapters -> services. It imports no entrypoint: the CLI, the API app (and
any later server: a gateway, a web UI) are built from what it returns.
"""

from __future__ import annotations

import getpass
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from modelkeep.config import Settings
from modelkeep.domain.access import Actor
from modelkeep.domain.digest import PREFIX
from modelkeep.errors import StoreUnavailable, UnsupportedUri
from modelkeep.ports.blobs import BlobStore
from modelkeep.ports.unit_of_work import MetadataStore
from modelkeep.services.context import ServiceContext
from modelkeep.storage.blobs.local import LocalBlobStore
from modelkeep.storage.keys import FileAuditSigner, default_key_path, model_signer_beside
from modelkeep.storage.sql.store import SqlMetadataStore

DATABASE_FILE = "modelkeep.db"
HOST_PORT = re.compile(
    r"(localhost|\d{1,3}(\.\d{1,3}){3}|\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+)"
    r":\d{1,5}(/.*)?"
)
"""HOST:PORT without a scheme: a server meant, not a directory."""
MEMORY_SCHEME = "memory://"

Authenticate = Callable[[str | None], ServiceContext]
"""Turns a request's bearer token into a ServiceContext acting for its user (or raises)."""


@dataclass(frozen=True)
class ServerRuntime:
    """What a server serves, whatever its protocol: built by ``open_server``, turned into
    the HTTP API by ``entrypoints.api.app.create_app``."""

    authenticate: Authenticate
    ready: Callable[[], None]
    """Raises when the database or the blob store cannot be reached."""
    gc_grace_seconds: int
    close: Callable[[], None]
    """Closes what ``open_server`` opened (the database's connections)."""
    body_timeout_seconds: float = 30.0
    """Seconds to wait for the next part of a request body (MODELKEEP_BODY_TIMEOUT_SECONDS)."""
    remembered: Callable[[str | None], ServiceContext | None] = lambda _token: None
    """``authenticate``'s answer when it needs no I/O (a token remembered, the audit head
    read recently), else None: lets a server skip a worker thread on most requests."""


def local_actor() -> str:
    try:
        return f"local:{getpass.getuser()}"
    except (KeyError, OSError):  # no passwd entry (some containers)
        return "local:unknown"


def store_root(uri: str) -> Path:
    if uri.startswith(("http://", "https://")):
        raise UnsupportedUri(
            f"{uri} is a server URL, not a store directory",
            "run the server on the store's directory, or connect to it with the SDK",
        )
    if "://" in uri and not uri.startswith("file://"):
        raise UnsupportedUri(f"{uri!r} is not a store location")
    if HOST_PORT.fullmatch(uri):  # else a folder named like the address would be made
        raise UnsupportedUri(
            f"{uri!r} looks like a server address, not a store directory",
            f"connect to the server with http://{uri}, or write ./{uri} for a directory",
        )
    root = Path(uri.removeprefix("file://")).expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise UnsupportedUri(
            f"{root} is a file, not a store directory",
            "point --uri (or MODELKEEP_URI) at a directory; a new one is made on first write",
        )
    return root


def missing_store(settings: Settings) -> Path | None:
    """The directory of an embedded store that does not exist yet, else None.

    Only an embedded store can be missing: with ``MODELKEEP_DATABASE_URL`` the database
    says what exists. Reads refuse a missing store (instead of quietly making one);
    writes create it."""
    if settings.database_url or settings.uri.startswith(("http://", "https://")):
        return None
    root = store_root(settings.uri)
    return None if (root / DATABASE_FILE).is_file() else root


def open_blob_store(settings: Settings, root: Path) -> BlobStore:
    """``MODELKEEP_BLOB_URL``: empty for ``<root>/blobs``, ``s3://bucket/prefix`` for S3."""
    url = settings.blob_url
    if not url:
        return LocalBlobStore(root)
    if url.startswith("s3://"):
        from modelkeep.storage.blobs.s3 import S3BlobStore  # boto3: only for an S3 store

        if not settings.database_url:  # the SQLite database stays in the store directory
            _make_directory(root)
        return S3BlobStore(url, endpoint_url=settings.s3_endpoint_url or None)
    raise UnsupportedUri(
        f"MODELKEEP_BLOB_URL {url!r} is not a blob store location",
        "use s3://BUCKET/PREFIX, or leave it empty for blobs inside the store directory",
    )


def _make_directory(root: Path) -> None:
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailable(
            f"cannot create the store directory {root}: {exc.strerror}",
            "check the directory's permissions, or set MODELKEEP_DATABASE_URL",
        ) from None


def open_metadata_store(settings: Settings, root: Path, blob_store_id: str) -> MetadataStore:
    """``MODELKEEP_DATABASE_URL``: empty for SQLite in the store directory, a SQLAlchemy
    URL, or ``memory://[NAME]`` for rows kept in this process only (tests)."""
    url = settings.database_url
    timeout_ms = settings.sqlite_busy_timeout_ms
    if url.startswith(MEMORY_SCHEME):
        name = url.removeprefix(MEMORY_SCHEME) or blob_store_id
        from modelkeep.storage.memory import open_memory_store  # tests only: not loaded else

        return open_memory_store(name, blob_store_id=blob_store_id, busy_timeout_ms=timeout_ms)
    database_url = url or f"sqlite:///{root / DATABASE_FILE}"
    return SqlMetadataStore.open(
        database_url, blob_store_id=blob_store_id, busy_timeout_ms=timeout_ms
    )


def open_context(settings: Settings) -> ServiceContext:
    root = store_root(settings.uri)
    blobs = open_blob_store(settings, root)
    store = open_metadata_store(settings, root, blobs.store_id)
    operator = Actor.operator(local_actor())
    signer = audit_signer(settings, root)
    return ServiceContext(
        store, blobs, operator, signer=signer, model_signer=model_signer_beside(signer.path)
    )


def audit_signer(settings: Settings, root: Path) -> FileAuditSigner:
    """``MODELKEEP_SIGNING_KEY``, or ``<store>/keys/audit-ed25519.pem`` made on first use."""
    if settings.signing_key:
        return FileAuditSigner(Path(settings.signing_key).expanduser(), may_create=False)
    return FileAuditSigner(default_key_path(root), may_create=True)


def open_server(settings: Settings) -> ServerRuntime:
    """What ``modelkeep server`` serves, and how to close it: one context opened as the
    operator, from which each request gets a context acting for its token's user."""
    from modelkeep.services import admin

    base = open_context(settings)
    tokens = admin.TokenCache(base, settings.token_cache_seconds)

    def ready() -> None:
        with base.store.transaction() as tx:
            tx.audit.head()
        base.blobs.stat(PREFIX + "0" * 64)  # a round trip to the blob store

    return ServerRuntime(
        tokens.context_for,
        ready,
        settings.gc_grace_seconds,
        base.close,
        body_timeout_seconds=settings.body_timeout_seconds,
        remembered=tokens.remembered,
    )
