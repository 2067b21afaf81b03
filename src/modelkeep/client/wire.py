"""JSON documents of the API back into the SDK's frozen objects (the reverse of to_dict)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from modelkeep.domain.access import Grant
from modelkeep.domain.aliases import AliasEvent, Resolution
from modelkeep.domain.audit import (
    AuditEvent,
    AuditHead,
    ChainReport,
    Checkpoint,
    CheckpointResult,
    PublicKey,
    SignedCheckpoint,
)
from modelkeep.domain.datasets import DatasetVersion
from modelkeep.domain.diff import Change, VersionDiff
from modelkeep.domain.integrity import Mismatch
from modelkeep.domain.lineage import Lineage
from modelkeep.domain.maintenance import DamagedBlob, GcReport, VerifyReport
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.retention import RetentionPolicy
from modelkeep.domain.runs import Code, Environment, Run, Series, metric_from_json
from modelkeep.domain.storage_report import ModelStorage, StorageReport, VersionStorage
from modelkeep.domain.users import IssuedToken, Token, User
from modelkeep.domain.versions import FromRun, Model, Version, VersionMetadata
from modelkeep.errors import InternalError


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


def _required_time(text: str) -> datetime:
    return datetime.fromisoformat(text)


def model(d: dict[str, Any]) -> Model:
    return Model(
        d["name"],
        d["description"],
        tuple(d["required"]),
        _required_time(d["created_at"]),
        d["created_by"],
        d["latest"],
        d["versions"],
    )


def version(d: dict[str, Any]) -> Version:
    return Version(
        model=d["model"],
        number=d["number"],
        semver=d["semver"],
        digest=d["digest"],
        status=d["status"],
        created_at=_required_time(d["created_at"]),
        created_by=d["created_by"],
        files=tuple(FileEntry(f["path"], f["size"], f["digest"]) for f in d["files"]),
        metadata=VersionMetadata.from_dict(d["metadata"]),
        message=d["message"],
        aliases=tuple(d["aliases"]),
        archived_at=_time(d["archived_at"]),
        purged_at=_time(d.get("purged_at")),
        reused=bool(d.get("reused", False)),
        from_run=_from_run(d),
    )


def _from_run(d: dict[str, Any]) -> FromRun | None:
    if "run_metrics" not in d or d["metadata"].get("run") is None:
        return None
    return FromRun(d["metadata"]["run"], d.get("run_params", {}), d["run_metrics"])


def alias_event(d: dict[str, Any]) -> AliasEvent:
    return AliasEvent(
        d["model"],
        d["alias"],
        d["action"],
        d["old"],
        d["new"],
        d["actor"],
        _required_time(d["at"]),
        d["reason"],
    )


def resolution(d: dict[str, Any]) -> Resolution:
    return Resolution(d["model"], d["ref"], d["number"], d["digest"])


def audit_event(d: dict[str, Any]) -> AuditEvent:
    return AuditEvent(
        d["seq"],
        _required_time(d["at"]),
        d["actor"],
        d["action"],
        d["subject"],
        d["details"],
        d["prev_hash"],
        d["hash"],
    )


def chain_report(d: dict[str, Any]) -> ChainReport:
    return ChainReport(
        d["ok"],
        d["checked"],
        d["first_bad_seq"],
        d["problem"],
        tuple(d.get("checkpoints", ())),
        d.get("checkpoint"),
    )


def checkpoint_result(d: dict[str, Any]) -> CheckpointResult:
    return CheckpointResult(d["name"], d["seq"], d["hash"], d["at"], d["digest"], d["public_key"])


def audit_head(d: dict[str, Any]) -> AuditHead:
    latest = d["checkpoint"]
    signed = (
        None
        if latest is None
        else SignedCheckpoint(
            Checkpoint(latest["store_id"], latest["seq"], latest["hash"], latest["at"]),
            latest["signature"],
            latest["public_key"],
        )
    )
    return AuditHead(d["store_id"], d["seq"], d["hash"], signed)


def public_key(d: dict[str, Any]) -> PublicKey:
    return PublicKey(d["public_key_hex"], d["public_key_pem"], d["fingerprint"])


def version_diff(d: dict[str, Any]) -> VersionDiff:
    def changes(key: str) -> tuple[Change, ...]:
        return tuple(
            Change(c["key"], c["old"], c["new"], c.get("old_from_run"), c.get("new_from_run"))
            for c in d[key]
        )

    return VersionDiff(
        d["old"], d["new"], changes("files"), changes("metadata"), changes("metrics")
    )


def verify_report(d: dict[str, Any]) -> VerifyReport:
    damaged = tuple(
        DamagedBlob(b["digest"], b["problem"], tuple(b["versions"]), tuple(b.get("files", ())))
        for b in d["damaged"]
    )
    return VerifyReport(
        d["checked_blobs"],
        d["checked_versions"],
        damaged,
        tuple(d["inconsistent_versions"]),
        d.get("sample"),
        tuple(
            Mismatch(m["kind"], m["subject"], m["field"], m["expected"], m["found"], m["source"])
            for m in d.get("mismatches", ())
        ),
    )


def gc_report(d: dict[str, Any]) -> GcReport:
    return GcReport(
        d["dry_run"],
        d["blobs"],
        d["bytes"],
        d["temporary_files"],
        d["temporary_bytes"],
        d["kept_in_grace"],
        tuple(d.get("purged", ())),
    )


def user(d: dict[str, Any]) -> User:
    return User(
        d["name"],
        _required_time(d["created_at"]),
        d["created_by"],
        _time(d["disabled_at"]),
        tuple(
            Grant(g["role"], g.get("model"), g.get("experiment"), g.get("dataset"))
            for g in d["grants"]
        ),
        d["tokens"],
        _time(d.get("deleted_at")),  # absent from older servers
        d.get("id"),
    )


def token(d: dict[str, Any]) -> Token:
    return Token(
        d["id"],
        d["user"],
        d["label"],
        _required_time(d["created_at"]),
        d["created_by"],
        _time(d["expires_at"]),
        _time(d["revoked_at"]),
    )


def issued_token(d: dict[str, Any]) -> IssuedToken:
    """A new token: its secret under ``token``, beside what the store keeps of it."""
    return IssuedToken(d["token"], token(d))


def storage_report(d: dict[str, Any]) -> StorageReport:
    models = tuple(
        ModelStorage(
            m["model"],
            m["logical_bytes"],
            m["physical_bytes"],
            tuple(
                VersionStorage(v["number"], v["digest"], v["logical_bytes"], v["new_bytes"])
                for v in m["versions"]
            ),
        )
        for m in d["models"]
    )
    return StorageReport(d["logical_bytes"], d["physical_bytes"], models)


def retention_policy(d: dict[str, Any]) -> RetentionPolicy | None:
    """A model's policy; None for the absence of one (both rules null)."""
    policy = RetentionPolicy(
        d["model"], d["keep_last"], d["keep_days"], _time(d["updated_at"]), d["updated_by"]
    )
    return policy if policy.is_set else None


