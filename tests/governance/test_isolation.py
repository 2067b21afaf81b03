"""Isolation between teams, through the server: two teams (``alpha``, ``beta``), each
with its model, experiment and dataset; a user of every role on alpha's scopes. Nobody
on alpha may read or change beta's runs, metric series, datasets, lineage, blobs or
files, nor register beta's bytes by naming their digest (issue 12)."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from modelkeep.client.client import Client
from modelkeep.client.http import HttpBackend
from modelkeep.config import Settings
from modelkeep.content import chunking
from modelkeep.domain.access import ROLES
from modelkeep.domain.manifest import FileEntry
from modelkeep.errors import BlobNotReadable, Forbidden
from tests.conftest import CliRunnerInProcess, live_server, served_app

API = "/api/v1"
MIB = 1024 * 1024
TEAMS = ("alpha", "beta")
MEMBERS = {"alpha": "al", "beta": "bo"}  # each team's contributor, who made its things


@dataclass
class World:
    http: TestClient
    tmp: Path
    clients: dict[str, Client] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    runs: dict[str, str] = field(default_factory=dict)  # team -> its (running) run
    digests: dict[str, dict[str, str]] = field(default_factory=dict)  # team -> what -> digest

    def get(self, user: str, path: str) -> Any:
        headers = {"authorization": f"Bearer {self.tokens[user]}"}
        return self.http.get(API + path, headers=headers)

    def call(self, user: str, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"authorization": f"Bearer {self.tokens[user]}"}
        return self.http.request(method, API + path, headers=headers, **kwargs)


def grant_team(admin: Client, name: str, role: str, team: str) -> None:
    """``role`` on the team's model, experiment and dataset."""
    admin.grant(name, role=role, experiment=f"{team}-exp")
    admin.grant(name, role=role, dataset=f"{team}-data")


@pytest.fixture
def world(settings: Settings, tmp_path: Path) -> Iterator[World]:
    with served_app(settings) as (http, admin_token):
        found = World(http, tmp_path)

        def client(token: str) -> Client:
            own = http.__class__(http.app, base_url="http://testserver")  # its own headers
            return Client(HttpBackend("http://testserver", token, http=own), settings)

        admin = found.clients["admin"] = client(admin_token)
        found.tokens["admin"] = admin_token
        for team in TEAMS:
            admin.create_model(team)
        users = {member: ("contributor", team) for team, member in MEMBERS.items()}
        users |= {f"{role}1": (role, "alpha") for role in ROLES}
        for name, (role, team) in users.items():
            _, issued = admin.create_user(name, role=role, model=team)
            grant_team(admin, name, role, team)
            found.tokens[name] = issued.secret
            found.clients[name] = client(issued.secret)
        for team, member in MEMBERS.items():
            make_team_things(found, team, found.clients[member])
        yield found


def make_team_things(world: World, team: str, member: Client) -> None:
    """The team's dataset, a run in its experiment (left running) that read it, logged a
    metric and a file and pushed ``TEAM@1``."""
    data = world.tmp / f"{team}.csv"
    data.write_text(f"x,y\n1,{team}\n")
    dataset = member.push_dataset(f"{team}-data", [data])
    run = member.start_run(f"{team}-exp", params={"lr": 0.1})
    run.use_dataset(f"{team}-data@1")
    run.log_metric("loss", 0.5)
    notes = world.tmp / f"{team}-notes.txt"
    notes.write_text(f"{team}'s notes")
    artifact = run.log_artifact(notes)
    weights = world.tmp / f"{team}.bin"
    weights.write_bytes(f"{team}'s weights".encode())
    version = run.push_model(team, [weights], datasets=[f"{team}-data@1"])
    run.flush()
    world.runs[team] = run.id
    world.digests[team] = {
        "weights": version.files[0].digest,
        "artifact": artifact.digest,
        "data": dataset.files[0].digest,
    }


class NotShown(Exception):
    """A listing left out what the reader may read, or showed what it may not."""


def shows(condition: bool) -> None:
    if not condition:
        raise NotShown()


