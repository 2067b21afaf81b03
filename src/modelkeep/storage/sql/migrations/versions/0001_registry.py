"""The registry spine: models, versions, files, aliases, audit chain.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from modelkeep.storage.sql.tables import Id, Json, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "store_info",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "models",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("required", Json, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("last_number", sa.Integer, nullable=False),
    )
    op.create_table(
        "versions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("model_id", Id, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("semver", sa.String(128)),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("metadata", Json, nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("archived_at", UTCDateTime),
        sa.UniqueConstraint("model_id", "number"),
        sa.UniqueConstraint("model_id", "semver"),
        sa.UniqueConstraint("model_id", "digest"),
    )
    op.create_table(
        "version_files",
        sa.Column("version_id", Id, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("path", sa.Text, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(71), nullable=False),
    )
    op.create_index("ix_version_files_digest", "version_files", ["digest"])
    op.create_table(
        "aliases",
        sa.Column("model_id", Id, sa.ForeignKey("models.id"), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("version_id", Id, sa.ForeignKey("versions.id"), nullable=False),
    )
    op.create_table(
        "alias_events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("model_id", Id, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("old_version_id", Id, sa.ForeignKey("versions.id")),
        sa.Column("new_version_id", Id, sa.ForeignKey("versions.id")),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("reason", sa.Text),
    )
    op.create_index(
        "ix_alias_events_model_id_alias_id", "alias_events", ["model_id", "alias", "id"]
    )
    op.create_table(
        "audit_events",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("details", Json, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0, "hash": "0" * 64}])


def downgrade() -> None:
    for table in (
        "audit_head",
        "audit_events",
        "alias_events",
        "aliases",
        "version_files",
        "versions",
        "models",
        "store_info",
    ):
        op.drop_table(table)
