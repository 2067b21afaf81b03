"""The in-memory store answers what the SQL store answers: one script of writes through
every context of the unit of work, then every read, on SQLite or PostgreSQL and on memory,
compared answer by answer (records, their order, ids, timestamps and JSON values)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from modelkeep.domain.access import Grant
from modelkeep.domain.deployments import Backend, DeploymentChange, DesiredState
from modelkeep.domain.governance import Approval, Attestation, NewCheckResult
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.recipes import ChunkRef, Recipe
from modelkeep.domain.retention import RetentionPolicy
from modelkeep.domain.runs import Code, Environment, NewRun
from modelkeep.domain.versions import VersionMetadata
from modelkeep.errors import DuplicateVersion, ModelExists, SemverExists, VersionNotFound
from modelkeep.ports.registry import NewVersion
from modelkeep.ports.unit_of_work import MetadataStore, Transaction
from modelkeep.storage.memory import drop_memory_store, open_memory_store
from modelkeep.storage.sql.store import SqlMetadataStore

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


ONLY_PURGED = Recipe.of(digest(910), "fastcdc-v1", [ChunkRef(digest(911), 9)])
CHUNKED = Recipe.of(digest(900), "fastcdc-v1", [ChunkRef(digest(901), 5), ChunkRef(digest(902), 7)])


@pytest.fixture
def stores(database_url: str) -> Iterator[tuple[MetadataStore, MetadataStore]]:
    """A SQL store (SQLite, PostgreSQL) and a memory store, both empty."""
    name = f"parity-{uuid.uuid4().hex[:12]}"
    sql = SqlMetadataStore.open(database_url, blob_store_id="b")
    yield sql, open_memory_store(name, blob_store_id="b")
    sql.close()
    drop_memory_store(name)


def version(model: str, n: int, semver: str | None, files: list[FileEntry]) -> NewVersion:
    metadata = VersionMetadata(params={"lr": 0.1}, metrics={"auc": 0.5 + n / 100}, seed=n)
    return NewVersion(model, semver, digest(n), files, metadata, f"v{n}", "ann", at(n))


def write_registry(tx: Transaction) -> None:
    tx.models.add("fraud", "catches fraud", ("commit",), "ann", at(0))
    tx.models.add("churn", "", (), "bob", at(0))
    tx.recipes.add(CHUNKED, at(0))
    tx.recipes.add(ONLY_PURGED, at(0))
    old = [FileEntry("w.bin", 3, digest(100)), FileEntry("x.bin", 9, ONLY_PURGED.digest)]
    tx.versions.add(version("fraud", 1, "1.0.0", old))
    big = [FileEntry("z.bin", 12, CHUNKED.digest), FileEntry("a.txt", 1, digest(101))]
    tx.versions.add(version("fraud", 2, None, big))
    tx.versions.add(version("fraud", 3, "1.1.0", [FileEntry("w.bin", 4, digest(102))]))
    tx.versions.add(version("churn", 4, None, [FileEntry("w.bin", 3, digest(100))]))
    tx.aliases.move("fraud", "champion", "set", 1, "ann", at(5), None)
    tx.aliases.move("fraud", "champion", "set", 3, "ann", at(6), "better")
    tx.aliases.move("fraud", "production", "promote", 2, "ann", at(7), None)
    tx.aliases.move("fraud", "old", "set", 1, "ann", at(8), None)
    tx.aliases.move("fraud", "old", "rm", None, "ann", at(9), "gone")
    tx.versions.archive("fraud", 1, at(10))
    tx.versions.archive("churn", 1, at(10))
    tx.versions.purge("fraud", 1, at(11))
    tx.retention.put(RetentionPolicy("fraud", 2, None, at(12), "ann"))
    tx.retention.put(RetentionPolicy("churn", None, 30, at(12), "ann"))
    tx.retention.put(RetentionPolicy("churn", 1, 7, at(13), "bob"))
    for n, (action, subject) in enumerate([("model.create", "fraud"), ("x", "fraud@2")]):
        tx.audit.append("ann", action, subject, {"n": n, "t": (1, 2), "d": {"k": None}}, at(n))
    tx.audit.append("ann", "user.create", "user:ann", {}, at(14))


def write_users(tx: Transaction) -> None:
    tx.users.add("carol", "ann", at(0))
    tx.users.add("ann", "root", at(0))
    tx.users.add_grant("ann", Grant("viewer", "fraud"))
    tx.users.add_grant("ann", Grant("admin"))
    tx.users.add_grant("ann", Grant("releaser", "churn"))
    tx.users.add_grant("ann", Grant("contributor", "churn"))
    tx.users.add_grant("carol", Grant("viewer"))
    tx.users.remove_grant("carol", Grant("viewer"))
    tx.users.add_grant("carol", Grant("contributor", experiment="Tuning-2"))
    tx.users.add_grant("carol", Grant("viewer", dataset="tx"))
    tx.users.add_grant("carol", Grant("viewer", "fraud"))
    tx.users.remove_grant("carol", Grant("viewer", dataset="tx"))
    tx.recipes.add_uploads("carol", [digest(100), digest(100), digest(901)], at(1))
    tx.recipes.add_uploads("carol", [digest(100)], at(2))
    tx.users.add_token("ann", "h1", "ci", "root", at(1), None)
    tx.users.add_token("ann", "h2", None, "root", at(2), at(30))
    tx.users.add_token("carol", "h3", None, "root", at(3), at(5))
    tx.users.revoke_token(1, at(4))
    tx.users.set_disabled("carol", at(5))
    tx.users.add("dave", "ann", at(6))
    tx.users.set_deleted("dave", at(7))


def write_tracking(tx: Transaction) -> None:
    code = Code("abc", "main", True, digest(300))
    env = Environment("3.11", digest(301), "host", "linux", ("python", "train.py"))
    tx.tracking.add_run("r1", NewRun("exp", {"lr": 1}, 7, "one", code, env, ("n",)), "ann", at(0))
    tx.tracking.add_run("r2", NewRun("other"), "bob", at(1))
    pk = tx.tracking.run_pks(["r1"])["r1"]
    tx.tracking.set_run_params(pk, {"lr": 1, "bs": 32})
    points = [("loss", 2, 0.5, 1.0), ("loss", 1, 0.7, 1.0), ("acc", 1, float("inf"), 2.0)]
    tx.tracking.add_metric_points(pk, points)
    tx.tracking.add_metric_points(pk, [("loss", 1, 0.6, 3.0)])
    tx.tracking.add_run_artifact(pk, "report.txt", 5, digest(302))
    tx.tracking.add_run_artifact(pk, "report.txt", 6, digest(303))
    tx.tracking.add_run_artifact(pk, "big.bin", 12, CHUNKED.digest)
    dataset = tx.datasets.add("tx", "", "ann", at(2))
    fields = {
        "semver": "1.0.0",
        "source": "s3://x",
        "steps": ["a"],
        "sampling": None,
        "profiles": {"f.csv": {"rows": 3}},
        "message": None,
    }
    files = [FileEntry("f.csv", 3, digest(400)), FileEntry("b.csv", 2, digest(401))]
    tx.datasets.add_version(dataset, digest(402), files, fields, "ann", at(3))
    fields = {**fields, "semver": None, "profiles": {}}
    tx.datasets.add_version(dataset, digest(403), files[:1], fields, "ann", at(4))
    (first, second) = tx.datasets.versions("tx")
    tx.datasets.link_run(pk, first.id)
    tx.datasets.link_run(pk, first.id)
    tx.datasets.link_version_inputs("fraud", 2, pk, [first.id, second.id])
    tx.tracking.end_run(pk, "failed", "diverged", at(5))
    tx.tracking.end_running_run("r2", "finished", None, at(6))


def write_governance(tx: Transaction) -> None:
    tx.governance.add_policy(digest(500), "rules: 1", "ann", at(0))
    tx.governance.add_policy(digest(501), "rules: 2", "ann", at(1))
    check = NewCheckResult("eval", "evaluation", {"acc": 0.9, "none": None}, True, ("x",))
    tx.governance.add_check_result(
        "fraud", 2, check, (1, "tx@1", digest(402)), digest(502), "ann", at(2)
    )
    tx.governance.add_check_result("fraud", 3, check, None, digest(503), "ann", at(3))
    fraud_2 = tx.versions.get("fraud", 2)
    assert fraud_2 is not None
    tx.governance.add_approval(
        approval("fraud", 2, fraud_2.digest, check_ids=(1,), policy_digest=digest(501))
    )
    tx.governance.add_attestation(
        Attestation(
            0, "fraud", 2, fraud_2.digest, "production", digest(504), None, "urgent", "ann", at(5)
        )
    )


def write_deployments(tx: Transaction) -> None:
    stable = Backend("fraud@2", digest(2), "stable", 100)
    first = DesiredState("fraud", "prod", 1, (stable,))
    canary = Backend("fraud@3", digest(3), "canary", 20)
    second = DesiredState(
        "fraud", "prod", 2, (Backend("fraud@2", digest(2), "stable", 80), canary), "header:x-user"
    )
    tx.deployments.record(
        DeploymentChange("fraud", "prod", 1, "deploy", None, first, "ann", at(20), None)
    )
    tx.deployments.record(
        DeploymentChange(
            "churn",
            "dev",
            1,
            "deploy",
            None,
            DesiredState("churn", "dev", 1, (Backend("churn@1", digest(4), "stable", 100),)),
            "bob",
            at(21),
            "try",
        )
    )
    tx.deployments.record(
        DeploymentChange("fraud", "prod", 2, "deploy", first, second, "ann", at(22), "ab")
    )
    tx.deployments.record(
        DeploymentChange(
            "fraud",
            "prod",
            3,
            "rollback",
            second,
            DesiredState("fraud", "prod", 3, (stable,)),
            "ann",
            at(23),
            "bad",
            digest(600),
        )
    )


def approval(
    model: str,
    number: int,
    version_digest: str,
    *,
    check_ids: tuple[int, ...] = (),
    policy_digest: str | None = None,
) -> Approval:
    return Approval(
        id=0,
        model=model,
        number=number,
        version_digest=version_digest,
        stage="production",
        decision="approve",
        user="carol",
        roles=("approver",),
        comment="ok",
        check_ids=check_ids,
        policy_digest=policy_digest,
        created_at=at(4),
    )


def refusals(tx: Transaction) -> list[str]:
    """The errors the rows raise themselves (services check most of them first)."""
    found = []
    attempts = [
        lambda: tx.models.add("fraud", "", (), "ann", at(0)),
        lambda: tx.versions.add(version("fraud", 2, None, [])),
        lambda: tx.versions.add(version("fraud", 9, "1.1.0", [])),
        lambda: tx.governance.add_approval(approval("fraud", 99, digest(0))),
    ]
    for attempt in attempts:
        with pytest.raises((ModelExists, DuplicateVersion, SemverExists, VersionNotFound)) as e:
            attempt()
        found.append(f"{type(e.value).__name__}: {e.value}")
    return found


def read_all(tx: Transaction) -> dict[str, Any]:
    pk = tx.tracking.run_pks(["r1", "nope"])
    recipes = tx.recipes
    return {
        "models": tx.models.all(),
        "model": (tx.models.get("fraud"), tx.models.get("nope")),
        "required": (tx.models.required_fields("fraud"), tx.models.required_fields("x")),
        "versions": tx.versions.page("fraud"),
        "page": (tx.versions.page("fraud", 1, 1), tx.versions.page("fraud", 3)),
        "get": (tx.versions.get("churn", 1), tx.versions.get("churn", 2)),
        "keys": (
            tx.versions.key_by_number("fraud", 2),
            tx.versions.key_by_semver("fraud", "1.1.0"),
            tx.versions.keys_by_digest_prefix("fraud", "sha256:0000"),
            tx.versions.latest_key("fraud"),
            tx.versions.latest_key("fraud", at(2)),
            tx.versions.latest_key("churn"),
            tx.versions.latest_key("churn", at(10) - timedelta(seconds=1)),
            tx.versions.latest_key("churn", at(10)),
        ),
        "semvers": sorted(tx.versions.semvers("fraud")),
        "aliases": (tx.aliases.key("fraud", "champion"), tx.aliases.key("fraud", "old")),
        "alias events": (tx.aliases.events("fraud"), tx.aliases.events("fraud", "champion")),
        "audit": (tx.audit.events(), tx.audit.head()),
        "audit pages": (
            tx.audit.events("fraud"),
            tx.audit.events(since=at(1)),
            tx.audit.events(after=1, limit=1),
        ),
        "users": (tx.users.all(at(2)), tx.users.get("ann", at(40)), tx.users.get("x", at(0))),
        "tokens": (tx.users.tokens(), tx.users.tokens("carol"), tx.users.get_token(2)),
        "token by hash": (tx.users.token_by_hash("h3"), tx.users.token_by_hash("h9")),
        "recipes": (recipes.get(CHUNKED.digest), recipes.digests([CHUNKED.digest, digest(1)])),
        "recipe blobs": (sorted(recipes.blobs_since(at(0))), recipes.blobs_since(at(1))),
        "blob users": {d: sorted(refs) for d, refs in recipes.blob_users().items()},
        "some users": recipes.blob_users([digest(100), digest(901)]),
        "blob files": {
            d: sorted(f)
            for d, f in recipes.blob_files(
                [digest(100), digest(901), CHUNKED.recipe_digest]
            ).items()
        },
        "stored": [tuple(getattr(r, k) for k in STORED) for r in recipes.stored_files()],
        "holders": {
            d: sorted(h)
            for d, h in recipes.holders(
                [*recipes.blob_users(), *(digest(n) for n in range(1000)), CHUNKED.digest]
            ).items()
        },
        "uploads": (
            recipes.uploaded_by("carol", [digest(100), digest(901), digest(5)]),
            recipes.uploaded_by("ann", [digest(100)]),
        ),
        "experiment of": (tx.tracking.experiment_of("r1"), tx.tracking.experiment_of("nope")),
        "runs keeping": tx.tracking.runs_keeping([digest(300), digest(301), digest(302)]),
        "unused": (
            recipes.delete_unused(at(0), dry_run=True),
            recipes.delete_unused(at(1), dry_run=True),
            recipes.delete_unused(at(1)),
            recipes.get(ONLY_PURGED.digest),
        ),
        "runs": (tx.tracking.list_runs(), tx.tracking.list_runs("exp", ["r1", "r2"])),
        "run": (tx.tracking.get_run("r2"), tx.tracking.get_run("nope")),
        "run state": (tx.tracking.run_state("r1", lock=True), tx.tracking.run_params(pk["r1"])),
        "points": (pk, tx.tracking.metric_points("loss", [pk["r1"], 99])),
        "datasets": (tx.datasets.names(), tx.datasets.id_of("tx"), tx.datasets.id_of("x")),
        "dataset versions": [vars(row) for row in tx.datasets.versions("tx")],
        "lineage": sorted(tx.datasets.lineage_edges()),
        "policies": (tx.governance.policies(), tx.governance.current_policy_key()),
        "policy": (tx.governance.current_policy(), tx.governance.policy(1)),
        "checks": (tx.governance.check_results("fraud"), tx.governance.check_results("fraud", 3)),
        "approvals": tx.governance.approvals("fraud", 2),
        "attestations": tx.governance.attestations("fraud"),
        "retention": (tx.retention.all(), tx.retention.get("x")),
        "deployments": (
            tx.deployments.get("fraud", "prod"),
            tx.deployments.get("fraud", "dev"),
            tx.deployments.in_env("prod"),
            tx.deployments.in_env("dev"),
            tx.deployments.in_env("nope"),
        ),
        "deployment history": (
            tx.deployments.history("fraud", "prod"),
            tx.deployments.history("churn", "dev"),
        ),
        "deployment markers": [tx.deployments.marker(e) for e in ("prod", "dev", "nope")],
        "deployment blobs": sorted(
            b
            for b in tx.governance.deployment_blobs()  # type: ignore[attr-defined]
        ),
        "cleared": (tx.retention.clear("churn"), tx.retention.clear("churn"), tx.retention.all()),
    }


STORED = ("name", "number", "path", "digest", "size", "blob", "blob_size", "id", "version_digest")


def run_script(store: MetadataStore) -> dict[str, Any]:
    answers: dict[str, Any] = {}
    for write in (
        write_registry,
        write_users,
        write_tracking,
        write_governance,
        write_deployments,
    ):
        with store.transaction(write=True) as tx:
            write(tx)
            tx.commit()
    with store.transaction(write=True) as tx:
        answers["refusals"] = refusals(tx)
    with store.transaction(write=True) as tx:
        answers.update(read_all(tx))  # delete_unused and clear write: never committed
    with store.transaction() as tx:
        answers["after rollback"] = (tx.retention.all(), tx.recipes.get(ONLY_PURGED.digest))
    return answers


def test_memory_answers_what_sqlite_answers(stores: tuple[MetadataStore, MetadataStore]) -> None:
    sql, memory = (run_script(store) for store in stores)
    assert list(memory) == list(sql)
    for key, expected in sql.items():
        assert memory[key] == expected, key
