"""The CI workflow of docs/ci.md, run exactly as written, against a live server."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import pytest

import modelkeep
from modelkeep.config import Settings
from tests.conftest import live_server

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def workflow_script() -> str:
    text = (ROOT / "docs" / "ci.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, re.S)
    assert len(blocks) == 1, "docs/ci.md holds exactly one bash workflow"
    return blocks[0]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_documented_ci_workflow_runs_end_to_end(settings: Settings, tmp_path: Path) -> None:
    with live_server(settings) as (url, admin_token):
        with modelkeep.connect(url, token=admin_token) as admin:
            admin.set_policy(ROOT / "examples" / "policy.yaml")
            admin.create_model("fraud")
            tokens = {
                "CI_TOKEN": admin.create_user("ci", role="contributor")[1].secret,
                "APPROVER_TOKEN": admin.create_user("alice", role="approver")[1].secret,
                "RELEASER_TOKEN": admin.create_user("bob", role="releaser")[1].secret,
            }
        work = tmp_path / "work"
        (work / "examples").mkdir(parents=True)
        (work / "examples" / "ci").symlink_to(ROOT / "examples" / "ci")
        env = {
            **os.environ,
            **tokens,
            "MODELKEEP_URI": url,
            "GIT_COMMIT": "0123456789abcdef0123456789abcdef01234567",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "MODELKEEP_CACHE_DIR": "off",
        }
        env.pop("MODELKEEP_TOKEN", None)
        done = subprocess.run(
            ["bash", "-c", workflow_script()],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        with modelkeep.connect(url, token=admin_token) as admin:
            production = admin.resolve("fraud@production")
            attestations = admin.attestations(f"fraud@{production.number}")
            approvals = admin.approvals(f"fraud@{production.number}")
            events = [e.action for e in admin.audit_log(model="fraud")]
    assert [a.stage for a in attestations] == ["staging", "production"]
    assert [(a.user, a.decision) for a in approvals] == [("alice", "approve")]
    assert "approval.approve" in events and "check.record" in events
    gate = ElementTree.parse(work / "build" / "gate-production.xml").getroot()
    assert gate.find("testsuite").get("failures") == "0"  # type: ignore[union-attr]
    statement = (work / "build" / "attestation" / "attestation.dsse.json").read_bytes()
    assert json.loads(statement)["payloadType"] == "application/vnd.in-toto+json"
    card = (work / "build" / "card.html").read_text()
    assert "score card payments for fraud" in card and "alice" in card
