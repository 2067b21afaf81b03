"""Bodies a hostile client sends to a real server (uvicorn on loopback): a chunked body
that declares no length is counted as it arrives; a request without a valid token is
answered before its body is read; a body that stalls is answered 408 after the read
timeout, and stalled uploads do not keep the server from answering anyone else. Each
exchange is bounded in bytes and seconds."""

from __future__ import annotations

import contextlib
import json
import select
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from modelkeep.config import Settings
from tests.conftest import live_server

pytestmark = pytest.mark.backends("sqlite")
MiB = 1024 * 1024


@pytest.fixture
def server(settings: Settings) -> Iterator[tuple[str, int, str]]:
    with live_server(settings) as (url, token):
        parts = urlsplit(url)
        yield parts.hostname or "127.0.0.1", parts.port or 80, token


def request_head(path: str, *headers: str, method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers, "", ""]
    return "\r\n".join(lines).encode()


def status_of(sock: socket.socket) -> int:
    answer = b""
    while b"\r\n" not in answer:
        got = sock.recv(4096)
        if not got:
            break
        answer += got
    return int(answer.split(b" ", 2)[1])


def test_a_request_without_a_token_is_answered_before_its_body(
    server: tuple[str, int, str],
) -> None:
    host, port, _ = server
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            request_head("/api/v1/models", "Transfer-Encoding: chunked", "Content-Type: a/json")
        )
        started = time.monotonic()
        assert status_of(sock) == 401  # no body byte was sent
        assert time.monotonic() - started < 5


def test_a_chunked_body_over_the_limit_is_refused_as_it_arrives(
    server: tuple[str, int, str],
) -> None:
    """The body never ends (no last chunk): the answer can only come from counting."""
    host, port, token = server
    chunk = b"x" * MiB
    with socket.create_connection((host, port), timeout=20) as sock:
        sock.sendall(
            request_head(
                "/api/v1/models",
                f"Authorization: Bearer {token}",
                "Transfer-Encoding: chunked",
                "Content-Type: application/json",
            )
        )
        try:
            for _ in range(24):  # 24 MiB, past the 16 MiB limit, and never the last chunk
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        except OSError:
            pass  # the server answered and closed while the body was still coming
        assert status_of(sock) == 413


def test_a_chunked_body_under_the_limit_still_works(server: tuple[str, int, str]) -> None:
    host, port, token = server
    body = b'{"name": "chunked"}'
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(
            request_head(
                "/api/v1/models",
                f"Authorization: Bearer {token}",
                "Transfer-Encoding: chunked",
                "Content-Type: application/json",
            )
            + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        )
        assert status_of(sock) == 201


BAD_TOKEN = "Authorization: Bearer mk_not-a-token-this-server-issued"
BLOB = "/api/v1/blobs/sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/api/v1/models"), ("PUT", BLOB), ("PUT", "/api/v1/chunks")]
)
def test_a_bad_token_is_refused_before_its_body(
    server: tuple[str, int, str], method: str, path: str
) -> None:
    """A 300 MB chunked body with a token the server never issued: the 401 comes while
    the body is still being sent, after a few MiB at most (what the sockets' buffers
    hold), not after the server read it (it used to read 16 MiB of a JSON body, then
    answer 413)."""
    host, port, _ = server
    chunk = b"x" * (64 * 1024)
    frame = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    sent = 0
    with socket.create_connection((host, port), timeout=10) as sock:
        chunks = f"X-Modelkeep-Chunks: sha256:{'ab' * 32}:{300 * MiB}"  # used by /chunks
        head = request_head(path, BAD_TOKEN, "Transfer-Encoding: chunked", chunks, method=method)
        sock.sendall(head)
        deadline = time.monotonic() + 20
        while sent < 300 * MiB and time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock], [], 1)
            if readable:
                break
            if writable:
                try:
                    sent += sock.send(frame)
                except OSError:
                    break  # the server answered and closed
        assert status_of(sock) == 401
    # what the kernel's socket buffers took (about 3 MiB on loopback), not the JSON limit
    assert sent < 16 * MiB, f"{sent} bytes went out before the answer"


@pytest.fixture
def slow_server(settings: Settings) -> Iterator[tuple[str, int, str]]:
    """A server that waits 1 s for the next part of a body."""
    with live_server(settings.replace(body_timeout_seconds=1.0)) as (url, token):
        parts = urlsplit(url)
        yield parts.hostname or "127.0.0.1", parts.port or 80, token


def answer_of(sock: socket.socket) -> tuple[int, dict[str, object]]:
    """The status and JSON body of a response (read until the server closes)."""
    data = b""
    while got := sock.recv(65536):
        data += got
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


@pytest.mark.parametrize(
    ("method", "path", "before"),
    [
        ("POST", "/api/v1/models", 10),
        ("PUT", BLOB, 10),  # stalls before the upload took a thread
        ("PUT", BLOB, 2 * MiB),  # stalls while its thread stores it
    ],
)
def test_a_stalled_body_is_answered_408_after_the_read_timeout(
    slow_server: tuple[str, int, str], store_dir: Path, method: str, path: str, before: int
) -> None:
    host, port, token = slow_server
    with socket.create_connection((host, port), timeout=10) as sock:
        head = request_head(
            path, f"Authorization: Bearer {token}", f"Content-Length: {4 * MiB}", method=method
        )
        sock.sendall(head + b"x" * before)  # then nothing
        started = time.monotonic()
        status, body = answer_of(sock)  # and the server closes the connection
        waited = time.monotonic() - started
    assert status == 408
    assert body["error"]["code"] == "body_timeout"  # type: ignore[index]
    assert 0.9 < waited < 5
    assert list((store_dir / "tmp").iterdir()) == []  # nothing half-written is left


def test_stalled_uploads_do_not_freeze_the_server(server: tuple[str, int, str]) -> None:
    """50 uploads stall (the default 30 s timeout keeps them open throughout): 40 after
    10 bytes, which hold no thread, and 10 after 2 MiB (enough to start storing, which
    takes one of the upload threads). /healthz and an authenticated read still answer at
    once, and a new upload gets a thread and works."""
    host, port, token = server
    bearer = {"authorization": f"Bearer {token}"}
    with contextlib.ExitStack() as stack:
        for i in range(50):
            sock = stack.enter_context(socket.create_connection((host, port), timeout=10))
            head = request_head(
                f"/api/v1/blobs/sha256:{i:064x}",
                f"Authorization: Bearer {token}",
                f"Content-Length: {10 * MiB}",
                method="PUT",
            )
            sock.sendall(head + b"x" * (2 * MiB if i % 5 == 0 else 10))
        time.sleep(0.5)  # let the server take them all in
        with httpx.Client(base_url=f"http://{host}:{port}", timeout=5) as http:
            for path, headers in (("/healthz", {}), ("/api/v1/models", bearer)):
                started = time.monotonic()
                response = http.get(path, headers=headers)
                assert response.status_code == 200, response.text
                assert time.monotonic() - started < 2, path
            started = time.monotonic()
            hello = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
            response = http.put(f"/api/v1/blobs/{hello}", content=b"hello", headers=bearer)
            assert response.status_code == 201, response.text
            assert time.monotonic() - started < 2
