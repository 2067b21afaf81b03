"""The metadata store in memory: the unit of work over copy-on-write tables.

One ``Database`` holds the committed tables of one store. A reader takes the tables
committed when it begins and never sees a change made after. A writer holds the
database's write lock for its whole life (writers take turns, as SQLite's do), changes a
private copy of the tables, and publishes it on ``commit``; without ``commit`` nothing
is kept. Ordered writes (the default) may append to the audit chain; unordered ones
(metric points) may not, as in SQL.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from modelkeep.errors import StoreMismatch, StoreUnavailable
from modelkeep.storage.memory.audit import AuditRows
from modelkeep.storage.memory.datasets import DatasetRows
from modelkeep.storage.memory.deployments import DeploymentRows
from modelkeep.storage.memory.governance import GovernanceRows, RetentionRows
from modelkeep.storage.memory.recipes import RecipeRows
from modelkeep.storage.memory.registry import AliasRows, ModelRows, VersionRows
from modelkeep.storage.memory.state import Tables, View
from modelkeep.storage.memory.tracking import TrackingRows
from modelkeep.storage.memory.users import UserRows


class Database:
    """The committed state of one in-memory store, and the lock its writers take."""

    def __init__(self, store_id: str) -> None:
        self.store_id = store_id
        self.committed = Tables()
        self._lock = threading.Lock()
        self._writer: int | None = None

    @contextmanager
    def writing(self, timeout_s: float) -> Iterator[None]:
        """Hold the write lock; a second writer waits up to ``timeout_s`` seconds."""
        if self._writer == threading.get_ident():
            raise StoreUnavailable(
                "a write transaction was opened inside another one on the same thread",
                "finish the first transaction before starting another",
            )
        if not self._lock.acquire(timeout=timeout_s):
            raise StoreUnavailable(
                f"the in-memory store is busy: another writer held it longer than {timeout_s:g} s"
            )
        self._writer = threading.get_ident()
        try:
            yield
        finally:
            self._writer = None
            self._lock.release()


class MemoryTransaction:
    """One unit of work: every context reads and writes through the same ``View``."""

    def __init__(self, database: Database, *, write: bool, ordered: bool) -> None:
        self._database = database
        self._view = View(database.committed, write=write)
        self.audit = AuditRows(self._view, write=write and ordered)
        self.models = ModelRows(self._view)
        self.versions = VersionRows(self._view)
        self.aliases = AliasRows(self._view)
        self.users = UserRows(self._view)
        self.governance = GovernanceRows(self._view)
        self.recipes = RecipeRows(self._view, self.governance)
        self.tracking = TrackingRows(self._view)
        self.datasets = DatasetRows(self._view)
        self.retention = RetentionRows(self._view)
        self.deployments = DeploymentRows(self._view)

    def commit(self) -> None:
        changed = self._view.publish()
        if changed is not None:
            self._database.committed = changed


class MemoryMetadataStore:
    """A ``MetadataStore`` whose rows live in this process only: for tests. Opening the
    same ``Database`` again (see ``open_memory_store``) sees what was committed."""

    def __init__(self, database: Database, *, busy_timeout_ms: int = 30000) -> None:
        self._database = database
        self._timeout_s = busy_timeout_ms / 1000
        self.store_id = database.store_id

    @contextmanager
    def transaction(
        self, *, write: bool = False, ordered: bool = True
    ) -> Iterator[MemoryTransaction]:
        if not write:
            yield MemoryTransaction(self._database, write=False, ordered=ordered)
            return
        with self._database.writing(self._timeout_s):
            yield MemoryTransaction(self._database, write=True, ordered=ordered)

    def close(self) -> None:
        """Nothing to release: the rows stay for the next open, like a database's."""


_DATABASES: dict[str, Database] = {}
_DATABASES_LOCK = threading.Lock()


def open_memory_store(
    name: str, *, blob_store_id: str, busy_timeout_ms: int = 30000
) -> MemoryMetadataStore:
    """The in-memory store called ``name`` in this process, made on first open for the
    blob store ``blob_store_id``; opening it with another blob store is refused."""
    with _DATABASES_LOCK:
        database = _DATABASES.setdefault(name, Database(blob_store_id))
    if database.store_id != blob_store_id:
        raise StoreMismatch(
            f"the in-memory database {name!r} belongs to store {database.store_id}, "
            f"the blobs to store {blob_store_id}"
        )
    return MemoryMetadataStore(database, busy_timeout_ms=busy_timeout_ms)


def drop_memory_store(name: str) -> bool:
    """Forget the in-memory store called ``name`` (a test's, when it ends)."""
    with _DATABASES_LOCK:
        return _DATABASES.pop(name, None) is not None
