"""The CI workflow of docs/ci.md, run exactly as written, against a live server: its setup
once, then its build script twice on the same store (a re-run must pass)."""

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


def script(marker: str) -> str:
    """The bash block of docs/ci.md marked ``<!-- marker -->``."""
    text = (ROOT / "docs" / "ci.md").read_text()
    blocks = re.findall(rf"<!-- {marker} -->\n```bash\n(.*?)```", text, re.S)
    assert len(blocks) == 1, f"docs/ci.md holds one bash block marked {marker}"
    return str(blocks[0])


def run_bash(source: str, work: Path, env: dict[str, str]) -> None:
    done = subprocess.run(
        ["bash", "-c", source], cwd=work, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_documented_ci_workflow_runs_end_to_end(settings: Settings, tmp_path: Path) -> None:
    with live_server(settings) as (url, admin_token):
        work = tmp_path / "work"
        (work / "examples").mkdir(parents=True)
        (work / "examples" / "ci").symlink_to(ROOT / "examples" / "ci")
        (work / "examples" / "policy.yaml").symlink_to(ROOT / "examples" / "policy.yaml")
        env = {
            **os.environ,
            "MODELKEEP_URI": url,
            "MODELKEEP_TOKEN": admin_token,
            "GIT_COMMIT": "0123456789abcdef0123456789abcdef01234567",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "MODELKEEP_CACHE_DIR": "off",
        }
        # the setup hands the three tokens on, as a CI system's secrets would
        keep = "declare -p CI_TOKEN APPROVER_TOKEN RELEASER_TOKEN > tokens.sh"
        run_bash(script("ci-setup") + "\n" + keep, work, env)
        env.pop("MODELKEEP_TOKEN")
        for _ in range(2):  # the same build again on the same store passes as well
            run_bash("source tokens.sh\n" + script("ci-workflow"), work, env)
        with modelkeep.connect(url, token=admin_token) as admin:
            production = admin.resolve("fraud@production")
            attestations = admin.attestations(f"fraud@{production.number}")
            approvals = admin.approvals(f"fraud@{production.number}")
            events = [e.action for e in admin.audit_log(model="fraud")]
            datasets = admin.dataset_versions("transactions")
    assert [a.stage for a in attestations] == ["staging", "production"]
    assert [(a.user, a.decision) for a in approvals] == [("alice", "approve")]
    assert "approval.approve" in events and "check.record" in events
    assert [d.number for d in datasets] == [1], "the re-run reused the dataset version"
    gate = ElementTree.parse(work / "build" / "gate-production.xml").getroot()
    assert gate.find("testsuite").get("failures") == "0"  # type: ignore[union-attr]
    statement = (work / "build" / "attestation" / "attestation.dsse.json").read_bytes()
    assert json.loads(statement)["payloadType"] == "application/vnd.in-toto+json"
    card = (work / "build" / "card.html").read_text()
    assert "score card payments for fraud" in card and "alice" in card
