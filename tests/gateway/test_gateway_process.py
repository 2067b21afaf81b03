"""``modelkeep gateway`` as a real process, following a registry's feed over loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CliRunnerInProcess
from tests.gateway.support import FakeFeed, backend, desired, parse_metrics, sample, v2


@contextmanager
def feed_server(feed: FakeFeed) -> Iterator[str]:
    import uvicorn

    config = uvicorn.Config(
        feed.app(), host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=1
    )  # a long poll may still be waiting
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the feed did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def call(url: str, body: Any = None) -> tuple[int, Any, str]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read(), response.headers.get("content-type", "")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), exc.headers.get("content-type", "")


@pytest.mark.slow
def test_the_gateway_process_follows_the_feed_and_says_why_it_is_not_ready(
    tmp_path: Path,
) -> None:
    feed = FakeFeed([desired(backend(4))])
    port = free_port()
    with feed_server(feed) as registry:
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(sys.path),
            "MODELKEEP_URI": registry,
            "MODELKEEP_TOKEN": "tok-live",
            "MODELKEEP_CACHE_DIR": str(tmp_path / "cache"),
        }
        command = [sys.executable, "-m", "modelkeep", "gateway", "--env", "prod"]
        process = subprocess.Popen(
            [*command, "--port", str(port)], env=env, stderr=subprocess.PIPE, cwd=tmp_path
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                assert process.poll() is None, process.stderr.read()  # type: ignore[union-attr]
                try:
                    if call(f"{base}/v2/health/live")[0] == 200:
                        break
                except OSError:
                    pass
                assert time.monotonic() < deadline, "the gateway did not start"
                time.sleep(0.05)
            deadline = time.monotonic() + 10
            while "failed" not in (reason := json.loads(call(f"{base}/v2/health/ready")[1])).get(
                "reason", ""
            ):
                assert time.monotonic() < deadline, reason  # "loading revision 1" meanwhile
                time.sleep(0.05)
            # the version cannot be loaded from this fake registry: not ready, and why
            assert reason["ready"] is False
            assert reason["reason"].startswith("fraud: fraud@4 (sha256:")
            assert "failed to load" in reason["reason"]
            status, body, _ = call(f"{base}/v2/models/fraud/infer", v2([1.0]))
            assert status == 503
            assert json.loads(body)["error"]["code"] == "model_not_ready"
            status, text, content_type = call(f"{base}/metrics")
            assert content_type.startswith("text/plain; version=0.0.4")
            samples = parse_metrics(text.decode())
            assert sample(samples, "modelkeep_gateway_load_failures_total", model="fraud") == 1
            assert sample(samples, "modelkeep_gateway_registry_reachable") == 1
        finally:
            process.terminate()
            _, err = process.communicate(timeout=10)
    assert "Bearer tok-live" in feed.seen_auth
    assert "modelkeep gateway for prod on http://127.0.0.1" in err.decode()


@pytest.mark.parametrize(
    ("args", "code", "said"),
    [
        (["--uri", "store", "gateway", "--env", "prod"], "invalid_input", "from a server"),
        (["--uri", "http://127.0.0.1:9", "gateway", "--env", "Prod!"], "invalid_input",
         "'Prod!' is not an environment name"),
        (["gateway"], "usage", "Missing option '--env'"),
    ],
)  # fmt: skip
def test_gateway_refuses_what_it_cannot_serve(
    args: list[str], code: str, said: str, capsys: pytest.CaptureFixture[str], tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    result = CliRunnerInProcess(capsys)(*args)
    assert result.code == (2 if code == "usage" else 1), result
    assert result.err.startswith(f"error[{code}]: ") and said in result.err, result.err
    assert list(tmp_path.iterdir()) == []  # no store made