def http_ok(response: Any) -> None:
    if response.status_code == 403:
        raise Forbidden(response.text)
    assert response.status_code == 200, response.text


Read = Callable[[World, str, str], Any]

READS: dict[str, Read] = {  # (world, user, team) -> read the team's thing as user
    "show model": lambda w, u, t: w.clients[u].get_model(t),
    "list versions": lambda w, u, t: w.clients[u].versions(t),
    "show version": lambda w, u, t: w.clients[u].show(f"{t}@1"),
    "pull": lambda w, u, t: w.clients[u].pull(f"{t}@1", w.tmp / "pulled" / u / t),
    "list models": lambda w, u, t: shows(t in [m.name for m in w.clients[u].list_models()]),
    "show run": lambda w, u, t: w.clients[u].run(w.runs[t]),
    "list runs": lambda w, u, t: shows(w.runs[t] in [r.id for r in w.clients[u].runs()]),
    "list runs of experiment": lambda w, u, t: shows(
        w.runs[t] in [r.id for r in w.clients[u].runs(f"{t}-exp")]
    ),
    "compare runs": lambda w, u, t: w.clients[u].runs(ids=[w.runs[t]]),
    "metric series": lambda w, u, t: w.clients[u].metric_series("loss", [w.runs[t]]),
    "list datasets": lambda w, u, t: shows(
        f"{t}-data" in [d["name"] for d in w.clients[u].datasets()]
    ),
    "dataset versions": lambda w, u, t: w.clients[u].dataset_versions(f"{t}-data"),
    "show dataset": lambda w, u, t: w.clients[u].dataset(f"{t}-data@1"),
    "pull dataset": lambda w, u, t: w.clients[u].pull_dataset(
        f"{t}-data@1", w.tmp / "pulled-data" / u / t
    ),
    "lineage of the model": lambda w, u, t: w.clients[u].lineage(f"{t}@1"),
    "lineage of the run": lambda w, u, t: w.clients[u].lineage(f"run:{w.runs[t]}"),
    "lineage of the dataset": lambda w, u, t: w.clients[u].lineage(f"dataset:{t}-data@1"),
    "blob of the weights": lambda w, u, t: http_ok(w.get(u, f"/blobs/{w.digests[t]['weights']}")),
    "file of the weights": lambda w, u, t: http_ok(w.get(u, f"/files/{w.digests[t]['weights']}")),
    "recipe of the weights": lambda w, u, t: http_ok(
        w.get(u, f"/files/{w.digests[t]['weights']}/recipe")
    ),
    "blob of the run's file": lambda w, u, t: http_ok(
        w.get(u, f"/blobs/{w.digests[t]['artifact']}")
    ),
    "file of the dataset": lambda w, u, t: http_ok(w.get(u, f"/files/{w.digests[t]['data']}")),
    "SDK open_blob": lambda w, u, t: w.clients[u].open_blob(w.digests[t]["weights"]).read(),
}


@pytest.mark.backends("sqlite", "postgresql")
def test_every_role_reads_its_own_team_and_nothing_of_the_other(world: World) -> None:
    """The read dimension of the role matrix: every role (granted on alpha's model,
    experiment and dataset) x every read route, on its own team and on the other."""
    wrong = []
    for role in ROLES:
        user = f"{role}1"
        for read, attempt in READS.items():
            for team in TEAMS:
                try:
                    attempt(world, user, team)
                    allowed = True
                except (Forbidden, NotShown):
                    allowed = False
                if allowed != (team == "alpha"):
                    wrong.append(f"{user} {'could' if allowed else 'could not'} {read} of {team}")
    assert wrong == []


@pytest.mark.backends("sqlite")
def test_a_global_viewer_still_reads_everything(world: World, settings: Settings) -> None:
    _, issued = world.clients["admin"].create_user("gwen", role="viewer")
    world.tokens["gwen"] = issued.secret
    own = world.http.__class__(world.http.app, base_url="http://testserver")
    world.clients["gwen"] = Client(
        HttpBackend("http://testserver", issued.secret, http=own), settings
    )
    for attempt in READS.values():
        for team in TEAMS:
            attempt(world, "gwen", team)  # raises if refused


