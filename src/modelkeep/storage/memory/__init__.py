"""The metadata store in memory, for tests: the same ports and the same semantics as the
SQL adapter (``storage/sql``), held to the same contract tests, with nothing on disk.

Opened by ``MODELKEEP_DATABASE_URL=memory://NAME`` (``bootstrap``): the rows live as
long as the process, shared by every open of that name in it; ``memory://`` alone names
the store after its blob store. Blobs stay wherever ``MODELKEEP_BLOB_URL`` says.
"""

from modelkeep.storage.memory.store import (
    MemoryMetadataStore,
    drop_memory_store,
    open_memory_store,
)

__all__ = ["MemoryMetadataStore", "drop_memory_store", "open_memory_store"]
