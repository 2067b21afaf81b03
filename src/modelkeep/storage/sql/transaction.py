"""One unit of work on the SQL store: each context's rows (``tx.versions``, ``tx.audit``,
...) is its own small class, and all of them share the transaction's one connection.

No business rules live here: services decide, these classes only read and write what
they decided."""

from __future__ import annotations

from sqlalchemy import Connection, RootTransaction

from modelkeep.storage.sql.audit import AuditRows
from modelkeep.storage.sql.datasets import DatasetRows
from modelkeep.storage.sql.deployments import DeploymentRows
from modelkeep.storage.sql.governance import GovernanceRows
from modelkeep.storage.sql.recipes import RecipeRows
from modelkeep.storage.sql.registry import AliasRows, ModelIds, ModelRows, VersionRows
from modelkeep.storage.sql.retention import RetentionRows
from modelkeep.storage.sql.tracking import TrackingRows
from modelkeep.storage.sql.users import UserRows


class SqlTransaction:
    def __init__(self, conn: Connection, trans: RootTransaction, *, write: bool) -> None:
        self._trans = trans
        # a write takes the audit head's lock first: it orders every writer everywhere
        self.audit = AuditRows(conn, write=write)
        ids = ModelIds(conn)
        self.models = ModelRows(conn, ids)
        self.versions = VersionRows(conn, ids)
        self.aliases = AliasRows(conn, ids)
        self.users = UserRows(conn)
        self.governance = GovernanceRows(conn)
        self.recipes = RecipeRows(conn, self.governance)
        self.tracking = TrackingRows(conn)
        self.datasets = DatasetRows(conn)
        self.retention = RetentionRows(conn)
        self.deployments = DeploymentRows(conn)

    def commit(self) -> None:
        self._trans.commit()
