"""Every kind of audit event modelkeep writes: one catalogue, so a reader (``audit log``,
the governance report, a test) and a writer can never disagree on a name.

The values are the ``action`` strings stored in the audit chain: changing one would
change what old events mean, so values are only ever added."""

from __future__ import annotations

from enum import StrEnum


class EventKind(StrEnum):
    MODEL_CREATE = "model.create"
    VERSION_PUSH = "version.push"
    VERSION_ARCHIVE = "version.archive"
    VERSION_UNARCHIVE = "version.unarchive"
    VERSION_PURGE = "version.purge"
    VERSION_BUNDLE = "version.bundle"
    ALIAS_SET = "alias.set"
    ALIAS_RM = "alias.rm"
    ALIAS_PROMOTE = "alias.promote"
    ALIAS_ROLLBACK = "alias.rollback"
    DATASET_CREATE = "dataset.create"
    DATASET_PUSH = "dataset.push"
    RUN_START = "run.start"
    RUN_END = "run.end"
    RUN_PARAMS = "run.params"
    RUN_METRICS = "run.metrics"
    RUN_ARTIFACT = "run.artifact"
    RUN_DATASET = "run.dataset"
    POLICY_SET = "policy.set"
    POLICY_OVERRIDE = "policy.override"
    CHECK_RECORD = "check.record"
    APPROVAL_APPROVE = "approval.approve"
    APPROVAL_REJECT = "approval.reject"
    RETENTION_SET = "retention.set"
    RETENTION_CLEAR = "retention.clear"
    USER_CREATE = "user.create"
    USER_DISABLE = "user.disable"
    USER_ENABLE = "user.enable"
    USER_DELETE = "user.delete"
    GRANT_ADD = "grant.add"
    GRANT_REMOVE = "grant.remove"
    TOKEN_CREATE = "token.create"
    TOKEN_REVOKE = "token.revoke"
    STORE_GC = "store.gc"
    AUDIT_CHECKPOINT = "audit.checkpoint"
    DEPLOYMENT_DEPLOY = "deployment.deploy"
    DEPLOYMENT_PROMOTE = "deployment.promote"
    DEPLOYMENT_ROLLBACK = "deployment.rollback"

    @classmethod
    def alias_move(cls, action: str) -> EventKind:
        """The event of an alias move (``set``, ``rm``, ``promote``, ``rollback``)."""
        return cls(f"alias.{action}")

    @classmethod
    def deployment(cls, action: str) -> EventKind:
        """The event of a desired-state change (``deploy``, ``promote``, ``rollback``)."""
        return cls(f"deployment.{action}")

    @classmethod
    def approval(cls, decision: str) -> EventKind:
        """The event of an approval decision (``approve`` or ``reject``)."""
        return cls(f"approval.{decision}")
