"""Chunked files: recipes and their chunks; retention policies; purged versions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from modelkeep.storage.sql.tables import Id, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("versions") as batch:
        batch.add_column(sa.Column("purged_at", UTCDateTime))
    op.create_table(
        "recipes",
        sa.Column("file_digest", sa.String(71), primary_key=True),
        sa.Column("recipe_digest", sa.String(71), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("chunker", sa.String(32), nullable=False),
        sa.Column("chunk_count", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "recipe_chunks",
        sa.Column(
            "file_digest",
            sa.String(71),
            sa.ForeignKey("recipes.file_digest"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_recipe_chunks_digest", "recipe_chunks", ["digest"])
    op.create_table(
        "retention_policies",
        sa.Column("model_id", Id, sa.ForeignKey("models.id"), primary_key=True),
        sa.Column("keep_last", sa.Integer),
        sa.Column("keep_days", sa.Integer),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("updated_by", sa.String(256), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("retention_policies")
    op.drop_index("ix_recipe_chunks_digest", "recipe_chunks")
    op.drop_table("recipe_chunks")
    op.drop_table("recipes")
    with op.batch_alter_table("versions") as batch:
        batch.drop_column("purged_at")
