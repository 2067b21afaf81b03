"""Bodies a hostile client sends to a real server (uvicorn on loopback): a chunked body
that declares no length is counted as it arrives, and a request without a token is
answered before its body is read. Each exchange is bounded in bytes and seconds."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

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


def request_head(path: str, *headers: str) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *headers, "", ""]
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
