"""The registry's behaviour through the SDK, on local blobs with SQLite and PostgreSQL."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest

import modelkeep
from modelkeep.domain.manifest import FileEntry
from modelkeep.domain.versions import PushRequest
from modelkeep.errors import (
    AliasNotFound,
    AmbiguousRef,
    Conflict,
    DuplicateVersion,
    EmptyPush,
    InvalidInput,
    InvalidMetadata,
    MissingMetadata,
    ModelExists,
    ModelNotFound,
    ProtectedAlias,
    SemverExists,
    VersionArchived,
    VersionNotFound,
)
from modelkeep.services import audit, models, versions
from modelkeep.services.context import ServiceContext
from tests.clock import FakeClock
from tests.conftest import FileMaker

# Also on the in-memory store (tests/conftest.py); a test that reaches into SQL says so.
pytestmark = pytest.mark.backends("sqlite", "postgresql", "memory")


def push(
    mk: modelkeep.Client, files: FileMaker, model: str = "m", **kwargs: object
) -> modelkeep.Version:
    return mk.push(model, [files.make()], **kwargs)  # type: ignore[arg-type]


def test_models_are_created_once_and_listed(mk: modelkeep.Client) -> None:
    mk.create_model("fraud", description="catches fraud", require=["commit", "meta.owner"])
    with pytest.raises(ModelExists):
        mk.create_model("fraud")
    model = mk.get_model("fraud")
    assert model.required == ("commit", "meta.owner") and model.description == "catches fraud"
    assert [m.name for m in mk.list_models()] == ["fraud"]
    with pytest.raises(ModelNotFound):
        mk.get_model("nope")


def test_a_script_may_create_its_model_again_with_exist_ok(mk: modelkeep.Client) -> None:
    made = mk.create_model("fraud", require=["commit"], exist_ok=True)
    again = mk.create_model("fraud", require=["commit"], description="other", exist_ok=True)
    assert again == made  # returned as it is, the description untouched
    with pytest.raises(ModelExists, match=r"required fields \['commit'\], not \[\]"):
        mk.create_model("fraud", exist_ok=True)
    assert [e.action for e in mk.audit_log(model="fraud")] == ["model.create"]


def test_unknown_required_fields_are_refused(mk: modelkeep.Client) -> None:
    with pytest.raises(InvalidMetadata):
        mk.create_model("m", require=["colour"])


@pytest.mark.transport  # the common path (upload, JSON bodies) on a real server
def test_versions_are_numbered_and_keep_their_metadata(
    mk: modelkeep.Client, files: FileMaker
) -> None:
    mk.create_model("m")
    first = push(
        mk,
        files,
        params={"lr": 0.1, "opt": "adam"},
        metrics={"auc": 0.9},
        datasets=["tx@3"],
        commit="abc",
        seed=0,
        run="r1",
        meta={"owner": "ann"},
        message="first",
    )
    second = push(mk, files)
    assert (first.number, second.number) == (1, 2)
    shown = mk.show("m@1")
    assert shown == first
    meta = shown.metadata.to_dict()
    assert meta == {
        "params": {"lr": 0.1, "opt": "adam"},
        "metrics": {"auc": 0.9},
        "datasets": ["tx@3"],
        "commit": "abc",
        "seed": 0,
        "run": "r1",
        "meta": {"owner": "ann"},
    }
    assert shown.created_by.startswith("local:") or shown.created_by.endswith("-admin")
    assert shown.message == "first"
    with pytest.raises(TypeError):
        shown.metadata.params["lr"] = 1  # type: ignore[index]


def test_required_metadata_is_enforced(mk: modelkeep.Client, files: FileMaker) -> None:
    mk.create_model("m", require=["commit", "params.lr", "meta.owner", "seed"])
    with pytest.raises(MissingMetadata, match=r"commit, params\.lr, meta\.owner, seed"):
        push(mk, files)
    assert push(mk, files, commit="c", params={"lr": 1}, meta={"owner": "x"}, seed=0).number == 1


def test_semver_is_unique_and_bumps(mk: modelkeep.Client, files: FileMaker) -> None:
    mk.create_model("m")
    push(mk, files, version="1.2.0")
    with pytest.raises(SemverExists):
        push(mk, files, version="1.2.0")
    assert push(mk, files, bump="minor").semver == "1.3.0"
    assert push(mk, files, bump="major").semver == "2.0.0"
    assert push(mk, files).semver is None
    with pytest.raises(InvalidInput):
        push(mk, files, version="banana")
    assert [v.number for v in mk.versions("m")] == [1, 2, 3, 4]


def test_identical_files_are_one_version(mk: modelkeep.Client, files: FileMaker) -> None:
    mk.create_model("m")
    mk.push("m", [files.make("w.bin", b"same")])
    with pytest.raises(DuplicateVersion, match="m@1"):
        mk.push("m", [files.make("w.bin", b"same")])


@pytest.mark.transport  # refs ('@', ':', digests) in URL paths, decoded by uvicorn
def test_every_kind_of_reference_resolves(mk: modelkeep.Client, files: FileMaker) -> None:
    mk.create_model("m")
    v1 = push(mk, files, version="1.0.0")
    v2 = push(mk, files)
    mk.set_alias("m@1", "champion")
    for ref, expected in [
        ("m@1", v1),
        ("m@1.0.0", v1),
        (f"m@{v2.digest[:19]}", v2),
        (f"m@{v1.digest}", v1),
        ("m@champion", v1),
        ("m@latest", v2),
        ("m", v2),
    ]:
        found = mk.resolve(ref)
        assert (found.number, found.digest) == (expected.number, expected.digest), ref
    with pytest.raises(VersionNotFound):
        mk.resolve("m@3")
    with pytest.raises(AliasNotFound):
        mk.resolve("m@nobody")
    with pytest.raises(ModelNotFound):
        mk.resolve("nope@1")


def test_an_ambiguous_digest_prefix_is_refused(
    mk: modelkeep.Client, files: FileMaker, registry: ServiceContext
) -> None:
    # Two digests sharing 12 hex digits cannot be made on purpose, so ask the resolver
    # with a shorter prefix than the parser allows (the parser's minimum is tested apart).
    from modelkeep.domain.names import Ref, RefKind
    from modelkeep.services.lookup import key as _key

    mk.create_model("m")
    for _ in range(3):
        push(mk, files)
    with registry.store.transaction() as tx, pytest.raises(AmbiguousRef, match="1, 2, 3"):
        _key(tx, Ref("m", RefKind.DIGEST, "sha256:"), None)


def test_aliases_move_with_history_and_resolve_in_the_past(
    clock: FakeClock, mk: modelkeep.Client, files: FileMaker
) -> None:
    mk.create_model("m")
    for _ in range(3):
        push(mk, files)
    mk.set_alias("m@1", "champion", reason="first")
    between = clock()  # after the first move, before the second
    moved = mk.set_alias("m@2", "champion", reason="better")
    assert (moved.old, moved.new, moved.reason) == (1, 2, "better")
    assert mk.resolve("m@champion").number == 2
    assert mk.resolve("m@champion", at=between).number == 1
    with pytest.raises(AliasNotFound):
        mk.resolve("m@champion", at=between - timedelta(hours=1))
    assert mk.show("m@2").aliases == ("champion",)
    mk.remove_alias("m", "champion")
    with pytest.raises(AliasNotFound):
        mk.resolve("m@champion")
    history = mk.alias_history("m", "champion")
    assert [(e.action, e.old, e.new) for e in history] == [
        ("set", None, 1),
        ("set", 1, 2),
        ("rm", 2, None),
    ]


def test_latest_at_a_past_time(clock: FakeClock, mk: modelkeep.Client, files: FileMaker) -> None:
    mk.create_model("m")
    push(mk, files)
    between = clock()
    push(mk, files)
    assert mk.resolve("m@latest", at=between).number == 1
    with pytest.raises(VersionNotFound, match="did not exist yet"):
        mk.resolve("m@2", at=between)


def test_stages_move_only_by_promote_and_rollback(mk: modelkeep.Client, files: FileMaker) -> None:
    mk.create_model("m")
    for _ in range(3):
        push(mk, files)
    with pytest.raises(ProtectedAlias):
        mk.set_alias("m@1", "production")
    with pytest.raises(ProtectedAlias):
        mk.remove_alias("m", "staging")
    for n in (1, 2, 3):
        mk.promote(f"m@{n}", to="production")
    assert mk.rollback("m", stage="production").new == 2
    assert mk.rollback("m", stage="production").new == 1
    with pytest.raises(Conflict):
        mk.rollback("m", stage="production")
    assert mk.resolve("m@production").number == 1
    with pytest.raises(InvalidInput):
        mk.promote("m@1", to="prod")


def test_promoting_twice_records_one_move(mk: modelkeep.Client, files: FileMaker) -> None:
    mk.create_model("m")
    push(mk, files)
    mk.promote("m@1", to="staging")
    mk.promote("m@1", to="staging")
    assert len(mk.alias_history("m", "staging")) == 1


def test_archived_versions_are_readable_but_never_promoted(
    mk: modelkeep.Client, files: FileMaker, tmp_path: object
) -> None:
    mk.create_model("m")
    push(mk, files)
    push(mk, files)
    archived = mk.archive("m@1", reason="old")
    assert archived.status == "archived" and archived.archived_at is not None
    assert mk.show("m@1").status == "archived"
    with pytest.raises(VersionArchived):
        mk.promote("m@1", to="production")
    with pytest.raises(VersionArchived):
        mk.set_alias("m@1", "champion")
    assert mk.resolve("m@latest").number == 2
    mk.promote("m@2", to="production")
    with pytest.raises(Conflict, match="production"):
        mk.archive("m@2")


def test_rollback_never_lands_on_an_archived_version(
    mk: modelkeep.Client, files: FileMaker
) -> None:
    mk.create_model("m")
    push(mk, files)
    push(mk, files)
    mk.promote("m@1", to="production")
    mk.promote("m@2", to="production")
    with pytest.raises(Conflict):
        mk.archive("m@2")
    mk.rollback("m", stage="production")
    mk.promote("m@2", to="production")
    mk.archive("m@1")  # m@1 is no stage's target now, so it may be archived
    with pytest.raises(VersionArchived):
        mk.rollback("m", stage="production")
    assert mk.resolve("m@production").number == 2


def test_an_empty_push_is_refused(mk: modelkeep.Client, tmp_path: object) -> None:
    from pathlib import Path

    mk.create_model("m")
    empty = Path(str(tmp_path)) / "empty"
    empty.mkdir()
    with pytest.raises(EmptyPush):
        mk.push("m", [empty])
    assert mk.versions("m") == []


def test_diff_names_files_metadata_and_metrics(mk: modelkeep.Client, files: FileMaker) -> None:
    mk.create_model("m")
    shared = files.make("cfg.json", b"{}")
    mk.push(
        "m",
        [shared, files.make("w.bin", b"1")],
        params={"lr": 0.1},
        metrics={"auc": 0.8, "f1": 0.5},
    )
    mk.push("m", [shared, files.make("w.bin", b"2")], params={"lr": 0.2}, metrics={"auc": 0.9})
    diff = mk.diff("m@1", "m@2").to_dict()
    assert [c["key"] for c in diff["files"]] == ["w.bin"]
    assert {c["key"] for c in diff["metadata"]} == {"params.lr"}
    metrics = {c["key"]: c for c in diff["metrics"]}
    assert metrics["auc"]["delta"] == pytest.approx(0.1)
    assert metrics["f1"]["new"] is None and metrics["f1"]["delta"] is None
    assert mk.diff("m@1", "m@1").identical


def test_every_change_is_audited_in_one_chain(mk: modelkeep.Client, files: FileMaker) -> None:
    mk.create_model("m")
    v = push(mk, files)
    mk.set_alias("m@1", "champion")
    mk.promote("m@1", to="staging")
    everything = mk.audit_log()
    assert [e.seq for e in everything] == list(range(1, len(everything) + 1))
    events = mk.audit_log(model="m")  # over HTTP the test's admin was created first
    assert [e.action for e in events] == [
        "model.create",
        "version.push",
        "alias.set",
        "alias.promote",
    ]
    first = events[0].seq
    assert [e.seq for e in events] == [first, first + 1, first + 2, first + 3]
    assert events[1].details["digest"] == v.digest
    assert events[3].details["new_digest"] == v.digest
    assert mk.audit_verify().ok
    assert mk.audit_log(model="other") == []
    assert mk.audit_log(since=datetime.now(UTC) + timedelta(hours=1)) == []


def test_refused_operations_write_nothing(mk: modelkeep.Client, files: FileMaker) -> None:
    mk.create_model("m", require=["commit"])
    before = len(mk.audit_log())
    for attempt in (
        lambda: push(mk, files),
        lambda: mk.create_model("m"),
        lambda: mk.promote("m@1", to="staging"),
    ):
        with pytest.raises(modelkeep.ModelkeepError):
            attempt()
    assert len(mk.audit_log()) == before and mk.versions("m") == []


def test_versions_and_audit_events_page_in_the_database(registry: ServiceContext) -> None:
    """A page is read as an index range after the cursor, on SQLite and PostgreSQL."""
    models.create_model(registry, "paged")
    for n in range(5):
        info = versions.put_blob(registry, io.BytesIO(b"v%d" % n))
        versions.register_version(
            registry, "paged", [FileEntry("w", info.size, info.digest)], PushRequest()
        )
    assert [v.number for v in versions.list_versions(registry, "paged", after=1, limit=2)] == [2, 3]
    assert [v.number for v in versions.list_versions(registry, "paged", after=4)] == [5]
    assert versions.list_versions(registry, "paged", after=5, limit=3) == []
    every = [e.seq for e in audit.audit_log(registry, "paged")]
    assert [e.seq for e in audit.audit_log(registry, "paged", after=every[1], limit=2)] == every[
        2:4
    ]