@pytest.mark.backends("sqlite", "postgresql")
def test_a_viewer_of_alpha_gets_403_for_betas_things_over_http(world: World) -> None:
    beta_run, beta = world.runs["beta"], world.digests["beta"]
    for path in (
        f"/runs/{beta_run}",
        f"/metrics/loss?runs={beta_run}",
        "/datasets/beta-data/versions",
        "/datasets/beta-data/versions/1",
        f"/blobs/{beta['weights']}",
        f"/files/{beta['weights']}",
        f"/blobs/{beta['artifact']}",
        f"/files/{beta['data']}",
        "/lineage?ref=beta@1",
        "/lineage?ref=dataset:beta-data@1",
        f"/lineage?ref=run:{beta_run}",
    ):
        response = world.get("viewer1", path)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "forbidden"
    listed = world.get("viewer1", "/runs").json()
    assert [r["id"] for r in listed["items"]] == [world.runs["alpha"]]
    assert [d["name"] for d in world.get("viewer1", "/datasets").json()["items"]] == ["alpha-data"]


@pytest.mark.backends("sqlite", "postgresql")
def test_lineage_shows_other_teams_nodes_as_hidden(world: World) -> None:
    """A version of alpha made from beta's dataset (by a global admin): alpha's viewer
    sees that an input exists, not whose or what it is."""
    weights = world.tmp / "alpha2.bin"
    weights.write_bytes(b"alpha v2")
    world.clients["admin"].push("alpha", [weights], datasets=["beta-data@1", "alpha-data@1"])
    seen = world.clients["viewer1"].lineage("alpha@2").to_dict()
    text = json.dumps(seen)
    assert "beta" not in text
    assert {"id": "hidden:1", "kind": "hidden", "hidden": True} in seen["nodes"]
    assert {"from": "hidden:1", "to": "model:alpha@2"} in seen["edges"]
    assert {"from": "dataset:alpha-data@1", "to": "model:alpha@2"} in seen["edges"]
    full = world.clients["admin"].lineage("alpha@2").to_dict()
    assert {"from": "dataset:beta-data@1", "to": "model:alpha@2"} in full["edges"]


@pytest.mark.backends("sqlite", "postgresql")
def test_readers_of_a_model_read_the_run_its_version_was_pushed_from(world: World) -> None:
    """alpha@2 pushed from beta's run by an admin: the run is now alpha's input too."""
    weights = world.tmp / "alpha2.bin"
    weights.write_bytes(b"alpha v2")
    world.clients["admin"].push("alpha", [weights], run=world.runs["beta"])
    assert world.clients["viewer1"].run(world.runs["beta"]).experiment == "beta-exp"
    with pytest.raises(Forbidden):  # reading is not writing
        world.clients["contributor1"].log_run_params(world.runs["beta"], {"x": 1})


@pytest.mark.backends("sqlite", "postgresql")
def test_a_contributor_of_alpha_cannot_change_betas_run(world: World) -> None:
    al, run_id = world.clients["al"], world.runs["beta"]
    notes = world.tmp / "al-notes.txt"
    notes.write_text("al was here")
    attempts: dict[str, Callable[[], Any]] = {
        "params": lambda: al.log_run_params(run_id, {"evil": 1}),
        "metrics": lambda: al.log_run_metrics(run_id, {"loss": 99.0}, step=7),
        "dataset": lambda: al.use_run_dataset(run_id, "alpha-data@1"),
        "end": lambda: al.end_run(run_id, "killed"),
    }
    for what, attempt in attempts.items():
        with pytest.raises(Forbidden) as refused:
            attempt()
        assert "beta-exp" not in str(refused.value), what  # not theirs to learn
    entry = world.clients["al"].start_run("alpha-exp")  # uploads notes as al's own bytes
    uploaded = entry.log_artifact(notes)
    artifact = {"path": "x.txt", "size": uploaded.size, "digest": uploaded.digest}
    response = world.call("al", "POST", f"/runs/{run_id}/artifacts", json=artifact)
    assert response.status_code == 403
    for status_path in (f"/runs/{run_id}/end", f"/runs/{run_id}/finish"):
        response = world.call("al", "POST", status_path, json={"status": "killed"})
        assert response.status_code == 403, status_path
    run = world.clients["bo"].run(run_id)
    assert run.status == "running" and run.params == {"lr": 0.1}
    assert [a[0] for a in run.artifacts] == ["beta-notes.txt"]
    assert world.clients["bo"].metric_series("loss", [run_id])[0].total == 1
    with pytest.raises(Forbidden):  # nor start one in beta's experiment
        al.start_run("beta-exp")


