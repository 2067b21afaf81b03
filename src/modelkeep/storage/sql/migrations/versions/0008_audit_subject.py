"""Audit events by subject: reads check a version or an alias against its last recorded
event (services/integrity.py) with one index lookup instead of a scan of the chain.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-08
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_audit_events_subject_seq", "audit_events", ["subject", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_events_subject_seq", "audit_events")
