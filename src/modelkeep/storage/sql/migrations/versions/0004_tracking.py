"""Experiment tracking: runs and their metric points, datasets and their versions, and
the lineage edges into model versions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from modelkeep.storage.sql.tables import Id, Json, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _datasets()
    _runs()
    op.create_table(
        "version_inputs",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("version_id", Id, sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("run_pk", Id, sa.ForeignKey("runs.id")),
        sa.Column("dataset_version_id", Id, sa.ForeignKey("dataset_versions.id")),
    )
    for column in ("version_id", "run_pk", "dataset_version_id"):
        op.create_index(f"ix_version_inputs_{column}", "version_inputs", [column])


def _datasets() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("last_number", sa.Integer, nullable=False),
    )
    op.create_table(
        "dataset_versions",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("dataset_id", Id, sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("semver", sa.String(128)),
        sa.Column("digest", sa.String(71), nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("steps", Json, nullable=False),
        sa.Column("sampling", sa.Text),
        sa.Column("profiles", Json, nullable=False),
        sa.Column("message", sa.Text),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.UniqueConstraint("dataset_id", "number"),
        sa.UniqueConstraint("dataset_id", "semver"),
    )
    op.create_table(
        "dataset_files",
        sa.Column("dataset_version_id", Id, sa.ForeignKey("dataset_versions.id"), primary_key=True),
        sa.Column("path", sa.Text, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(71), nullable=False),
    )
    op.create_index("ix_dataset_files_digest", "dataset_files", ["digest"])


def _runs() -> None:
    op.create_table(
        "runs",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(12), nullable=False, unique=True),
        sa.Column("experiment", sa.String(128), nullable=False),
        sa.Column("name", sa.String(256)),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("seed", sa.BigInteger),
        sa.Column("params", Json, nullable=False),
        sa.Column("code", Json, nullable=False),
        sa.Column("environment", Json, nullable=False),
        sa.Column("notes", Json, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("ended_at", UTCDateTime),
        sa.Column("created_by", sa.String(256), nullable=False),
    )
    op.create_index("ix_runs_experiment_id", "runs", ["experiment", "id"])
    op.create_table(
        "run_metrics",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("run_pk", Id, sa.ForeignKey("runs.id"), nullable=False),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("step", sa.BigInteger, nullable=False),
        sa.Column("value", sa.Float),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_run_metrics_run_pk_name_step", "run_metrics", ["run_pk", "name", "step"])
    op.create_table(
        "run_datasets",
        sa.Column("run_pk", Id, sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("dataset_version_id", Id, sa.ForeignKey("dataset_versions.id"), primary_key=True),
    )
    op.create_table(
        "run_artifacts",
        sa.Column("run_pk", Id, sa.ForeignKey("runs.id"), primary_key=True),
        sa.Column("path", sa.Text, primary_key=True),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("digest", sa.String(71), nullable=False),
    )
    op.create_index("ix_run_artifacts_digest", "run_artifacts", ["digest"])


def downgrade() -> None:
    for table in (
        "version_inputs",
        "run_artifacts",
        "run_datasets",
        "run_metrics",
        "runs",
        "dataset_files",
        "dataset_versions",
        "datasets",
    ):
        op.drop_table(table)