@pytest.mark.backends("sqlite", "postgresql")
def test_a_contributor_of_alpha_cannot_push_betas_dataset(world: World) -> None:
    data = world.tmp / "evil.csv"
    data.write_text("x,y\n9,9\n")
    with pytest.raises(Forbidden):
        world.clients["al"].push_dataset("beta-data", [data])
    assert [v.number for v in world.clients["bo"].dataset_versions("beta-data")] == [1]
    body = {"files": [{"path": "d.csv", "size": 10, "digest": world.digests["alpha"]["data"]}]}
    response = world.call("al", "POST", "/datasets/beta-data/versions", json=body)
    assert response.status_code == 403
    # a dataset nobody granted yet: only a global contributor may create it
    with pytest.raises(Forbidden):
        world.clients["al"].push_dataset("new-data", [data])


@pytest.mark.backends("sqlite", "postgresql")
def test_a_contributor_cannot_register_another_teams_blob_by_its_digest(world: World) -> None:
    beta_weights = world.digests["beta"]["weights"]
    size = len(b"beta's weights")
    body = {"files": [{"path": "stolen.bin", "size": size, "digest": beta_weights}]}
    response = world.call("al", "POST", "/models/alpha/versions", json=body)
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "blob_not_readable"
    assert beta_weights in error["message"] and "upload" in error["message"]
    # the run's file and the dataset's file: the same rule
    entry = FileEntry("stolen.bin", size, beta_weights)
    run = world.clients["al"].start_run("alpha-exp")
    with pytest.raises(BlobNotReadable):
        world.clients["al"]._backend.log_artifact(run.id, entry)
    with pytest.raises(BlobNotReadable):
        world.clients["al"]._backend.push_dataset("alpha-data", [entry], _dataset_request())
    # the store says it lacks the blob, to whoever has not shown they hold its bytes
    missing = world.call("al", "POST", "/blobs/missing", json={"digests": [beta_weights]})
    assert missing.json()["missing"] == [beta_weights]
    assert (
        world.call("bo", "POST", "/blobs/missing", json={"digests": [beta_weights]}).json()[
            "missing"
        ]
        == []
    )
    # whoever really holds the bytes pushes them: sent again, then registered
    same = world.tmp / "same.bin"
    same.write_bytes(b"beta's weights")
    pushed = world.clients["al"].push("alpha", [same])
    assert pushed.files[0].digest == beta_weights
    assert world.call("al", "POST", "/models/alpha/versions", json=body).status_code == 201


@pytest.mark.backends("sqlite")
def test_assembling_another_teams_chunks_is_refused(world: World) -> None:
    chunk = world.digests["beta"]["weights"]
    body = {"chunker": "fastcdc", "chunks": [[chunk, len(b"beta's weights")]]}
    response = world.call("al", "POST", "/files", json=body)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "blob_not_readable"


