"""From a pushed scikit-learn model to traffic, with every real piece: a registry server,
the deployments feed, ``modelkeep gateway`` as its own process loading versions with
``mk.load``, and a canary moved by ``modelkeep deploy`` (SQLite and PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

import modelkeep
from modelkeep.config import Settings
from tests.conftest import live_server
from tests.gateway.test_gateway_process import free_port

pytestmark = [pytest.mark.slow, pytest.mark.backends("sqlite", "postgresql")]


def skops_model(folder: Path, flip: bool) -> Path:
    """A classifier on named columns; ``flip`` learns the opposite labels."""
    import pandas as pd
    import skops.io as sio
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"amount": [10.0, 900.0, 15.0, 1200.0], "hour": [14.0, 3.0, 11.0, 2.0]})
    labels = [1, 0, 1, 0] if flip else [0, 1, 0, 1]
    folder.mkdir(parents=True)
    sio.dump(LogisticRegression().fit(frame, labels), folder / "model.skops")
    return folder


@contextmanager
def gateway(registry: str, token: str, cache: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "MODELKEEP_URI": registry,
        "MODELKEEP_TOKEN": token,
        "MODELKEEP_CACHE_DIR": str(cache),
    }
    command = [sys.executable, "-m", "modelkeep", "gateway", "--env", "prod", "--port", str(port)]
    log = cache.parent / "gateway.log"
    with open(log, "wb") as errors:
        process = subprocess.Popen(command, env=env, stderr=errors, cwd=cache.parent)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=10)


def wait_until(check: object, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError("the gateway did not get there in time")


INFER = {
    "inputs": [
        {"name": "amount", "shape": [1], "datatype": "FP64", "data": [1000.0]},
        {"name": "hour", "shape": [1], "datatype": "FP64", "data": [4.0]},
    ]
}


def test_a_pushed_model_is_served_then_canaried_by_the_registrys_desired_state(
    settings: Settings, tmp_path: Path
) -> None:
    with live_server(settings) as (registry, token), ExitStack() as stack:
        mk = stack.enter_context(modelkeep.connect(registry, token=token))
        mk.create_model("fraud")
        first = mk.push("fraud", [skops_model(tmp_path / "v1", flip=False)])
        second = mk.push("fraud", [skops_model(tmp_path / "v2", flip=True)])
        mk.deploy(first.ref, env="prod", reason="first release")
        with gateway(registry, token, tmp_path / "cache") as served:
            http = stack.enter_context(httpx.Client(base_url=served, timeout=10))
            wait_until(lambda: http.get("/v2/models/fraud/ready").status_code == 200)
            answer = http.post("/v2/models/fraud/infer", json=INFER)
            assert answer.status_code == 200, answer.text
            assert answer.headers["modelkeep-version"] == "fraud@1"
            assert answer.headers["modelkeep-digest"] == first.digest
            assert answer.json()["outputs"][0]["data"] == [1]  # v1: large and late is fraud
            wrong = http.post("/v2/models/fraud/infer", json={"inputs": [INFER["inputs"][0]]})
            assert wrong.status_code == 422, wrong.text
            assert wrong.json()["error"]["code"] == "invalid_inference_input"

            mk.deploy(second.ref, env="prod", canary=50, reason="try the flipped one")
            wait_until(
                lambda: (
                    http.post("/v2/models/fraud/infer", json=INFER).headers["modelkeep-version"]
                    == "fraud@2"
                ),
            )
            served_by: Counter[str] = Counter()
            for _ in range(200):
                reply = http.post("/v2/models/fraud/infer", json=INFER)
                assert reply.status_code == 200, reply.text
                version = reply.headers["modelkeep-version"]
                served_by[version] += 1
                expected = [1] if version == "fraud@1" else [0]
                assert reply.json()["outputs"][0]["data"] == expected
            assert 60 <= served_by["fraud@2"] <= 140, served_by  # 50% of 200, within ~5.6 sd

            mk.rollback_deployment("fraud", env="prod", reason="back")
            wait_until(
                lambda: all(
                    http.post("/v2/models/fraud/infer", json=INFER).headers["modelkeep-version"]
                    == "fraud@1"
                    for _ in range(20)
                )
            )
            metrics = http.get("/metrics").text
            assert 'version="fraud@2"' in metrics
        history = [change.to_dict() for change in mk.deployment_history("fraud", env="prod")]
        assert sorted(change["action"] for change in history) == ["deploy", "deploy", "rollback"]
