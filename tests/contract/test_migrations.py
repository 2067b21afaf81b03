"""The schema changes only through migrations: they must build exactly ``tables.py``."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from modelkeep.storage.sql import migrate
from modelkeep.storage.sql.store import SqlMetadataStore
from modelkeep.storage.sql.tables import metadata

pytestmark = pytest.mark.empty_database  # these tests run the migrations themselves


def test_head_constant_matches_the_migration_scripts() -> None:
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    assert ScriptDirectory.from_config(config).get_current_head() == migrate.HEAD


def test_migrations_build_exactly_the_declared_schema(database_url: str) -> None:
    SqlMetadataStore.open(database_url, blob_store_id="s1").close()
    engine = create_engine(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    engine.dispose()
    assert differences == [], (
        "tables.py and the migrations disagree; write a migration with "
        "'alembic revision --autogenerate' for the change"
    )


def test_opening_twice_migrates_once_and_keeps_the_store_id(database_url: str) -> None:
    SqlMetadataStore.open(database_url, blob_store_id="s1").close()
    store = SqlMetadataStore.open(database_url, blob_store_id="s1")
    with store.transaction() as tx:
        assert tx.audit.head() == (0, "0" * 64)
    store.close()


def test_a_database_of_another_store_is_refused(database_url: str) -> None:
    from modelkeep.errors import StoreMismatch

    SqlMetadataStore.open(database_url, blob_store_id="s1").close()
    with pytest.raises(StoreMismatch):
        SqlMetadataStore.open(database_url, blob_store_id="s2")


def test_every_revision_is_known_in_order() -> None:
    config = Config()
    config.set_main_option("script_location", str(migrate.MIGRATIONS))
    scripts = ScriptDirectory.from_config(config)
    ordered = [s.revision for s in reversed(list(scripts.walk_revisions()))]
    assert tuple(ordered) == migrate.REVISIONS


def test_a_database_from_a_newer_modelkeep_is_refused_cleanly(database_url: str) -> None:
    from modelkeep.errors import UnknownStoreFormat

    SqlMetadataStore.open(database_url, blob_store_id="s1").close()
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    engine.dispose()
    with pytest.raises(UnknownStoreFormat, match="0099"):
        SqlMetadataStore.open(database_url, blob_store_id="s1")