def new_retention_policy(d: dict[str, Any]) -> RetentionPolicy:
    """The policy a server just set: it sets one or refuses, never answers none."""
    policy = retention_policy(d)
    if policy is None:
        raise InternalError(f"the server answered no retention policy for {d['model']}")
    return policy


def run(d: dict[str, Any]) -> Run:
    code, env = d["code"], d["environment"]
    return Run(
        id=d["id"],
        experiment=d["experiment"],
        name=d["name"],
        status=d["status"],
        error=d["error"],
        seed=d["seed"],
        params=d["params"],
        code=Code(code["commit"], code["branch"], code["dirty"], code["diff_digest"]),
        environment=Environment(
            env["python"],
            env["packages_digest"],
            env["hostname"],
            env["platform"],
            tuple(env["command"]),
        ),
        notes=tuple(d["notes"]),
        started_at=_required_time(d["started_at"]),
        ended_at=_time(d["ended_at"]),
        created_by=d["created_by"],
        metrics={k: metric_from_json(v) for k, v in d["metrics"].items()},
        datasets=tuple(d["datasets"]),
        artifacts=tuple((a["path"], a["size"], a["digest"]) for a in d["artifacts"]),
        model_versions=tuple(d.get("model_versions", ())),
    )


def series(d: dict[str, Any]) -> Series:
    values = [metric_from_json(v) for v in d["values"]]
    return Series(d["run"], tuple(zip(d["steps"], values, strict=True)), d["total"])


def dataset_version(d: dict[str, Any]) -> DatasetVersion:
    return DatasetVersion(
        dataset=d["dataset"],
        number=d["number"],
        semver=d["semver"],
        digest=d["digest"],
        source=d["source"],
        steps=tuple(d["steps"]),
        sampling=d["sampling"],
        profiles=d["profiles"],
        message=d["message"],
        created_at=_required_time(d["created_at"]),
        created_by=d["created_by"],
        files=tuple(FileEntry(f["path"], f["size"], f["digest"]) for f in d["files"]),
        reused=bool(d.get("reused", False)),
    )


def lineage(d: dict[str, Any]) -> Lineage:
    return Lineage(
        d["root"],
        d["direction"],
        tuple(n["id"] for n in d["nodes"]),
        tuple((e["from"], e["to"]) for e in d["edges"]),
    )


def path_segment(text: str) -> str:
    """One URL path segment, escaped (names are validated on the server)."""
    return httpx.URL("/" + text).raw_path.decode()[1:].replace("/", "%2F")
