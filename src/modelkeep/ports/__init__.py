"""The ports services depend on. Storage adapters implement them; services never import
storage. Each port has real adapters (``storage/``) and an in-memory one for unit tests,
all held to one contract suite.

- ``blobs``: the content-addressed blob store and the audit signing key;
- ``unit_of_work``: the metadata store and its transaction, whose rows are reached by
  context: ``registry`` (models, versions, aliases), ``audit``, ``users``, ``recipes``,
  ``tracking`` (runs, datasets), ``governance`` (policies, evidence, retention).
"""

from modelkeep.ports.blobs import (
    AuditSigner,
    BlobInfo,
    BlobStore,
    Progress,
    StoredBlob,
    report_skipped,
)
from modelkeep.ports.registry import NewVersion, VersionKey
from modelkeep.ports.unit_of_work import MetadataStore, Transaction

__all__ = [
    "AuditSigner",
    "BlobInfo",
    "BlobStore",
    "MetadataStore",
    "NewVersion",
    "Progress",
    "StoredBlob",
    "Transaction",
    "VersionKey",
    "report_skipped",
]
