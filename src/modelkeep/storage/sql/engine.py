"""Engines: SQLite with WAL, foreign keys and a busy timeout; PostgreSQL through psycopg.

pysqlite's own transaction handling is switched off so that SQLite transactions start
where SQLAlchemy says, as ``BEGIN IMMEDIATE`` for writers (which then queue on the busy
timeout instead of failing on a lock upgrade) and plain ``BEGIN`` for readers.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError

from modelkeep.errors import StoreUnavailable, UnsupportedUri

WRITE_OPTION = "modelkeep_write"


def normalise_url(url: str) -> str:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UnsupportedUri(
            f"{url!r} is not a database URL",
            "use sqlite:///PATH or postgresql+psycopg://USER@HOST/DB",
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise UnsupportedUri(
            f"database {parsed.get_backend_name()!r} is not supported", "use SQLite or PostgreSQL"
        )
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, *, busy_timeout_ms: int = 30000) -> Engine:
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout_ms)
    # Every transaction ends in an explicit commit or rollback, so the pool's own
    # rollback on return would be a second, wasted round trip.
    return create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=10, pool_reset_on_return=None
    )


def _sqlite_engine(url: str, busy_timeout_ms: int) -> Engine:
    engine = create_engine(
        url, connect_args={"timeout": busy_timeout_ms / 1000}, pool_reset_on_return=None
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        # straight to the driver: this runs for every transaction, reads included
        try:
            conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                "BEGIN IMMEDIATE" if write else "BEGIN"
            )
        except sqlite3.OperationalError as exc:
            raise StoreUnavailable(
                f"the SQLite database is busy ({exc}): another writer held it longer than "
                f"{busy_timeout_ms} ms",
                "retry, or raise MODELKEEP_SQLITE_BUSY_TIMEOUT_MS",
            ) from None

    return engine