@pytest.mark.backends("sqlite", "postgresql")
def test_changes_to_a_run_are_audited_once_per_batch(world: World) -> None:
    bo, run_id = world.clients["bo"], world.runs["beta"]
    before = len(world.clients["admin"].audit_log())
    bo.log_run_params(run_id, {"depth": 3, "width": 8})
    bo._backend.log_points(run_id, [("acc", i, i / 1000, 0.0) for i in range(1000)])
    bo.use_run_dataset(run_id, "beta-data@1")
    bo.end_run(run_id, "finished")
    events = world.clients["admin"].audit_log()[before:]
    assert [(e.action, e.actor, e.subject) for e in events] == [
        ("run.params", "bo", f"run:{run_id}"),
        ("run.metrics", "bo", f"run:{run_id}"),
        ("run.dataset", "bo", f"run:{run_id}"),
        ("run.end", "bo", f"run:{run_id}"),
    ]
    assert events[0].details["params"] == ["depth", "width"]
    assert events[1].details["points"] == 1000 and events[1].details["names"] == ["acc"]
    assert events[2].details["dataset"] == "beta-data@1"
    made = [e for e in world.clients["admin"].audit_log() if e.subject == f"run:{run_id}"]
    assert "run.artifact" in [e.action for e in made]  # the file logged at the start


def _dataset_request() -> Any:
    from modelkeep.domain.datasets import DatasetPush

    return DatasetPush()


# the CLI, against a real server --------------------------------------------------------


