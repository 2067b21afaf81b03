"""Isolation between teams: grants on experiments and datasets (``grants.model`` holds
the grant's scope: a model, ``experiment:E`` or ``dataset:D``, so it is widened), and
the record of who uploaded which blob (proof of possession for pushes).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from modelkeep.storage.sql.tables import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("grants") as batch:
        batch.alter_column("model", existing_type=sa.String(128), type_=sa.String(200))
    op.create_table(
        "blob_uploads",
        sa.Column("user", sa.String(256), primary_key=True),
        sa.Column("digest", sa.String(71), primary_key=True),
        sa.Column("at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("blob_uploads")
    with op.batch_alter_table("grants") as batch:
        batch.alter_column("model", existing_type=sa.String(200), type_=sa.String(128))
