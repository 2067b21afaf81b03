"""The unit of work: one transaction on the metadata store, its rows reached by context
(``tx.versions``, ``tx.audit``, ...), each a small protocol of its own."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

from modelkeep.ports.audit import AuditLog
from modelkeep.ports.deployments import Deployments
from modelkeep.ports.governance import Governance, Retention
from modelkeep.ports.recipes import Recipes
from modelkeep.ports.registry import Aliases, Models, Versions
from modelkeep.ports.tracking import Datasets, Tracking
from modelkeep.ports.users import Users


class Transaction(Protocol):
    """One unit of work on the metadata store. Nothing is kept unless ``commit`` is called;
    every context below reads and writes through the same connection."""

    @property
    def models(self) -> Models: ...
    @property
    def versions(self) -> Versions: ...
    @property
    def aliases(self) -> Aliases: ...
    @property
    def audit(self) -> AuditLog: ...
    @property
    def users(self) -> Users: ...
    @property
    def recipes(self) -> Recipes: ...
    @property
    def tracking(self) -> Tracking: ...
    @property
    def datasets(self) -> Datasets: ...
    @property
    def retention(self) -> Retention: ...
    @property
    def governance(self) -> Governance: ...
    @property
    def deployments(self) -> Deployments: ...

    def commit(self) -> None: ...


class MetadataStore(Protocol):
    store_id: str

    def transaction(
        self, *, write: bool = False, ordered: bool = True
    ) -> AbstractContextManager[Transaction]:
        """A unit of work. A ``write`` that is ``ordered`` (the default) first takes the
        audit head's lock, which orders every audited change; what writes no audit
        event (the record of who uploaded which blob) writes without it
        (``ordered=False``)."""
        ...

    def close(self) -> None: ...
