"""What the gateway serves: for each deployed model, the desired state in force and its
versions, loaded and verified. A new desired state is loaded completely (every version,
every byte verified) before it replaces the old one in a single assignment; a request
takes the snapshot in force when it starts and finishes on it, so a swap never fails or
drops a request. A state that fails to load leaves the old one serving and the model
not ready, with the reason."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from modelkeep.domain.deployments import Backend, DesiredState
from modelkeep.domain.routing import Route, route, sticky_source
from modelkeep.entrypoints.gateway.metrics import GatewayMetrics
from modelkeep.entrypoints.gateway.ports import DesiredStateSource, Predictor, PredictorLoader
from modelkeep.entrypoints.gateway.tensors import Signature, agree, outputs_of

log = logging.getLogger("modelkeep.gateway")
SHADOW_QUEUE = 1000
"""Copies waiting for the shadow: beyond this they are dropped (and counted), so a slow
shadow never slows or grows the request path."""
RETRY_LOAD_SECONDS = 30.0
"""How often a desired state that failed to load is tried again (a registry that was
briefly unreachable; a tampered file replaced from a backup)."""


INLINE_SECONDS = 0.001
"""A version whose predictions take less than this, on average, predicts on the event
loop: handing so short a prediction to a worker thread costs more than the prediction
(a small scikit-learn or ONNX model). Slower ones predict in worker threads."""


@dataclass
class Timing:
    """How long a loaded version's predictions take (a moving average)."""

    average: float | None = None

    def observe(self, seconds: float) -> None:
        self.average = seconds if self.average is None else 0.9 * self.average + 0.1 * seconds

    @property
    def inline(self) -> bool:
        return self.average is not None and self.average < INLINE_SECONDS


@dataclass(frozen=True)
class Loaded:
    backend: Backend
    predictor: Predictor
    signature: Signature
    timing: Timing = field(default_factory=Timing)


@dataclass(frozen=True)
class Snapshot:
    """One desired state, every version of it loaded: immutable, swapped whole."""

    state: DesiredState
    loaded: dict[str, Loaded]
    """By role."""

    def of(self, backend: Backend) -> Loaded:
        return self.loaded[backend.role]


@dataclass
class Deployment:
    """A model as the gateway serves it."""

    model: str
    snapshot: Snapshot | None = None
    wanted: DesiredState | None = None
    problem: str | None = None
    """Why the wanted state is not the one serving: a version of it failed to load."""
    loading: int | None = None
    """The revision being loaded now (the previous state serves meanwhile)."""

    @property
    def ready(self) -> bool:
        return self.snapshot is not None and self.problem is None


@dataclass(frozen=True)
class ShadowCopy:
    snapshot: Snapshot
    shadow: Backend
    inputs: dict[str, Any]
    answer: dict[str, Any]


