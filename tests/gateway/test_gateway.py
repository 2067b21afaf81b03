"""The gateway's app in process, with fake predictors and desired states: every route and
header, bad input, swaps under concurrent load, the shadow, metrics."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from modelkeep.domain.deployments import DesiredState
from modelkeep.entrypoints.gateway.metrics import CONTENT_TYPE
from modelkeep.entrypoints.gateway.serving import Gateway
from modelkeep.errors import InvalidInferenceInput, PredictionFailed
from tests.gateway.support import (
    FakeLoader,
    FakePredictor,
    backend,
    desired,
    digest,
    draws,
    memory_gateway,
    parse_metrics,
    run,
    sample,
    serving,
    until,
    v2,
)


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "hint"} <= set(body["error"]), body
    error: dict[str, Any] = body["error"]
    return error


async def started(states: list[Any], **options: Any) -> Gateway:
    gateway, _, _ = memory_gateway(states, **options)
    return gateway


# health and metadata ------------------------------------------------------------------------


@run
async def test_live_ready_and_model_ready() -> None:
    gateway, _, _ = memory_gateway([desired(backend(4))])
    async with serving(gateway) as client:
        assert (await client.get("/v2/health/live")).json() == {"live": True}
        await until(lambda: gateway.synced)
        ready = await client.get("/v2/health/ready")
        assert (ready.status_code, ready.json()) == (200, {"ready": True})
        model = await client.get("/v2/models/fraud/ready")
        assert (model.status_code, model.json()) == (200, {"name": "fraud", "ready": True})


@run
async def test_not_ready_before_the_first_desired_state_says_why() -> None:
    gateway = Gateway("prod", FakeLoader())  # no source: never synced
    async with serving(gateway) as client:
        ready = await client.get("/v2/health/ready")
        assert ready.status_code == 503
        assert ready.json() == {"ready": False, "reason": "no desired state read yet"}


@run
async def test_model_metadata_lists_the_signature_and_versions() -> None:
    gateway, _, _ = memory_gateway([desired(backend(4), backend(5, "canary", 10))])
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        meta = (await client.get("/v2/models/fraud")).json()
        assert meta["name"] == "fraud"
        assert meta["versions"] == ["fraud@4", "fraud@5"]
        assert [i["name"] for i in meta["inputs"]] == ["amount", "country"]
        assert meta["outputs"] == [{"name": "score", "datatype": "FP64", "shape": [-1]}]


@run
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/models/churn/ready"),
        ("GET", "/v2/models/churn"),
        ("POST", "/v2/models/churn/infer"),
    ],
)
async def test_an_unknown_model_is_404_naming_the_deployed_ones(method: str, path: str) -> None:
    gateway, _, _ = memory_gateway([desired(backend(4))])
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        response = await client.request(method, path, json=v2([1.0]))
        assert response.status_code == 404
        error = error_of(response)
        assert error["code"] == "model_not_found"
        assert "churn" in error["message"] and "fraud" in error["hint"]


@run
async def test_an_unknown_endpoint_is_404_in_the_error_shape() -> None:
    async with serving(await started([])) as client:
        response = await client.get("/v1/models")
        assert response.status_code == 404
        assert error_of(response)["code"] == "invalid_input"


# V2 inference -------------------------------------------------------------------------------


@run
async def test_v2_infer_answers_with_outputs_and_names_what_served_it() -> None:
    gateway, _, _ = memory_gateway([desired(backend(4))])
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        response = await client.post("/v2/models/fraud/infer", json=v2([1.5, 2.0]))
        assert response.status_code == 200, response.text
        assert response.json() == {
            "model_name": "fraud",
            "model_version": "4",
            "id": "req-1",
            "outputs": [{"name": "score", "shape": [2], "datatype": "FP64", "data": [6.0, 8.0]}],
        }
        assert response.headers["modelkeep-version"] == "fraud@4"
        assert response.headers["modelkeep-digest"] == digest(4)
        assert "modelkeep-assignment" not in response.headers


@run
async def test_v2_accepts_nested_data_and_a_two_dimensional_signature() -> None:
    loader = FakeLoader()
    matrix = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}], "outputs": []}
    loader.predictors[digest(4)] = Matrix(4, signature=matrix)
    gateway, _, _ = memory_gateway([desired(backend(4))], loader)
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        tensor = {"name": "x", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3, 4]]}
        response = await client.post("/v2/models/fraud/infer", json={"inputs": [tensor]})
        assert response.status_code == 200, response.text
        assert response.json()["outputs"] == [
            {"name": "predictions", "shape": [2], "datatype": "INT64", "data": [3, 7]}
        ]


class Matrix(FakePredictor):
    def predict(self, inputs: Any) -> Any:
        return [sum(row) for row in inputs["x"]]  # one unnamed output


BAD_INPUTS = [
    pytest.param([{"name": "amount", "shape": [1], "datatype": "FP64", "data": [1.0]}],
     "missing ['country']", id="missing input"),
    pytest.param([*v2([1.0])["inputs"], {"name": "x", "shape": [1], "datatype": "FP64",
     "data": [1]}], "unknown ['x']", id="unknown input"),
    pytest.param([{**v2([1.0])["inputs"][0], "datatype": "BYTES", "data": ["1"]},
     v2([1.0])["inputs"][1]], "is BYTES, the signature says FP64", id="datatype"),
    pytest.param([{**v2([1.0])["inputs"][0], "data": ["one"]}, v2([1.0])["inputs"][1]],
     "'one' is not a FP64 value", id="value"),
    pytest.param([{**v2([1.0])["inputs"][0], "shape": [1, 1]}, v2([1.0])["inputs"][1]],
     "has shape [1, 1], the signature says [-1]", id="shape"),
    pytest.param([{**v2([1.0])["inputs"][0], "shape": [3]}, v2([1.0])["inputs"][1]],
     "holds 3 values, data has 1", id="shape and data"),
    pytest.param([{**v2([1.0])["inputs"][0], "datatype": "FLOAT"}, v2([1.0])["inputs"][1]],
     "'FLOAT' is not a V2 datatype", id="unknown datatype"),
]  # fmt: skip


@run
@pytest.mark.parametrize(("inputs", "said"), BAD_INPUTS)
async def test_inputs_that_do_not_match_the_signature_are_422(inputs: Any, said: str) -> None:
    gateway, _, _ = memory_gateway([desired(backend(4))])
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        response = await client.post("/v2/models/fraud/infer", json={"inputs": inputs})
        assert response.status_code == 422, response.text
        error = error_of(response)
        assert error["code"] == "invalid_inference_input"
        assert said in error["message"]
        assert response.headers["modelkeep-version"] == "fraud@4"
        text = (await client.get("/metrics")).text
        rejected = sample(parse_metrics(text), "modelkeep_gateway_rejected_total",
                          model="fraud", code="invalid_inference_input")  # fmt: skip
        assert rejected == 1


@run
@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"{not json", "the body is not JSON"),
        (b"[]", "'inputs' list"),
        (json.dumps({"inputs": [{"name": "amount"}]}).encode(), "needs 'name', 'shape'"),
        (b"[" * 100_000 + b"]" * 100_000, "the body nests too deeply"),
        (
            json.dumps({"inputs": [{**v2([1.0])["inputs"][0], "shape": [1] * 5000}]}).encode(),
            "is not a list of sizes",
        ),
    ],
)
async def test_malformed_requests_are_400(body: bytes, said: str) -> None:
    gateway, _, _ = memory_gateway([desired(backend(4))])
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        response = await client.post("/v2/models/fraud/infer", content=body)
        assert response.status_code == 400
        assert said in error_of(response)["message"]


@run
async def test_a_body_over_the_limit_is_413_declared_or_streamed() -> None:
    gateway, _, _ = memory_gateway([desired(backend(4))])
    async with serving(gateway, max_body_bytes=1000) as client:
        await until(lambda: gateway.synced)
        big = v2([1.0] * 500)
        response = await client.post("/v2/models/fraud/infer", json=big)
        assert response.status_code == 413
        assert error_of(response)["message"] == "the request body is over 1000 bytes"

        async def chunks() -> Any:  # no Content-Length: counted as it arrives
            for _ in range(10):
                yield b" " * 200

        streamed = await client.post("/v2/models/fraud/infer", content=chunks())
        assert streamed.status_code == 413
        small = await client.post("/v2/models/fraud/infer", json=v2([1.0]))
        assert small.status_code == 200


@run
async def test_a_version_that_raises_is_500_and_counted_as_its_error() -> None:
    loader = FakeLoader()
    loader.predictors[digest(4)] = FakePredictor(4, fails_on=13.0)
    gateway, _, _ = memory_gateway([desired(backend(4))], loader)
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        response = await client.post("/v2/models/fraud/infer", json=v2([13.0]))
        assert response.status_code == 500
        error = error_of(response)
        assert error["code"] == "prediction_failed"
        assert "fraud@4 failed to predict: ValueError: cannot score this amount" in error["message"]
        samples = parse_metrics((await client.get("/metrics")).text)
        labels = {"model": "fraud", "version": "fraud@4", "role": "stable"}
        assert sample(samples, "modelkeep_gateway_errors_total", **labels) == 1
        assert sample(samples, "modelkeep_gateway_requests_total", **labels) == 0


class Unjsonable(FakePredictor):
    def predict(self, inputs: Any) -> Any:
        return {"score": [float("nan")] * len(inputs["amount"])}


@run
async def test_an_answer_json_cannot_carry_is_500_not_a_broken_body() -> None:
    loader = FakeLoader()
    loader.predictors[digest(4)] = Unjsonable(4)
    gateway, _, _ = memory_gateway([desired(backend(4))], loader)
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        response = await client.post("/invocations", json=MLFLOW_BODIES[0])
        assert response.status_code == 500
        assert "Out of range float values are not JSON compliant" in error_of(response)["message"]


class Array(list[Any]):
    """What numpy answers, as far as the gateway cares: values with ``tolist()``."""

    def tolist(self) -> list[Any]:
        return list(self)


class SdkStyle(FakePredictor):
    """Like the SDK's predictor: a signature of dtypes (columns have no shape), every
    output from ``predict_outputs``, its own errors for inputs and failures."""

    def predict_outputs(self, inputs: Any) -> dict[str, Any]:
        if inputs["amount"] == [-1]:
            raise InvalidInferenceInput("amount -1 cannot be held by uint8")
        if inputs["amount"] == [-2]:
            raise PredictionFailed("fraud@4 (model.onnx) raised ValueError: boom")
        return {"label": Array([1]), "proba": Array([[0.25, 0.75]])}


SDK_SIGNATURE = {
    "inputs": [{"name": "amount", "dtype": "float64"}, {"name": "country", "dtype": "any"}],
    "outputs": [
        {"name": "label", "dtype": "int64", "shape": [-1]},
        {"name": "proba", "dtype": "float32", "shape": [-1, 2]},
    ],
}


@run
async def test_a_predictor_with_the_sdk_s_signature_and_outputs() -> None:
    loader = FakeLoader()
    loader.predictors[digest(4)] = SdkStyle(4, signature=SDK_SIGNATURE)
    gateway, _, _ = memory_gateway([desired(backend(4))], loader)
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        meta = (await client.get("/v2/models/fraud")).json()
        assert meta["inputs"] == [
            {"name": "amount", "datatype": "FP64", "shape": [-1]},
            {"name": "country", "datatype": "BYTES", "shape": [-1]},
        ]
        body = v2([3.0], [7])  # any: a number where a string would do
        response = await client.post("/v2/models/fraud/infer", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["outputs"] == [
            {"name": "label", "shape": [1], "datatype": "INT64", "data": [1]},
            {"name": "proba", "shape": [1, 2], "datatype": "FP32", "data": [0.25, 0.75]},
        ]
        mlflow = await client.post("/invocations", json=MLFLOW_BODIES[0])
        assert mlflow.json() == {"predictions": {"label": [1], "proba": [[0.25, 0.75]]}}
        refused = await client.post("/v2/models/fraud/infer", json=v2([-1.0]))
        assert refused.status_code == 422
        assert error_of(refused)["code"] == "invalid_inference_input"
        failed = await client.post("/v2/models/fraud/infer", json=v2([-2.0]))
        assert failed.status_code == 500
        assert error_of(failed)["message"] == "fraud@4 (model.onnx) raised ValueError: boom"


@run
async def test_slow_versions_predict_in_threads_fast_ones_on_the_loop() -> None:
    loader = FakeLoader()
    loader.predictors[digest(5)] = FakePredictor(5, delay=0.05)
    states = [desired(backend(4)), DesiredState("slow", "prod", 1, (backend(5),))]
    gateway, _, _ = memory_gateway(states, loader)
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        for _ in range(3):
            await client.post("/v2/models/fraud/infer", json=v2([1.0]))
            await client.post("/v2/models/slow/infer", json=v2([1.0]))
        assert gateway.deployments["fraud"].snapshot.loaded["stable"].timing.inline  # type: ignore[union-attr]
        slow = gateway.deployments["slow"].snapshot.loaded["stable"]  # type: ignore[union-attr]
        assert not slow.timing.inline
        started = time.monotonic()
        answers = await asyncio.gather(
            *(client.post("/v2/models/slow/infer", json=v2([1.0])) for _ in range(8))
        )
        assert {a.status_code for a in answers} == {200}
        assert time.monotonic() - started < 8 * 0.05  # side by side, not one after another


# MLflow scoring ----------------------------------------------------------------------------

MLFLOW_BODIES = [
    {"dataframe_split": {"columns": ["amount", "country"], "data": [[1.0, "fr"], [2, "de"]]}},
    {"dataframe_split": {"columns": ["country", "amount"], "data": [["fr", 1.0], ["de", 2]]}},
    {"dataframe_records": [{"amount": 1.0, "country": "fr"}, {"amount": 2, "country": "de"}]},
    {"instances": [{"amount": 1.0, "country": "fr"}, {"amount": 2, "country": "de"}]},
    {"inputs": {"amount": [1.0, 2], "country": ["fr", "de"]}},
    {"instances": [[1.0, "fr"], [2, "de"]]},
]


@run
@pytest.mark.parametrize("body", MLFLOW_BODIES, ids=lambda b: next(iter(b)))
async def test_invocations_accepts_every_mlflow_format(body: dict[str, Any]) -> None:
    gateway, _, _ = memory_gateway([desired(backend(3))])
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        response = await client.post("/invocations", json=body)
        assert response.status_code == 200, response.text
        assert response.json() == {"predictions": [3.0, 6]}
        assert response.headers["modelkeep-version"] == "fraud@3"


@run
async def test_invocations_with_several_models_needs_the_model_named() -> None:
    churn = desired(backend(4)).__class__("churn", "prod", 1, (backend(7),))
    gateway, _, _ = memory_gateway([desired(backend(3)), churn])
    body = MLFLOW_BODIES[0]
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        unnamed = await client.post("/invocations", json=body)
        assert unnamed.status_code == 400
        assert "serves 2 models: ['churn', 'fraud']" in error_of(unnamed)["message"]
        by_header = await client.post(
            "/invocations", json=body, headers={"modelkeep-model": "churn"}
        )
        assert by_header.headers["modelkeep-version"] == "fraud@7"
        by_query = await client.post("/invocations?model=fraud", json=body)
        assert by_query.headers["modelkeep-version"] == "fraud@3"


@run
async def test_invocations_refuses_columns_the_signature_lacks() -> None:
    gateway, _, _ = memory_gateway([desired(backend(3))])
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        body = {"dataframe_split": {"columns": ["amount", "city"], "data": [[1.0, "x"]]}}
        response = await client.post("/invocations", json=body)
        assert response.status_code == 422
        assert "missing ['country'], unknown ['city']" in error_of(response)["message"]
        two = await client.post("/invocations", json={"instances": [], "inputs": {}})
        assert two.status_code == 400


# routing -----------------------------------------------------------------------------------


@run
async def test_a_weighted_canary_answers_the_draws_below_its_weight() -> None:
    state = desired(backend(4), backend(5, "canary", 20))
    gateway, _, _ = memory_gateway([state], draw=draws(0.1, 0.9, 0.5, 0.9, 0.19, 0.9, 0.2, 0.9))
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        served = []
        for _ in range(4):
            response = await client.post("/v2/models/fraud/infer", json=v2([1.0]))
            served.append(response.headers["modelkeep-version"])
            assert response.json()["outputs"][0]["data"] == [float(served[-1][-1])]
        assert served == ["fraud@5", "fraud@4", "fraud@5", "fraud@4"]


@run
@pytest.mark.parametrize(
    ("sticky", "send"),
    [
        ("header:x-user", lambda key: {"headers": {"x-user": key}}),
        ("cookie:uid", lambda key: {"headers": {"cookie": f"uid={key}"}}),
        ("query:user", lambda key: {"params": {"user": key}}),
    ],
)
async def test_ab_sends_each_key_to_one_version_and_says_which(
    sticky: str, send: Callable[[str], dict[str, Any]]
) -> None:
    state = desired(backend(4), backend(5, "canary", 50), sticky=sticky)
    gateway, _, _ = memory_gateway([state])
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        seen: dict[str, set[tuple[str, str]]] = {}
        for key in [f"user-{i}" for i in range(40)] * 3:
            response = await client.post("/v2/models/fraud/infer", json=v2([1.0]), **send(key))
            arm = (response.headers["modelkeep-assignment"], response.headers["modelkeep-version"])
            seen.setdefault(key, set()).add(arm)
        assert all(len(arms) == 1 for arms in seen.values()), seen
        arms = {next(iter(a)) for a in seen.values()}
        assert arms == {("stable", "fraud@4"), ("canary", "fraud@5")}
        keyless = await client.post("/v2/models/fraud/infer", json=v2([1.0]))
        assert keyless.headers["modelkeep-assignment"] == "unassigned"
        assert keyless.headers["modelkeep-version"] == "fraud@4"


@run
async def test_a_version_named_in_the_path_answers_whatever_its_role() -> None:
    state = desired(backend(4), backend(5, "canary", 0), backend(6, "shadow", 0))
    gateway, _, _ = memory_gateway([state])
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        for n in (4, 5, 6):
            response = await client.post(f"/v2/models/fraud/versions/{n}/infer", json=v2([1.0]))
            assert response.headers["modelkeep-version"] == f"fraud@{n}"
            assert response.json()["model_version"] == str(n)
        missing = await client.post("/v2/models/fraud/versions/3/infer", json=v2([1.0]))
        assert missing.status_code == 404
        error = error_of(missing)
        assert (error["code"], error["hint"]) == (
            "version_not_found",
            "it serves fraud@4, fraud@5, fraud@6",
        )


# shadow ------------------------------------------------------------------------------------


@run
async def test_shadow_answers_are_compared_and_never_returned() -> None:
    loader = FakeLoader()
    loader.predictors[digest(8)] = FakePredictor(4)  # agrees with fraud@4
    state = desired(backend(4), backend(9, "shadow", 100))
    gateway, source, _ = memory_gateway([state], loader)
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        for amount in (1.0, 2.0, 3.0):
            response = await client.post("/v2/models/fraud/infer", json=v2([amount]))
            assert response.json()["outputs"][0]["data"] == [amount * 4]  # never 9x
            assert response.headers["modelkeep-version"] == "fraud@4"
        await gateway.shadows_done()
        await source.publish([desired(backend(4), backend(8, "shadow", 100), revision=2)])
        await until(lambda: gateway.deployments["fraud"].snapshot.state.revision == 2)  # type: ignore[union-attr]
        for _ in range(2):
            await client.post("/invocations", json=MLFLOW_BODIES[0])
        await gateway.shadows_done()
        samples = parse_metrics((await client.get("/metrics")).text)

    def shadow(name: str, n: int) -> float:
        return sample(samples, f"modelkeep_gateway_shadow_{name}", model="fraud",
                      version=f"fraud@{n}")  # fmt: skip

    assert (shadow("requests_total", 9), shadow("agreements_total", 9)) == (3, 0)
    assert (shadow("requests_total", 8), shadow("agreements_total", 8)) == (2, 2)
    assert shadow("duration_seconds_count", 9) == 3


@run
async def test_a_full_shadow_queue_drops_copies_and_counts_them() -> None:
    gate = threading.Event()
    loader = FakeLoader()
    loader.predictors[digest(9)] = FakePredictor(9, gate=gate)  # a stuck shadow
    state = desired(backend(4), backend(9, "shadow", 100))
    gateway, _, _ = memory_gateway([state], loader, shadow_queue_size=2)
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        first = await client.post("/v2/models/fraud/infer", json=v2([1.0]))
        assert first.status_code == 200
        await until(lambda: gateway.shadow_backlog == 0)  # the shadow took it, and is stuck
        for _ in range(5):
            response = await client.post("/v2/models/fraud/infer", json=v2([1.0]))
            assert response.status_code == 200  # the request path does not wait
        samples = parse_metrics((await client.get("/metrics")).text)
        # one copy in the shadow, two queued, three dropped
        assert sample(samples, "modelkeep_gateway_shadow_dropped_total", model="fraud") == 3
        gate.set()
        await gateway.shadows_done()


# swaps -------------------------------------------------------------------------------------


@run
async def test_a_tampered_version_keeps_the_old_one_serving_and_says_why() -> None:
    loader = FakeLoader(tampered={digest(5)})
    gateway, source, _ = memory_gateway([desired(backend(4))], loader)
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        await source.publish([desired(backend(5), revision=2)])
        await until(lambda: gateway.deployments["fraud"].problem is not None and
                    "failed" in gateway.deployments["fraud"].problem)  # fmt: skip
        ready = await client.get("/v2/health/ready")
        assert ready.status_code == 503
        reason = ready.json()["reason"]
        assert "fraud: fraud@5" in reason and "does not match its digest" in reason
        assert "still serving the previous state" in reason
        model = await client.get("/v2/models/fraud/ready")
        assert model.status_code == 503 and "fraud@5" in model.json()["reason"]
        response = await client.post("/v2/models/fraud/infer", json=v2([1.0]))
        assert (response.status_code, response.headers["modelkeep-version"]) == (200, "fraud@4")
        samples = parse_metrics((await client.get("/metrics")).text)
        assert sample(samples, "modelkeep_gateway_model_ready", model="fraud") == 0
        assert sample(samples, "modelkeep_gateway_load_failures_total", model="fraud") == 1
        await source.publish([desired(backend(6), revision=3)])  # a good one heals it
        await until(lambda: gateway.deployments["fraud"].ready)
        assert (await client.get("/v2/health/ready")).json() == {"ready": True}


@run
async def test_while_a_new_version_loads_the_old_one_serves_and_the_gateway_stays_ready() -> None:
    """Not ready during every rollout would take all replicas out of a load balancer."""
    loading = threading.Event()
    loader = FakeLoader(gates={digest(5): loading})
    gateway, source, _ = memory_gateway([desired(backend(4))], loader)
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        await source.publish([desired(backend(5), revision=2)])
        await until(lambda: gateway.deployments["fraud"].loading == 2)
        assert (await client.get("/v2/health/ready")).json() == {"ready": True}
        response = await client.post("/v2/models/fraud/infer", json=v2([1.0]))
        assert response.headers["modelkeep-version"] == "fraud@4"
        loading.set()
        await until(lambda: gateway.deployments["fraud"].loading is None)
        response = await client.post("/v2/models/fraud/infer", json=v2([1.0]))
        assert response.headers["modelkeep-version"] == "fraud@5"


@run
async def test_a_first_load_is_not_ready_until_it_is_done() -> None:
    loading = threading.Event()
    loader = FakeLoader(gates={digest(4): loading})
    gateway, _, _ = memory_gateway([desired(backend(4))], loader)
    async with serving(gateway) as client:
        await until(lambda: "fraud" in gateway.deployments)
        ready = await client.get("/v2/health/ready")
        assert ready.status_code == 503
        assert ready.json()["reason"] == "no desired state read yet; fraud: loading revision 1"
        model = await client.get("/v2/models/fraud/ready")
        assert model.json() == {"name": "fraud", "ready": False, "reason": "loading revision 1"}
        response = await client.post("/v2/models/fraud/infer", json=v2([1.0]))
        assert (response.status_code, error_of(response)["code"]) == (503, "model_not_ready")
        loading.set()
        await until(lambda: gateway.deployments["fraud"].ready)


@run
async def test_a_failed_load_is_retried_until_it_succeeds() -> None:
    """A version that failed to load (the registry was briefly down, a damaged blob was
    restored) is tried again without a new revision."""
    loader = FakeLoader(tampered={digest(5)})
    gateway, source, _ = memory_gateway([desired(backend(4))], loader, retry_load_seconds=0.02)
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        await source.publish([desired(backend(5), revision=2)])
        await until(lambda: loader.loads.count("fraud@5") >= 2)  # retried
        assert not gateway.deployments["fraud"].ready
        loader.tampered.clear()
        await until(lambda: gateway.deployments["fraud"].ready)
        response = await client.post("/v2/models/fraud/infer", json=v2([1.0]))
        assert response.headers["modelkeep-version"] == "fraud@5"


@run
async def test_a_model_whose_only_version_fails_to_load_is_503_not_ready() -> None:
    loader = FakeLoader(tampered={digest(4)})
    gateway, _, _ = memory_gateway([desired(backend(4))], loader)
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        response = await client.post("/v2/models/fraud/infer", json=v2([1.0]))
        assert response.status_code == 503
        error = error_of(response)
        assert error["code"] == "model_not_ready"
        assert "does not match its digest" in error["message"]


@run
async def test_an_undeployed_model_stops_being_served() -> None:
    gateway, source, _ = memory_gateway([desired(backend(4))])
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        await source.publish([])
        await until(lambda: "fraud" not in gateway.deployments)
        assert (await client.get("/v2/models/fraud/ready")).status_code == 404


@run
async def test_swaps_under_concurrent_load_fail_or_drop_no_request() -> None:
    """Clients keep requesting while the desired state swaps between versions (and a
    canary comes and goes): every request is answered 200, by the version its headers
    name (its answer is amount times the version's number)."""
    loader = FakeLoader()
    for n in (4, 5, 6):
        loader.predictors[digest(n)] = FakePredictor(n, delay=0.002)
    states = [
        desired(backend(4)),
        desired(backend(5), backend(6, "canary", 50)),
        desired(backend(6)),
        desired(backend(4), backend(5, "canary", 30), backend(6, "shadow", 20)),
    ]
    gateway, source, _ = memory_gateway([states[0]], loader)
    answered: list[tuple[int, str, list[float]]] = []
    stop = asyncio.Event()

    async def client_loop(client: httpx.AsyncClient, amount: float) -> None:
        while not stop.is_set():
            response = await client.post("/v2/models/fraud/infer", json=v2([amount]))
            version = response.headers.get("modelkeep-version", "none")
            data = response.json()["outputs"][0]["data"] if response.status_code == 200 else []
            answered.append((response.status_code, version, data))
            if response.status_code == 200:
                assert data == [amount * int(version[-1])]
            await asyncio.sleep(0)  # an answer at once (an error) must not starve the swaps

    def revision() -> int | None:
        snapshot = gateway.deployments["fraud"].snapshot
        return snapshot.state.revision if snapshot is not None else None

    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        clients = [asyncio.create_task(client_loop(client, float(i + 1))) for i in range(16)]
        for number in range(2, 26):
            state = states[number % len(states)]
            await source.publish([desired(*state.backends, revision=number)])
            await until(lambda n=number: revision() == n)  # type: ignore[misc]
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.gather(*clients)
    assert len(answered) > 200
    assert {status for status, _, _ in answered} == {200}
    assert {version for _, version, _ in answered} == {"fraud@4", "fraud@5", "fraud@6"}


# metrics -----------------------------------------------------------------------------------


@run
async def test_metrics_count_requests_and_latency_per_model_version_and_role() -> None:
    state = desired(backend(4), backend(5, "canary", 50))
    gateway, _, _ = memory_gateway([state], draw=draws(0.9, 0.9, 0.1, 0.9))
    async with serving(gateway) as client:
        await until(lambda: gateway.synced)
        for _ in range(6):
            await client.post("/v2/models/fraud/infer", json=v2([1.0]))
        response = await client.get("/metrics")
    assert response.headers["content-type"] == CONTENT_TYPE
    samples = parse_metrics(response.text)
    stable = {"model": "fraud", "version": "fraud@4", "role": "stable"}
    canary = {"model": "fraud", "version": "fraud@5", "role": "canary"}
    assert sample(samples, "modelkeep_gateway_requests_total", **stable) == 3
    assert sample(samples, "modelkeep_gateway_requests_total", **canary) == 3
    name = "modelkeep_gateway_request_duration_seconds"
    assert sample(samples, f"{name}_count", **stable) == 3
    assert sample(samples, f"{name}_bucket", **stable, le="+Inf") == 3
    buckets = sorted(
        (float(dict(labels)["le"].replace("+Inf", "inf")), value)
        for (metric, labels), value in samples.items()
        if metric == f"{name}_bucket" and ("role", "stable") in labels
    )
    assert [v for _, v in buckets] == sorted(v for _, v in buckets)  # cumulative
    assert sample(samples, "modelkeep_gateway_model_ready", model="fraud") == 1
    assert sample(samples, "modelkeep_gateway_desired_revision", model="fraud") == 1
    assert sample(samples, "modelkeep_gateway_registry_reachable") == 1


def test_label_values_are_escaped() -> None:
    from modelkeep.entrypoints.gateway.metrics import GatewayMetrics

    metrics = GatewayMetrics()
    metrics.rejected.inc('we"ird\\model\n', "x")
    samples = parse_metrics(metrics.render())
    assert sample(samples, "modelkeep_gateway_rejected_total",
                  model='we\\"ird\\\\model\\n', code="x") == 1  # fmt: skip