@pytest.mark.backends("sqlite", "postgresql")
def test_the_cli_keeps_teams_apart(
    settings: Settings,
    cli: CliRunnerInProcess,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    with live_server(settings) as (url, admin_token):
        monkeypatch.setenv("MODELKEEP_URI", url)
        monkeypatch.delenv("MODELKEEP_DATABASE_URL")

        def run(token: str, *args: str) -> Any:
            monkeypatch.setenv("MODELKEEP_TOKEN", token)
            return cli(*args, "--json")

        def ok(token: str, *args: str) -> Any:
            result = run(token, *args)
            assert result.code == 0, result
            return json.loads(result.out)

        def refused(token: str, code: str, *args: str) -> str:
            result = run(token, *args)
            assert result.code == 1, result
            error = json.loads(result.out)["error"]
            assert error["code"] == code, error
            return str(error["message"])

        tokens = {}
        for team, member in MEMBERS.items():
            ok(admin_token, "models", "create", team)
            tokens[member] = ok(
                admin_token, "users", "create", member, "--role", "contributor", "--model", team
            )["token"]
            for scope in ("--experiment", "--dataset"):
                name = f"{team}-exp" if scope == "--experiment" else f"{team}-data"
                granted = ok(
                    admin_token, "users", "grant", member, "--role", "contributor", scope, name
                )
            assert {"role": "contributor", "model": None, "dataset": f"{team}-data"} in granted[
                "grants"
            ]
        tokens["vi"] = ok(
            admin_token, "users", "create", "vi", "--role", "viewer", "--model", "alpha"
        )["token"]
        ok(admin_token, "users", "grant", "vi", "--role", "viewer", "--experiment", "alpha-exp")
        data = tmp_path / "beta.csv"
        data.write_text("x\n1\n")
        ok(tokens["bo"], "datasets", "push", "beta-data", str(data))
        started = ok(tokens["bo"], "runs", "start", "--experiment", "beta-exp")
        run_id = started["id"]
        weights = tmp_path / "beta.bin"
        weights.write_bytes(b"beta's weights (cli)")
        pushed = ok(tokens["bo"], "push", "beta", str(weights), "--run", run_id)
        digest = pushed["files"][0]["digest"]

        # alpha's viewer reads nothing of beta's
        for args in (
            ("runs", "show", run_id),
            ("datasets", "versions", "beta-data"),
            ("datasets", "show", "beta-data@1"),
            ("lineage", "beta@1"),
            ("lineage", f"run:{run_id}"),
            ("pull", "beta@1", str(tmp_path / "out")),
        ):
            refused(tokens["vi"], "forbidden", *args)
        assert ok(tokens["vi"], "runs", "list") == []
        assert ok(tokens["vi"], "datasets", "list") == []

        # alpha's contributor changes nothing of beta's
        refused(tokens["al"], "forbidden", "runs", "log", run_id, "--param", "evil=1")
        refused(tokens["al"], "forbidden", "runs", "end", run_id, "--status", "killed")
        refused(tokens["al"], "forbidden", "datasets", "push", "beta-data", str(data))
        assert ok(tokens["bo"], "runs", "show", run_id)["status"] == "running"
        assert [v["number"] for v in ok(tokens["bo"], "datasets", "versions", "beta-data")] == [1]
        # and whoever holds the same bytes may push them: the client sends them again
        same = tmp_path / "same.bin"
        same.write_bytes(b"beta's weights (cli)")
        assert ok(tokens["al"], "push", "alpha", str(same))["files"][0]["digest"] == digest

        # lineage: beta's dataset behind alpha@2 is shown hidden, not named
        other = tmp_path / "alpha2.bin"
        other.write_bytes(b"alpha 2")
        ok(admin_token, "push", "alpha", str(other), "--dataset", "beta-data@1")
        monkeypatch.setenv("MODELKEEP_TOKEN", tokens["vi"])
        shown = cli("lineage", "alpha@2")
        assert shown.code == 0, shown
        assert "(hidden)" in shown.out and "beta" not in shown.out


@pytest.mark.backends("sqlite", "postgresql")
def test_a_chunked_file_is_read_and_pushed_by_the_same_rules(world: World) -> None:
    """beta's big (chunked) weights: alpha's viewer reads neither the recipe nor a chunk;
    alpha's contributor, who holds the same bytes, pushes them (its client sends every
    chunk again); then alpha's viewer reads them through alpha@2."""
    big = random.Random(12).randbytes(chunking.WHOLE_BELOW + MIB)
    path = world.tmp / "big.bin"
    path.write_bytes(big)
    pushed = world.clients["bo"].push("beta", [path])
    file_digest = pushed.files[0].digest
    recipe = world.get("bo", f"/files/{file_digest}/recipe")
    assert recipe.status_code == 200
    chunk = recipe.json()["chunks"][0][0]  # [digest, size]
    for route in (f"/files/{file_digest}/recipe", f"/files/{file_digest}", f"/blobs/{chunk}"):
        assert world.get("viewer1", route).status_code == 403, route
    assert world.clients["al"].push("alpha", [path]).files[0].digest == file_digest
    pulled = world.clients["viewer1"].pull("alpha@2", world.tmp / "alpha2")
    assert (world.tmp / "alpha2" / "big.bin").read_bytes() == big, pulled
    assert world.get("viewer1", f"/blobs/{chunk}").status_code == 200


@pytest.mark.backends("sqlite")
def test_a_check_over_another_teams_dataset_is_refused(world: World) -> None:
    from modelkeep.domain.governance import NewCheckResult

    result = NewCheckResult(suite="eval", kind="evaluation", metrics={"auc": 0.9}, passed=True)
    with pytest.raises(Forbidden):
        world.clients["al"].record_check("alpha@1", dataset="beta-data@1", result=result)
    assert world.clients["al"].record_check("alpha@1", dataset="alpha-data@1", result=result)


@pytest.mark.backends("sqlite", "postgresql")
def test_a_runs_diff_is_read_through_the_run_and_named_only_by_its_sender(world: World) -> None:
    diff = b"--- a/train.py\n+++ b/train.py\n+beta's secret change\n"
    digest = "sha256:" + hashlib.sha256(diff).hexdigest()
    assert world.call("bo", "PUT", f"/blobs/{digest}", content=diff).status_code in (200, 201)
    body = {"experiment": "beta-exp", "code": {"dirty": True, "diff_digest": digest}}
    # alpha's contributor knows the digest, not the bytes: it may not name it
    refused = world.call("al", "POST", "/runs", json={**body, "experiment": "alpha-exp"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "blob_not_readable"
    started = world.call("bo", "POST", "/runs", json=body)
    assert started.status_code == 201, started.text
    assert world.get("viewer1", f"/blobs/{digest}").status_code == 403
    assert world.get("bo", f"/blobs/{digest}").status_code == 200
    assert world.get("admin", f"/blobs/{digest}").content == diff
