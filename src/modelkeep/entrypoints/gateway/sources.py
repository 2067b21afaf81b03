"""Where the gateway learns its desired states: the registry's HTTP feed (long-polled
with an ETag, so a change arrives within a second), or a list in memory (tests)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx

from modelkeep.domain.deployments import DesiredState
from modelkeep.errors import InvalidInput

log = logging.getLogger("modelkeep.gateway")
FEED = "/api/v1/deployments"
WAIT_SECONDS = 25
"""How long one long-poll waits for a change (the server holds it at most 30)."""
POLL_SECONDS = 1.0
"""The least time between two polls: against a registry that answers at once instead of
holding the request, the gateway still polls (with its ETag) once a second."""
RETRY_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
"""Pauses between failed attempts, growing to the last and staying there."""


class MemoryDesiredStateSource:
    """Desired states set in process: ``publish`` a new list, and ``watch`` yields it."""

    def __init__(self, states: list[DesiredState] | None = None) -> None:
        self.problem: str | None = None
        self._states = list(states or [])
        self._version = 0
        self._changed = asyncio.Condition()

    async def publish(self, states: list[DesiredState]) -> None:
        async with self._changed:
            self._states = list(states)
            self._version += 1
            self._changed.notify_all()

    async def watch(self) -> AsyncIterator[list[DesiredState]]:
        seen = self._version
        yield list(self._states)
        while True:
            async with self._changed:
                while self._version == seen:
                    await self._changed.wait()
                seen = self._version
                states = list(self._states)
            yield states


class HttpDesiredStateSource:
    """``GET /api/v1/deployments?env=ENV`` on the registry, then long-polls with
    ``If-None-Match`` and ``?wait=``: a 200 is a new list, a 304 means unchanged. While
    the registry cannot be reached, ``problem`` says so and the gateway keeps serving
    what it has verified."""

    def __init__(
        self,
        uri: str,
        env: str,
        token: str | None = None,
        *,
        wait_seconds: float = WAIT_SECONDS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if not uri.startswith(("http://", "https://")):
            raise InvalidInput(
                f"the gateway reads desired states from a server, not {uri!r}",
                "set MODELKEEP_URI (or --uri) to the http(s):// URL of 'modelkeep server'",
            )
        self.problem: str | None = None
        self.env = env
        self.wait_seconds = wait_seconds
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._client = httpx.AsyncClient(
            base_url=uri.rstrip("/"),
            headers=headers,
            transport=transport,
            timeout=httpx.Timeout(10.0, read=wait_seconds + 10.0),
        )

    async def watch(self) -> AsyncIterator[list[DesiredState]]:
        etag: str | None = None
        failures = 0
        try:
            while True:
                started = time.monotonic()
                try:
                    states, etag = await self._poll(etag)
                except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                    self.problem = f"the registry's desired-state feed failed: {_reason(exc)}"
                    log.warning("%s", self.problem)
                    await asyncio.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
                    failures += 1
                    continue
                failures, self.problem = 0, None
                if states is not None:
                    yield states
                else:  # unchanged: never poll faster than once a second
                    await asyncio.sleep(max(0.0, POLL_SECONDS - (time.monotonic() - started)))
        finally:
            await self._client.aclose()

    async def _poll(self, etag: str | None) -> tuple[list[DesiredState] | None, str | None]:
        params: dict[str, Any] = {"env": self.env}
        headers = {}
        if etag is not None:
            params["wait"] = f"{self.wait_seconds:g}"
            headers["If-None-Match"] = etag
        response = await self._client.get(FEED, params=params, headers=headers)
        if response.status_code == 304:
            return None, etag
        response.raise_for_status()
        document = response.json()
        new_etag = response.headers.get("etag") or document.get("etag")
        if etag is not None and new_etag == etag:
            return None, etag  # a registry that does not long-poll: unchanged
        states = [DesiredState.from_dict(d) for d in document["deployments"]]
        return states, new_etag


def _reason(exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        try:
            return str(exc.response.json()["error"]["message"])
        except (ValueError, KeyError, TypeError):
            return f"HTTP {exc.response.status_code}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
