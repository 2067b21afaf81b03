"""Governance: policy documents, check results, approvals and signed attestations.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from modelkeep.storage.sql.tables import Id, Json, UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "policies",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("number", sa.Integer, nullable=False, unique=True),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("document", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
    )
    op.create_table(
        "check_results",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _version_id(),
        sa.Column("suite", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("metrics", Json, nullable=False),
        sa.Column("passed", sa.Integer, nullable=False),
        sa.Column("failures", Json, nullable=False),
        sa.Column("dataset_version_id", Id, sa.ForeignKey("dataset_versions.id")),
        sa.Column("dataset", sa.String(200)),
        sa.Column("dataset_digest", sa.String(71)),
        sa.Column("report_digest", sa.String(71), nullable=False),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
    )
    op.create_table(
        "approvals",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _version_id(),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("decision", sa.String(16), nullable=False),
        sa.Column("user", sa.String(256), nullable=False),
        sa.Column("roles", Json, nullable=False),
        sa.Column("comment", sa.Text),
        sa.Column("check_ids", Json, nullable=False),
        sa.Column("policy_digest", sa.String(71)),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "attestations",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        _version_id(),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("envelope_digest", sa.String(71), nullable=False),
        sa.Column("policy_digest", sa.String(71)),
        sa.Column("override_reason", sa.Text),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    for table in ("check_results", "approvals", "attestations"):
        op.create_index(f"ix_{table}_version_id", table, ["version_id"])


def _version_id() -> sa.Column[int]:
    return sa.Column("version_id", Id, sa.ForeignKey("versions.id"), nullable=False)


def downgrade() -> None:
    for table in ("attestations", "approvals", "check_results", "policies"):
        op.drop_table(table)
