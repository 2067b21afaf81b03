"""The metadata schema. It changes only through Alembic migrations (``migrations/``);
a test checks that the migrations produce exactly these tables on every dialect."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every dialect (SQLite keeps no zone, so store UTC there)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Json = JSON().with_variant(JSONB(), "postgresql")
Id = BigInteger().with_variant(Integer(), "sqlite")

store_info = Table(
    "store_info",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

models = Table(
    "models",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("required", Json, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    # The last number handed out; incremented in the registering transaction, so the
    # database's row lock (PostgreSQL) or write lock (SQLite) orders concurrent pushes.
    Column("last_number", Integer, nullable=False),
)

versions = Table(
    "versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("model_id", Id, ForeignKey("models.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("semver", String(128)),
    Column("digest", String(71), nullable=False),
    Column("status", String(16), nullable=False),
    Column("metadata", Json, nullable=False),
    Column("message", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("archived_at", UTCDateTime),
    # set when retention released the version's files: gc may then delete its chunks
    Column("purged_at", UTCDateTime),
    UniqueConstraint("model_id", "number"),
    UniqueConstraint("model_id", "semver"),
    UniqueConstraint("model_id", "digest"),
)

version_files = Table(
    "version_files",
    metadata,
    Column("version_id", Id, ForeignKey("versions.id"), primary_key=True),
    Column("path", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("digest", String(71), nullable=False),
    Index(None, "digest"),
)

aliases = Table(
    "aliases",
    metadata,
    Column("model_id", Id, ForeignKey("models.id"), primary_key=True),
    Column("name", String(64), primary_key=True),
    Column("version_id", Id, ForeignKey("versions.id"), nullable=False),
)

alias_events = Table(
    "alias_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("model_id", Id, ForeignKey("models.id"), nullable=False),
    Column("alias", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("old_version_id", Id, ForeignKey("versions.id")),
    Column("new_version_id", Id, ForeignKey("versions.id")),
    Column("actor", String(256), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("reason", Text),
    Index(None, "model_id", "alias", "id"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("action", String(64), nullable=False),
    Column("subject", Text, nullable=False),
    Column("details", Json, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # the last event about a version or an alias, read by every checked read
    Index(None, "subject", "seq"),
)

# One row (id 1): the newest event's seq and hash. Every write transaction locks it
# first, which orders all writers into one gap-free chain on every replica.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("disabled_at", UTCDateTime),
    # a deleted user keeps its row, so neither its id nor its name is used again (0006)
    Column("deleted_at", UTCDateTime),
)

# A token is kept only as the sha256 of its secret: reading this table grants nothing.
tokens = Table(
    "tokens",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("label", String(256)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("expires_at", UTCDateTime),
    Column("revoked_at", UTCDateTime),
    Index(None, "user_id"),
)

# ``model`` NULL is a global grant; else it holds the grant's scope: a model's name,
# ``experiment:E`` or ``dataset:D`` (model names never hold a colon). SQL unique
# constraints treat NULLs as distinct, so the services check for a duplicate global
# grant first, under the audit head lock.
grants = Table(
    "grants",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("user_id", Id, ForeignKey("users.id"), nullable=False),
    Column("role", String(16), nullable=False),
    Column("model", String(200)),
    UniqueConstraint("user_id", "role", "model"),
)


# Who sent the bytes of which blob or file (hashed on arrival): proof of possession, so
# a push may name a digest its pusher uploaded though no version they may read holds it.
blob_uploads = Table(
    "blob_uploads",
    metadata,
    Column("user", String(256), primary_key=True),
    Column("digest", String(71), primary_key=True),
    Column("at", UTCDateTime, nullable=False),
)


# A large file's recipe, verified against the whole-file digest before it is recorded:
# one per file digest, so any version holding that file can be rebuilt from its chunks.
recipes = Table(
    "recipes",
    metadata,
    Column("file_digest", String(71), primary_key=True),
    Column("recipe_digest", String(71), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("chunker", String(32), nullable=False),
    Column("chunk_count", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

recipe_chunks = Table(
    "recipe_chunks",
    metadata,
    Column("file_digest", String(71), ForeignKey("recipes.file_digest"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("digest", String(71), nullable=False),
    Column("size", BigInteger, nullable=False),
    Index(None, "digest"),
)

# Per model: keep the last ``keep_last`` versions and whatever an alias or stage pointed
# at within ``keep_days`` days; NULL means no limit of that kind.
retention_policies = Table(
    "retention_policies",
    metadata,
    Column("model_id", Id, ForeignKey("models.id"), primary_key=True),
    Column("keep_last", Integer),
    Column("keep_days", Integer),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("updated_by", String(256), nullable=False),
)

# Experiment tracking (schema 0004). ``run_id`` is the public id (12 hex digits).
runs = Table(
    "runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_id", String(12), nullable=False, unique=True),
    Column("experiment", String(128), nullable=False),
    Column("name", String(256)),
    Column("status", String(16), nullable=False),
    Column("error", Text),
    Column("seed", BigInteger),
    Column("params", Json, nullable=False),
    Column("code", Json, nullable=False),
    Column("environment", Json, nullable=False),
    Column("notes", Json, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),
    Column("created_by", String(256), nullable=False),
    Index(None, "experiment", "id"),
)

# One row per logged point; ``value`` NULL is NaN (SQLite cannot keep a NaN); ``at`` is
# seconds since 1970 (UTC): points arrive by the hundred thousand, as numbers.
run_metrics = Table(
    "run_metrics",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("run_pk", Id, ForeignKey("runs.id"), nullable=False),
    Column("name", String(250), nullable=False),
    Column("step", BigInteger, nullable=False),
    Column("value", Float),
    Column("at", Float, nullable=False),
    # one index: it serves a run's series and one metric across runs (run_pk IN ...)
    Index(None, "run_pk", "name", "step"),
)

run_datasets = Table(
    "run_datasets",
    metadata,
    Column("run_pk", Id, ForeignKey("runs.id"), primary_key=True),
    Column("dataset_version_id", Id, ForeignKey("dataset_versions.id"), primary_key=True),
)

run_artifacts = Table(
    "run_artifacts",
    metadata,
    Column("run_pk", Id, ForeignKey("runs.id"), primary_key=True),
    Column("path", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("digest", String(71), nullable=False),
    Index(None, "digest"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("description", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("last_number", Integer, nullable=False),
)

dataset_versions = Table(
    "dataset_versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("dataset_id", Id, ForeignKey("datasets.id"), nullable=False),
    Column("number", Integer, nullable=False),
    Column("semver", String(128)),
    Column("digest", String(71), nullable=False),
    Column("source", Text),
    Column("steps", Json, nullable=False),
    Column("sampling", Text),
    Column("profiles", Json, nullable=False),
    Column("message", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    UniqueConstraint("dataset_id", "number"),
    UniqueConstraint("dataset_id", "semver"),
)

dataset_files = Table(
    "dataset_files",
    metadata,
    Column("dataset_version_id", Id, ForeignKey("dataset_versions.id"), primary_key=True),
    Column("path", Text, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("digest", String(71), nullable=False),
    Index(None, "digest"),
)

# Lineage edges into a model version: the run that made it, the datasets it was made from.
version_inputs = Table(
    "version_inputs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("version_id", Id, ForeignKey("versions.id"), nullable=False),
    Column("run_pk", Id, ForeignKey("runs.id")),
    Column("dataset_version_id", Id, ForeignKey("dataset_versions.id")),
    Index(None, "version_id"),
    Index(None, "run_pk"),
    Index(None, "dataset_version_id"),
)

# governance: the registry's policy documents, check results, approvals, attestations.
# Every row is written once and never updated: later facts are new rows.

policies = Table(
    "policies",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("number", Integer, nullable=False, unique=True),
    Column("digest", String(71), nullable=False),
    Column("document", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
)

check_results = Table(
    "check_results",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("version_id", Id, ForeignKey("versions.id"), nullable=False, index=True),
    Column("suite", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("metrics", Json, nullable=False),
    Column("passed", Integer, nullable=False),
    Column("failures", Json, nullable=False),
    Column("dataset_version_id", Id, ForeignKey("dataset_versions.id")),
    Column("dataset", String(200)),
    Column("dataset_digest", String(71)),
    Column("report_digest", String(71), nullable=False),
    Column("digest", String(71), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(256), nullable=False),
    Column("producer", Json),  # {user, runner, source}; null: recorded before 0007
)

approvals = Table(
    "approvals",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("version_id", Id, ForeignKey("versions.id"), nullable=False, index=True),
    Column("stage", String(32), nullable=False),
    Column("decision", String(16), nullable=False),
    Column("user", String(256), nullable=False),
    Column("roles", Json, nullable=False),
    Column("comment", Text),
    Column("check_ids", Json, nullable=False),
    Column("policy_digest", String(71)),
    Column("digest", String(71), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

attestations = Table(
    "attestations",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("version_id", Id, ForeignKey("versions.id"), nullable=False, index=True),
    Column("stage", String(32), nullable=False),
    Column("envelope_digest", String(71), nullable=False),
    Column("policy_digest", String(71)),
    Column("override_reason", Text),
    Column("actor", String(256), nullable=False),
    Column("at", UTCDateTime, nullable=False),
)

# Deployments (schema 0010): each model's desired state per environment, and every change.
deployments = Table(
    "deployments",
    metadata,
    Column("model_id", Id, ForeignKey("models.id"), primary_key=True),
    Column("env", String(64), primary_key=True),
    Column("revision", Integer, nullable=False),
    Column("state", Json, nullable=False),
)

deployment_events = Table(
    "deployment_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("model_id", Id, ForeignKey("models.id"), nullable=False),
    Column("env", String(64), nullable=False),
    Column("revision", Integer, nullable=False),
    Column("action", String(16), nullable=False),
    Column("previous", Json),
    Column("state", Json, nullable=False),
    Column("actor", String(256), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("reason", Text),
    Column("attestation", String(71)),
    Index(None, "model_id", "env", "id"),
    Index(None, "env", "id"),
)
