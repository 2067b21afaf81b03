"""Fakes for the gateway's ports, and a client that calls its app in process."""

from __future__ import annotations

import asyncio
import functools
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from modelkeep.domain.deployments import Backend, DesiredState
from modelkeep.entrypoints.gateway.app import create_app
from modelkeep.entrypoints.gateway.serving import Gateway
from modelkeep.entrypoints.gateway.sources import MemoryDesiredStateSource
from modelkeep.errors import DigestMismatch

TABULAR = {
    "inputs": [
        {"name": "amount", "datatype": "FP64", "shape": [-1]},
        {"name": "country", "datatype": "BYTES", "shape": [-1]},
    ],
    "outputs": [{"name": "score", "datatype": "FP64", "shape": [-1]}],
}


def digest(n: int) -> str:
    return "sha256:" + f"{n:02d}" * 32


def backend(n: int, role: str = "stable", weight: int = 100) -> Backend:
    return Backend(f"fraud@{n}", digest(n), role, weight)  # type: ignore[arg-type]


def desired(*backends: Backend, revision: int = 1, sticky: str | None = None) -> DesiredState:
    return DesiredState("fraud", "prod", revision, tuple(backends), sticky)


@dataclass
class FakePredictor:
    """Scores ``amount * number`` (the version's number), so an answer says which
    version computed it; ``delay`` keeps requests in flight."""

    number: int
    signature: Any = field(default_factory=lambda: TABULAR)
    delay: float = 0.0
    gate: threading.Event | None = None
    fails_on: float | None = None

    def predict(self, inputs: Any) -> Any:
        if self.gate is not None:
            self.gate.wait(10)
        if self.delay:
            time.sleep(self.delay)
        if self.fails_on is not None and self.fails_on in inputs["amount"]:
            raise ValueError("cannot score this amount")
        return {"score": [a * self.number for a in inputs["amount"]]}


@dataclass
class FakeLoader:
    """Loads ``FakePredictor(number)`` for ``digest(number)``; a digest in ``tampered``
    fails as a tampered file would."""

    predictors: dict[str, FakePredictor] = field(default_factory=dict)
    tampered: set[str] = field(default_factory=set)
    loads: list[str] = field(default_factory=list)
    gates: dict[str, threading.Event] = field(default_factory=dict)
    """Loads of these digests wait for their event (a large version downloading)."""

    def load(self, ref: str, digest_: str) -> FakePredictor:
        self.loads.append(ref)
        if digest_ in self.gates:
            self.gates[digest_].wait(10)
        if digest_ in self.tampered:
            raise DigestMismatch(f"model.onnx of {ref} does not match its digest")
        if digest_ not in self.predictors:
            self.predictors[digest_] = FakePredictor(int(ref.partition("@")[2]))
        return self.predictors[digest_]


def draws(*values: float) -> Callable[[], float]:
    """A random source that gives ``values`` in turn, forever."""
    state = {"i": 0}

    def draw() -> float:
        value = values[state["i"] % len(values)]
        state["i"] += 1
        return value

    return draw


@asynccontextmanager
async def serving(gateway: Gateway, **app_options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The gateway's app, started, and a client calling it in process."""
    app = create_app(gateway, **app_options)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


async def until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def memory_gateway(
    states: list[DesiredState], loader: FakeLoader | None = None, **options: Any
) -> tuple[Gateway, MemoryDesiredStateSource, FakeLoader]:
    loader = loader or FakeLoader()
    source = MemoryDesiredStateSource(states)
    return Gateway("prod", loader, source=source, **options), source, loader


def v2(amounts: list[float], countries: list[str] | None = None) -> dict[str, Any]:
    countries = countries or ["fr"] * len(amounts)
    return {
        "id": "req-1",
        "inputs": [
            {"name": "amount", "shape": [len(amounts)], "datatype": "FP64", "data": amounts},
            {"name": "country", "shape": [len(countries)], "datatype": "BYTES", "data": countries},
        ],
    }


SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r"(?:\{(?P<labels>(?:[a-zA-Z_][a-zA-Z0-9_]*=\"(?:[^\"\\\n]|\\[\\n\"])*\",?)*)\})?"
    r" (?P<value>[-+]?(?:\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|Inf|NaN))$"
)
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\n"])*)"')


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Samples of the Prometheus text format, each line checked against its grammar:
    every sample belongs to a family declared by HELP and TYPE before it."""
    assert text.endswith("\n")
    declared: dict[str, str] = {}
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in {"counter", "gauge", "histogram"}, line
            assert name not in declared, f"{name} declared twice"
            declared[name] = kind
            continue
        found = SAMPLE.match(line)
        assert found, f"not a sample line: {line!r}"
        name = found["name"]
        family = re.sub(r"_(bucket|sum|count)$", "", name)
        assert name in declared or declared.get(family) == "histogram", line
        labels = frozenset(LABEL.findall(found["labels"] or ""))
        assert (name, labels) not in samples, f"duplicate sample {line}"
        samples[name, labels] = float(found["value"].replace("Inf", "inf"))
    return samples


def sample(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def run(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """An async test run on its own event loop."""

    @functools.wraps(test)
    def sync(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return sync


class FakeFeed:
    """The registry's desired-state feed as COMMON13 / docs/serving.md describe it:
    ``GET /api/v1/deployments?env=ENV`` with an ETag; with ``If-None-Match`` and
    ``?wait=`` it holds the request until the states change (200) or the wait ends (304)."""

    def __init__(self, states: list[DesiredState] | None = None, env: str = "prod") -> None:
        self.env = env
        self.states = list(states or [])
        self.version = 1
        self.down = False
        self.seen_auth: list[str | None] = []
        self.polls = 0
        self.long_poll = True
        """False: a registry that ignores If-None-Match and answers at once."""
        self._changed: asyncio.Event | None = None

    def publish(self, states: list[DesiredState]) -> None:
        self.states, self.version = list(states), self.version + 1
        if self._changed is not None:
            self._changed.set()

    def app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route

        async def deployments(request: Request) -> Response:
            self.polls += 1
            self.seen_auth.append(request.headers.get("authorization"))
            if self.down:
                error = {
                    "code": "store_unavailable",
                    "message": "the database is down",
                    "hint": "-",
                }
                return JSONResponse({"error": error}, status_code=503)
            etag = f'"{self.version}"'
            if self.long_poll and request.headers.get("if-none-match") == etag:
                self._changed = asyncio.Event()
                wait = min(float(request.query_params.get("wait", "0")), 30)
                try:
                    await asyncio.wait_for(self._changed.wait(), wait)
                except TimeoutError:
                    return Response(status_code=304, headers={"ETag": etag})
                etag = f'"{self.version}"'
            states = [s.to_dict() for s in self.states if s.env == request.query_params["env"]]
            body = {"env": request.query_params["env"], "etag": etag, "deployments": states}
            return JSONResponse(body, headers={"ETag": etag})

        return Starlette(routes=[Route("/api/v1/deployments", deployments)])
