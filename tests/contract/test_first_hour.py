"""The first hour through the SDK, in process and over HTTP, on SQLite, PostgreSQL and the
in-memory store: pushing the same files again, unarchive, versions seen through their run.
(The CLI side is tests/e2e/test_cli_first_hour.py.)"""

from __future__ import annotations

from typing import Any

import pytest

import modelkeep
from modelkeep.errors import DuplicateVersion, Forbidden, VersionArchived, VersionPurged
from modelkeep.services import retention, versions
from modelkeep.services.context import ServiceContext
from tests.conftest import FileMaker, served_app

pytestmark = pytest.mark.backends("sqlite", "postgresql", "memory")


def test_push_if_exists_reuse_over_every_transport(mk: modelkeep.Client, files: FileMaker) -> None:
    mk.create_model("m")
    path = files.make("w.bin", b"weights")
    first = mk.push("m", [path], version="1.0.0")
    assert first.reused is False
    with pytest.raises(DuplicateVersion) as refused:
        mk.push("m", [path])
    assert refused.value.details == {
        "ref": "m@1",
        "number": 1,
        "digest": first.digest,
        "archived": False,
    }
    again = mk.push("m", [path], if_exists="reuse", bump="minor")  # a bump is no new version
    assert (again.number, again.digest, again.semver, again.reused) == (
        1,
        first.digest,
        "1.0.0",
        True,
    )
    assert [v.number for v in mk.versions("m")] == [1]
    with pytest.raises(DuplicateVersion):  # another semver would be another version
        mk.push("m", [path], if_exists="reuse", version="2.0.0")


def test_push_dataset_if_exists_reuse(mk: modelkeep.Client, files: FileMaker) -> None:
    data = files.make("d.csv", b"x,y\n1,0\n")
    first = mk.push_dataset("tx", [data], version="1.0.0")
    with pytest.raises(DuplicateVersion) as refused:
        mk.push_dataset("tx", [data])
    assert refused.value.details["ref"] == "tx@1"
    again = mk.push_dataset("tx", [data], if_exists="reuse")
    assert (again.number, again.reused) == (1, True) and first.reused is False
    assert mk.push_dataset("tx", [data], if_exists="reuse", version="1.0.0").number == 1
    assert [v.number for v in mk.dataset_versions("tx")] == [1]


def test_unarchive_brings_a_version_back(mk: modelkeep.Client, files: FileMaker) -> None:
    mk.create_model("m")
    path = files.make("w.bin", b"weights")
    mk.push("m", [path])
    mk.archive("m@1", reason="old")
    with pytest.raises(DuplicateVersion, match="modelkeep unarchive m@1") as refused:
        mk.push("m", [path], if_exists="reuse")
    assert refused.value.details["archived"] is True
    with pytest.raises(VersionArchived, match="modelkeep unarchive m@1"):
        mk.set_alias("m@1", "champion")
    back = mk.unarchive("m@1", reason="needed")
    assert (back.status, back.archived_at) == ("active", None)
    assert mk.unarchive("m@1") == back  # nothing to do: returned as it is
    mk.set_alias("m@1", "champion")
    mk.promote("m@1", to="staging")
    kinds = [e.action for e in mk.audit_log(model="m")]
    assert kinds.count("version.unarchive") == 1
    assert mk.audit_verify().ok


def test_a_purged_version_stays_archived(
    mk: modelkeep.Client, files: FileMaker, registry: ServiceContext
) -> None:
    mk.create_model("m")
    mk.push("m", [files.make("w.bin", b"one")])
    mk.push("m", [files.make("w.bin", b"two")])
    mk.archive("m@1")
    mk.set_retention("m", keep_last=1)
    assert retention.apply(registry) == ("m@1",)  # what gc does first
    with pytest.raises(VersionPurged):
        mk.unarchive("m@1")
    assert mk.show("m@1").status == "archived"


def test_a_version_shows_what_its_run_logged(mk: modelkeep.Client, files: FileMaker) -> None:
    mk.create_model("m")
    with mk.start_run("m", params={"lr": 0.1}) as run:
        run.log_metric("auc", 0.9)
        pushed = run.push_model("m", [files.make("w.bin", b"one")])
    assert pushed.metadata.metrics == {}
    shown = mk.show("m@1")
    assert shown.from_run is not None
    assert (shown.from_run.run, dict(shown.from_run.params)) == (run.id, {"lr": 0.1})
    assert dict(shown.from_run.metrics) == {"auc": 0.9}
    assert mk.versions("m")[0].from_run == shown.from_run
    mk.push("m", [files.make("w.bin", b"two")], metrics={"auc": 0.8})
    diff = mk.diff("m@1", "m@2")
    (auc,) = diff.metrics
    assert (auc.old, auc.new, auc.old_from_run, auc.new_from_run) == (0.9, 0.8, run.id, None)
    assert mk.run(run.id).model_versions == ("m@1",)


def test_unarchive_is_allowed_to_the_roles_that_archive(settings: Any, files: FileMaker) -> None:
    with served_app(settings) as (http, admin_token):
        admin = {"authorization": f"Bearer {admin_token}"}

        def token(name: str, role: str) -> dict[str, str]:
            made = http.post("/api/v1/users", json={"name": name, "role": role}, headers=admin)
            assert made.status_code == 201, made.text
            return {"authorization": f"Bearer {made.json()['token']['token']}"}

        viewer, contributor = token("vic", "viewer"), token("carol", "contributor")
        with modelkeep.connect(settings=settings) as local:
            local.create_model("m")
            local.push("m", [files.make("w.bin", b"one")])
            local.archive("m@1")
        url = "/api/v1/models/m/versions/1/unarchive"
        refused = http.post(url, json={"reason": "x"}, headers=viewer)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
        done = http.post(url, json={"reason": "back"}, headers=contributor)
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "active"
        body = {"files": done.json()["files"], "if_exists": "reuse"}
        reused = http.post("/api/v1/models/m/versions", json=body, headers=contributor)
        assert reused.status_code == 201 and reused.json()["reused"] is True
        again = http.post("/api/v1/models/m/versions", json={"files": body["files"]}, headers=admin)
        assert again.status_code == 409
        assert again.json()["error"]["details"]["ref"] == "m@1"
    assert Forbidden.http_status == 403


def test_the_service_refuses_an_unknown_if_exists(
    registry: ServiceContext, files: FileMaker
) -> None:
    from modelkeep.domain.manifest import FileEntry
    from modelkeep.domain.versions import PushRequest
    from modelkeep.errors import InvalidInput

    with pytest.raises(InvalidInput, match="if_exists"):
        versions.register_version(
            registry,
            "m",
            [FileEntry("w.bin", 1, "sha256:" + "0" * 64)],
            PushRequest(if_exists="skip"),
        )
