"""The metadata store on SQL: one ``SqlTransaction`` per use case, rollback by default."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, insert, select
from sqlalchemy import exc as sa_exc

from modelkeep.errors import StoreMismatch, StoreUnavailable
from modelkeep.storage.sql import migrate
from modelkeep.storage.sql.engine import WRITE_OPTION, make_engine
from modelkeep.storage.sql.tables import store_info
from modelkeep.storage.sql.transaction import SqlTransaction


class SqlMetadataStore:
    def __init__(self, engine: Engine, store_id: str) -> None:
        self.engine = engine
        self.store_id = store_id

    @classmethod
    def open(
        cls, url: str, *, blob_store_id: str, busy_timeout_ms: int = 30000
    ) -> SqlMetadataStore:
        """Open (migrating if needed) and check the database belongs to the blob store."""
        engine = make_engine(url, busy_timeout_ms=busy_timeout_ms)
        try:
            migrate.upgrade(engine)
            _claim(engine, blob_store_id)
        except sa_exc.OperationalError as exc:
            engine.dispose()
            raise StoreUnavailable(f"cannot open the database: {_first_line(exc)}") from None
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, blob_store_id)

    @contextmanager
    def transaction(self, *, write: bool = False, ordered: bool = True) -> Iterator[SqlTransaction]:
        try:
            with self.engine.connect() as conn:
                if write:
                    conn.execution_options(**{WRITE_OPTION: True})
                trans = conn.begin()
                try:
                    yield SqlTransaction(conn, trans, write=write and ordered)
                finally:
                    if trans.is_active:
                        trans.rollback()
        except sa_exc.OperationalError as exc:
            raise StoreUnavailable(f"the database failed: {_first_line(exc)}") from None

    def close(self) -> None:
        self.engine.dispose()


def _claim(engine: Engine, blob_store_id: str) -> None:
    """Record the blob store's id in a new database; refuse a database of another store."""
    query = select(store_info.c.value).where(store_info.c.key == "store_id")
    with engine.connect() as conn:
        found = conn.execute(query).scalar()
    if found is None:
        try:
            with engine.connect().execution_options(**{WRITE_OPTION: True}) as conn, conn.begin():
                conn.execute(insert(store_info).values(key="store_id", value=blob_store_id))
                found = blob_store_id
        except sa_exc.IntegrityError:  # another process claimed it first
            with engine.connect() as conn:
                found = conn.execute(query).scalar()
    if found != blob_store_id:
        raise StoreMismatch(
            f"the database belongs to store {found}, the blobs to store {blob_store_id}"
        )


def _first_line(exc: BaseException) -> str:
    return str(getattr(exc, "orig", exc)).strip().splitlines()[0]
