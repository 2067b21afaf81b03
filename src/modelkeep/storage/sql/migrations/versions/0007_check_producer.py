"""Check results name their producer: the user who recorded them, whether that user was a
check runner, and the source the client gave (``modelkeep check`` or ``client``).

Results recorded before have none (null): their record digests stay what they were.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from modelkeep.storage.sql.tables import Json

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("check_results") as batch:
        batch.add_column(sa.Column("producer", Json, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("check_results") as batch:
        batch.drop_column("producer")
