"""Bring a database's schema to the newest revision; cheap when it is already there."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, Engine, inspect, text

from modelkeep.errors import UnknownStoreFormat

MIGRATIONS = Path(__file__).parent / "migrations"
REVISIONS = ("0001", "0002", "0003", "0004", "0005", "0006", "0007", "0008", "0009", "0010")
"""Every revision, oldest first; a test checks this against the migration scripts."""
HEAD = REVISIONS[-1]

_PG_LOCK_KEY = 0x6D6F64656C6B  # "modelk": serialises migrations of concurrent openers


def current_revision(conn: Connection) -> str | None:
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def upgrade(engine: Engine) -> None:
    with engine.connect() as conn:
        current = current_revision(conn)
        conn.rollback()
    if current == HEAD:
        return
    if current is not None and current not in REVISIONS:
        raise UnknownStoreFormat(
            f"the database has schema revision {current}, newer than this modelkeep knows "
            f"(newest {HEAD})"
        )
    _run_alembic(engine)


def _run_alembic(engine: Engine) -> None:
    from alembic import command  # imported only when a migration is due: it is slow
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect().execution_options(modelkeep_write=True) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        if current_revision(conn) != HEAD:  # another opener may have migrated meanwhile
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