@dataclass
class Gateway:
    env: str
    loader: PredictorLoader
    metrics: GatewayMetrics = field(default_factory=GatewayMetrics)
    draw: Callable[[], float] = random.random
    """The uniform random source of routing (tests inject a seeded one)."""
    shadow_queue_size: int = SHADOW_QUEUE
    retry_load_seconds: float = RETRY_LOAD_SECONDS
    deployments: dict[str, Deployment] = field(default_factory=dict)
    synced: bool = False
    """Whether a first list of desired states has been applied."""
    source: DesiredStateSource | None = None
    _cache: dict[str, Loaded] = field(default_factory=dict)
    """Loaded versions by digest, so a state that keeps a version does not reload it."""
    _queue: asyncio.Queue[ShadowCopy] | None = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _swapping: asyncio.Lock = field(default_factory=asyncio.Lock)
    """One change of states at a time: following the registry, or retrying a failure."""

    # lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        self._queue = asyncio.Queue(self.shadow_queue_size)
        self._tasks.append(asyncio.create_task(self._run_shadows()))
        self._tasks.append(asyncio.create_task(self._retry_failed_loads()))
        if self.source is not None:
            self._tasks.append(asyncio.create_task(self._follow(self.source)))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    async def _follow(self, source: DesiredStateSource) -> None:
        async for states in source.watch():
            try:
                await self.apply(states)
            except Exception:  # a bug must not stop the gateway following the registry
                log.exception("applying desired states failed")

    # desired states ----------------------------------------------------------------------

    async def _retry_failed_loads(self) -> None:
        while True:
            await asyncio.sleep(self.retry_load_seconds)
            async with self._swapping:
                for deployment in list(self.deployments.values()):
                    if deployment.problem is not None and deployment.wanted is not None:
                        await self._swap(deployment, deployment.wanted)
                self._forget_unused()

    async def apply(self, states: list[DesiredState]) -> None:
        """Serve ``states`` (every deployment of the environment): load what changed,
        then swap; models no longer listed stop being served."""
        async with self._swapping:
            await self._apply(states)

    async def _apply(self, states: list[DesiredState]) -> None:
        wanted = {s.model: s for s in states if s.env == self.env and s.backends}
        for model in [m for m in self.deployments if m not in wanted]:
            del self.deployments[model]
            self.metrics.ready.remove(model)
            self.metrics.revision.remove(model)
        for model, state in wanted.items():
            deployment = self.deployments.setdefault(model, Deployment(model))
            current = deployment.snapshot.state if deployment.snapshot else None
            if current == state:
                deployment.wanted, deployment.problem = state, None
                continue
            if deployment.wanted == state and deployment.problem is not None:
                continue  # already failed to load: retried every retry_load_seconds
            deployment.wanted = state
            await self._swap(deployment, state)
        self._forget_unused()
        self.synced = True

    async def _swap(self, deployment: Deployment, state: DesiredState) -> None:
        deployment.loading = state.revision
        try:
            await self._load_and_swap(deployment, state)
        finally:
            deployment.loading = None

    async def _load_and_swap(self, deployment: Deployment, state: DesiredState) -> None:
        loaded: dict[str, Loaded] = {}
        for backend in state.backends:
            try:
                loaded[backend.role] = await self._load(backend)
            except Exception as exc:
                deployment.problem = f"{backend.ref} ({backend.digest}) failed to load: {exc}" + (
                    " (still serving the previous state)" if deployment.snapshot else ""
                )
                self.metrics.swaps_failed.inc(deployment.model)
                self.metrics.ready.set(deployment.model, value=0)
                log.warning("%s: %s", deployment.model, deployment.problem)
                return
        deployment.snapshot = Snapshot(state, loaded)  # the swap: one assignment
        deployment.problem = None
        self.metrics.ready.set(deployment.model, value=1)
        self.metrics.revision.set(deployment.model, value=state.revision)

    async def _load(self, backend: Backend) -> Loaded:
        cached = self._cache.get(backend.digest)
        if cached is not None:
            return Loaded(backend, cached.predictor, cached.signature, cached.timing)
        predictor = await anyio.to_thread.run_sync(self.loader.load, backend.ref, backend.digest)
        loaded = Loaded(backend, predictor, Signature.of(predictor.signature))
        self._cache[backend.digest] = loaded
        return loaded

    def _forget_unused(self) -> None:
        used = {
            loaded.backend.digest
            for d in self.deployments.values()
            if d.snapshot is not None
            for loaded in d.snapshot.loaded.values()
        }
        for digest in [d for d in self._cache if d not in used]:
            del self._cache[digest]

    # readiness ---------------------------------------------------------------------------

    def not_ready_reasons(self) -> list[str]:
        reasons = []
        if not self.synced:
            problem = self.source.problem if self.source is not None else None
            reasons.append(f"no desired state read yet{f': {problem}' if problem else ''}")
        for model, deployment in sorted(self.deployments.items()):
            if deployment.problem is not None:
                reasons.append(f"{model}: {deployment.problem}")
            elif deployment.snapshot is None:
                reasons.append(f"{model}: loading revision {deployment.loading}")
        return reasons

    # requests ----------------------------------------------------------------------------

    def route(self, snapshot: Snapshot, sticky_value: str | None) -> Route:
        return route(snapshot.state, draw=self.draw(), shadow_draw=self.draw(), key=sticky_value)

    @staticmethod
    def sticky_of(snapshot: Snapshot) -> tuple[str, str] | None:
        sticky = snapshot.state.sticky
        return sticky_source(sticky) if sticky is not None else None

    async def predict(self, loaded: Loaded, inputs: dict[str, Any]) -> dict[str, Any]:
        """Every output by name: ``predict_outputs`` where the predictor has it (the
        SDK's), else what ``predict`` answers."""
        predict = getattr(loaded.predictor, "predict_outputs", None) or loaded.predictor.predict
        timing = loaded.timing

        def timed() -> Any:
            started = time.perf_counter()
            try:
                return predict(inputs)
            finally:
                timing.observe(time.perf_counter() - started)

        result = timed() if timing.inline else await anyio.to_thread.run_sync(timed)
        return outputs_of(result, loaded.signature)

    def mirror(self, copy: ShadowCopy) -> None:
        """Queue a copy for the shadow, or drop it (counted) when the queue is full."""
        if self._queue is None:
            return
        try:
            self._queue.put_nowait(copy)
        except asyncio.QueueFull:
            self.metrics.shadow_dropped.inc(copy.snapshot.state.model)

    async def _run_shadows(self) -> None:
        assert self._queue is not None
        while True:
            copy = await self._queue.get()
            try:
                await self._shadow(copy)
            finally:
                self._queue.task_done()

    async def _shadow(self, copy: ShadowCopy) -> None:
        labels = (copy.snapshot.state.model, copy.shadow.ref)
        started = time.perf_counter()
        try:
            answer = await self.predict(copy.snapshot.of(copy.shadow), copy.inputs)
        except Exception:
            self.metrics.shadow_errors.inc(*labels)
            return
        self.metrics.shadow_latency.observe(*labels, value=time.perf_counter() - started)
        self.metrics.shadow_requests.inc(*labels)
        if agree(answer, copy.answer):
            self.metrics.shadow_agreements.inc(*labels)

    @property
    def shadow_backlog(self) -> int:
        """Copies waiting for the shadow."""
        return self._queue.qsize() if self._queue is not None else 0

    async def shadows_done(self) -> None:
        """Wait until every queued copy was answered (tests, and a graceful stop)."""
        if self._queue is not None:
            await self._queue.join()
