"""The gateway follows the registry's desired-state feed (long-poll with an ETag): a
change is served within a second; a registry that cannot be reached is said, and what was
verified keeps serving."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from modelkeep.entrypoints.gateway import sources
from modelkeep.entrypoints.gateway.serving import Gateway
from modelkeep.entrypoints.gateway.sources import HttpDesiredStateSource
from modelkeep.errors import InvalidInput
from tests.gateway.support import (
    FakeFeed,
    FakeLoader,
    backend,
    desired,
    parse_metrics,
    run,
    sample,
    serving,
    until,
    v2,
)


def http_gateway(feed: FakeFeed, wait: float = 5.0) -> tuple[Gateway, HttpDesiredStateSource]:
    transport = httpx.ASGITransport(app=feed.app())
    source = HttpDesiredStateSource(
        "http://registry:8080", "prod", "tok-1", wait_seconds=wait, transport=transport
    )
    return Gateway("prod", FakeLoader(), source=source), source


def revision(gateway: Gateway) -> int | None:
    deployment = gateway.deployments.get("fraud")
    return deployment.snapshot.state.revision if deployment and deployment.snapshot else None


@run
async def test_a_change_is_served_within_a_second_through_the_long_poll() -> None:
    feed = FakeFeed([desired(backend(4))])
    gateway, _ = http_gateway(feed, wait=20)
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        await asyncio.sleep(0.05)  # the gateway now waits in a long poll
        polls = feed.polls
        feed.publish([desired(backend(5), revision=2)])
        changed = time.monotonic()
        await until(lambda: revision(gateway) == 2, seconds=1.0)
        assert time.monotonic() - changed < 1.0
        assert feed.polls <= polls + 1  # answered by the waiting poll, then the next one
        response = await client.post("/v2/models/fraud/infer", json=v2([1.0]))
        assert response.headers["modelkeep-version"] == "fraud@5"
    assert set(feed.seen_auth) == {"Bearer tok-1"}


@run
async def test_an_unchanged_feed_answers_304_and_nothing_reloads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sources, "POLL_SECONDS", 0.001)
    feed = FakeFeed([desired(backend(4))])
    gateway, _ = http_gateway(feed, wait=0.02)
    async with serving(gateway):
        await until(lambda: gateway.synced)
        await until(lambda: feed.polls >= 5)
        assert gateway.loader.loads == ["fraud@4"]  # type: ignore[attr-defined]


@run
async def test_a_registry_that_does_not_long_poll_is_polled_once_a_second() -> None:
    feed = FakeFeed([desired(backend(4))])
    feed.long_poll = False
    gateway, _ = http_gateway(feed, wait=20)
    async with serving(gateway):
        await until(lambda: gateway.synced)
        polls = feed.polls
        await asyncio.sleep(1.5)
        assert feed.polls - polls <= 2
        feed.publish([desired(backend(5), revision=2)])
        await until(lambda: revision(gateway) == 2, seconds=1.5)
        assert gateway.loader.loads == ["fraud@4", "fraud@5"]  # type: ignore[attr-defined]


@run
async def test_an_unreachable_registry_is_said_and_what_was_verified_keeps_serving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sources, "RETRY_SECONDS", (0.01,))
    feed = FakeFeed([desired(backend(4))])
    feed.down = True
    gateway, source = http_gateway(feed, wait=0.02)
    async with serving(gateway) as client:
        await until(lambda: source.problem is not None)
        before = await client.get("/v2/health/ready")
        assert before.status_code == 503
        assert before.json()["reason"] == (
            "no desired state read yet: the registry's desired-state feed failed: "
            "the database is down"
        )
        feed.down = False
        await until(lambda: gateway.synced)
        feed.down = True
        await until(lambda: source.problem is not None)
        ready = await client.get("/v2/health/ready")
        assert ready.status_code == 200
        assert ready.json() == {
            "ready": True,
            "reason": "the registry's desired-state feed failed: the database is down; "
            "serving the last verified desired states",
        }
        response = await client.post("/v2/models/fraud/infer", json=v2([1.0]))
        assert response.status_code == 200
        samples = parse_metrics((await client.get("/metrics")).text)
        assert sample(samples, "modelkeep_gateway_registry_reachable") == 0
        feed.down = False
        await until(lambda: source.problem is None)


def test_the_feed_must_be_a_server() -> None:
    with pytest.raises(InvalidInput, match="reads desired states from a server"):
        HttpDesiredStateSource(".modelkeep", "prod")
