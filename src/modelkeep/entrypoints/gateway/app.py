"""The gateway's HTTP surface: the Open Inference Protocol V2, MLflow's scoring format on
``/invocations``, and Prometheus metrics. Plain Starlette routes, kept lean for
throughput; every error in the one JSON shape ``{"error": {"code", "message", "hint"}}``."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from modelkeep.domain.routing import Route as RouteChoice
from modelkeep.entrypoints.gateway import tensors
from modelkeep.entrypoints.gateway.metrics import CONTENT_TYPE
from modelkeep.entrypoints.gateway.serving import Gateway, Loaded, ShadowCopy, Snapshot
from modelkeep.errors import (
    InvalidInput,
    ModelkeepError,
    ModelNotFound,
    ModelNotReady,
    PredictionFailed,
    VersionNotFound,
)

MAX_BODY_BYTES = 8 * 1024 * 1024
MODEL_HEADER = "modelkeep-model"
Parse = Callable[[Any, tensors.Signature], dict[str, Any]]


def error(exc: ModelkeepError, status: int | None = None) -> JSONResponse:
    return JSONResponse({"error": exc.to_dict()}, status_code=status or exc.http_status)


def create_app(gateway: Gateway, *, max_body_bytes: int = MAX_BODY_BYTES) -> Starlette:
    """The ASGI app over ``gateway``; its lifespan starts and stops the gateway's tasks
    (following the desired states, running the shadow copies)."""

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    app = Starlette(
        routes=[
            Route("/v2/health/live", live),
            Route("/v2/health/ready", ready),
            Route("/v2/models/{model}/ready", model_ready),
            Route("/v2/models/{model}", model_metadata),
            Route("/v2/models/{model}/infer", v2_infer, methods=["POST"]),
            Route("/v2/models/{model}/versions/{version}/infer", v2_infer, methods=["POST"]),
            Route("/invocations", invocations, methods=["POST"]),
            Route("/metrics", metrics),
        ],
        exception_handlers={ModelkeepError: _on_error, 404: _not_found},
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    app.state.max_body_bytes = max_body_bytes
    return app


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


async def live(_request: Request) -> Response:
    return JSONResponse({"live": True})


async def ready(request: Request) -> Response:
    """200 when every deployed model serves its desired state; 503 with the reasons when
    not. A registry that cannot be reached after the first desired state does not make
    the gateway unready (it serves what it verified), but the reason says so."""
    gateway = _gateway(request)
    reasons = gateway.not_ready_reasons()
    body: dict[str, Any] = {"ready": not reasons}
    problem = gateway.source.problem if gateway.source is not None else None
    notes = [*reasons]
    if problem and gateway.synced:
        notes.append(f"{problem}; serving the last verified desired states")
    if notes:
        body["reason"] = "; ".join(notes)
    return JSONResponse(body, status_code=200 if not reasons else 503)


async def model_ready(request: Request) -> Response:
    deployment = _deployment(_gateway(request), request.path_params["model"])
    body: dict[str, Any] = {"name": deployment.model, "ready": deployment.ready}
    if deployment.problem is not None:
        body["reason"] = deployment.problem
    elif deployment.snapshot is None:
        body["reason"] = f"loading revision {deployment.loading}"
    return JSONResponse(body, status_code=200 if deployment.ready else 503)


async def model_metadata(request: Request) -> Response:
    snapshot = _snapshot(_gateway(request), request.path_params["model"])
    return JSONResponse(
        {
            "name": snapshot.state.model,
            "versions": [b.ref for b in snapshot.state.backends],
            "platform": "modelkeep",
            **snapshot.loaded["stable"].signature.to_dict(),
        }
    )


async def v2_infer(request: Request) -> Response:
    model = request.path_params["model"]
    return await _infer(request, model, tensors.v2_inputs, v2=True)


async def invocations(request: Request) -> Response:
    """MLflow's scoring format. The model: the ``modelkeep-model`` header, else the
    ``model`` query parameter, else the one model the gateway serves."""
    model = request.headers.get(MODEL_HEADER) or request.query_params.get("model")
    if model is None:
        served = sorted(_gateway(request).deployments)
        if len(served) != 1:
            raise InvalidInput(
                f"this gateway serves {len(served)} models: {served}; name one",
                f"send a '{MODEL_HEADER}' header or a ?model= query",
            )
        model = served[0]
    return await _infer(request, model, tensors.mlflow_inputs, v2=False)


async def metrics(request: Request) -> Response:
    gateway = _gateway(request)
    unreachable = gateway.source is not None and gateway.source.problem is not None
    gateway.metrics.registry_reachable.set(value=0 if unreachable else 1)
    return Response(gateway.metrics.render(), media_type=CONTENT_TYPE)


async def _on_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ModelkeepError)
    return error(exc)


async def _not_found(_request: Request, _exc: Exception) -> Response:
    return error(InvalidInput("no such endpoint", "see docs/serving.md"), 404)


def _deployment(gateway: Gateway, model: str) -> Any:
    deployment = gateway.deployments.get(model)
    if deployment is None:
        raise ModelNotFound(
            f"no model {model!r} is deployed to {gateway.env}",
            f"deployed: {', '.join(sorted(gateway.deployments)) or 'none'}",
        )
    return deployment


def _snapshot(gateway: Gateway, model: str) -> Snapshot:
    deployment = _deployment(gateway, model)
    if deployment.snapshot is None:
        why = deployment.problem or f"loading revision {deployment.loading}"
        raise ModelNotReady(f"{model} has no verified version to serve: {why}")
    snapshot: Snapshot = deployment.snapshot
    return snapshot


async def _body(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    too_large = InvalidInput(f"the request body is over {limit} bytes", "send fewer rows")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _Status(too_large, 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Status(too_large, 413)
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except ValueError as exc:
        raise InvalidInput(f"the body is not JSON: {exc}", "send a JSON document") from exc
    except RecursionError as exc:
        raise InvalidInput(
            "the body nests too deeply", "send arrays of at most 16 dimensions"
        ) from exc


class _Status(Exception):
    def __init__(self, exc: ModelkeepError, status: int) -> None:
        self.exc, self.status = exc, status


def _sticky_value(request: Request, where: str, name: str) -> str | None:
    if where == "header":
        return request.headers.get(name)
    if where == "cookie":
        return request.cookies.get(name)
    return request.query_params.get(name)


def _pinned(snapshot: Snapshot, version: str) -> RouteChoice:
    """The route to one version of the desired state, named by number (any role)."""
    for backend in snapshot.state.backends:
        if backend.ref.rpartition("@")[2] == version:
            return RouteChoice(backend, None, None)
    served = ", ".join(b.ref for b in snapshot.state.backends)
    raise VersionNotFound(
        f"{snapshot.state.model}@{version} is not deployed to {snapshot.state.env}",
        f"it serves {served}",
    )


async def _infer(request: Request, model: str, parse: Parse, *, v2: bool) -> Response:
    gateway = _gateway(request)
    snapshot = _snapshot(gateway, model)  # the state this request finishes on, swap or not
    version = request.path_params.get("version")
    if version is not None:
        chosen = _pinned(snapshot, version)
    else:
        sticky = gateway.sticky_of(snapshot)
        chosen = gateway.route(snapshot, _sticky_value(request, *sticky) if sticky else None)
    loaded = snapshot.of(chosen.serve)
    labels = (model, chosen.serve.ref, chosen.serve.role)
    started = time.perf_counter()
    try:
        body = await _body(request, request.app.state.max_body_bytes)
        inputs = parse(body, loaded.signature)
    except _Status as refused:
        gateway.metrics.rejected.inc(model, refused.exc.code)
        return error(refused.exc, refused.status)
    except ModelkeepError as exc:
        gateway.metrics.rejected.inc(model, exc.code)
        return _served(error(exc), loaded, chosen.assignment)
    try:
        outputs = await gateway.predict(loaded, inputs)
        answer = _v2_body(model, loaded, outputs, body) if v2 else tensors.mlflow_outputs(outputs)
        response = JSONResponse(answer)  # refuses NaN and infinities, which JSON lacks
    except InvalidInput as exc:  # the predictor's own, stricter, check of its inputs
        gateway.metrics.rejected.inc(model, exc.code)
        return _served(error(exc), loaded, chosen.assignment)
    except Exception as exc:
        gateway.metrics.errors.inc(*labels)
        if isinstance(exc, PredictionFailed):
            return _served(error(exc), loaded, chosen.assignment)
        failed = PredictionFailed(
            f"{chosen.serve.ref} failed to predict: {type(exc).__name__}: {exc}"
        )
        return _served(error(failed), loaded, chosen.assignment)
    gateway.metrics.requests.inc(*labels)
    gateway.metrics.latency.observe(*labels, value=time.perf_counter() - started)
    if chosen.mirror is not None:
        gateway.mirror(ShadowCopy(snapshot, chosen.mirror, inputs, outputs))
    return _served(response, loaded, chosen.assignment)


def _v2_body(model: str, loaded: Loaded, outputs: dict[str, Any], body: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "model_name": model,
        "model_version": loaded.backend.ref.rpartition("@")[2],
        "outputs": tensors.v2_outputs(outputs, loaded.signature),
    }
    if "id" in body:  # V2: the response carries the request's id
        answer["id"] = body["id"]
    return answer


def _served(response: Response, loaded: Loaded, assignment: str | None) -> Response:
    response.headers["modelkeep-version"] = loaded.backend.ref
    response.headers["modelkeep-digest"] = loaded.backend.digest
    if assignment is not None:
        response.headers["modelkeep-assignment"] = assignment
    return response
