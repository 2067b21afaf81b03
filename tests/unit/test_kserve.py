"""A desired state as a KServe InferenceService (domain/kserve.py): the pure function."""

from __future__ import annotations

import pytest

from modelkeep.domain.deployments import Backend, DesiredState
from modelkeep.domain.kserve import Artifact, inference_service, service_name
from modelkeep.errors import InvalidInput

REPO = "registry.example.com:5000/models/fraud"


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def backend(n: int, role: str = "stable", weight: int = 100) -> Backend:
    return Backend(f"fraud@{n}", digest(n), role, weight)  # type: ignore[arg-type]


ARTIFACTS = {
    digest(1): Artifact(digest(101), "sklearn"),
    digest(2): Artifact(digest(102), "onnx"),
    digest(3): Artifact(digest(103), "python"),
}


def state(*backends: Backend, sticky: str | None = None) -> DesiredState:
    return DesiredState("fraud", "prod", 7, backends, sticky)


def test_a_stable_version_alone_is_the_spec_without_a_canary_percent() -> None:
    service = inference_service(state(backend(1)), ARTIFACTS, REPO)
    assert service["apiVersion"] == "serving.kserve.io/v1beta1"
    assert service["kind"] == "InferenceService"
    assert service["metadata"]["name"] == "fraud" and "namespace" not in service["metadata"]
    assert service["spec"] == {
        "predictor": {
            "model": {
                "modelFormat": {"name": "sklearn"},
                "storageUri": f"oci://{REPO}@{digest(101)}",
            }
        }
    }
    notes = service["metadata"]["annotations"]
    assert notes["modelkeep.dev/version"] == notes["modelkeep.dev/stable-version"] == "fraud@1"
    assert notes["modelkeep.dev/version-digest"] == digest(1)
    assert notes["modelkeep.dev/revision"] == "7"


def test_a_canary_is_the_spec_with_its_percent_and_the_stable_one_in_annotations() -> None:
    desired = state(backend(1, "stable", 80), backend(2, "canary", 20))
    service = inference_service(desired, ARTIFACTS, REPO, namespace="serving")
    predictor = service["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 20
    assert predictor["model"] == {
        "modelFormat": {"name": "onnx"},
        "storageUri": f"oci://{REPO}@{digest(102)}",
    }
    notes = service["metadata"]["annotations"]
    assert notes["modelkeep.dev/version"] == "fraud@2"
    assert notes["modelkeep.dev/stable-version"] == "fraud@1"
    assert notes["modelkeep.dev/stable-storage-uri"] == f"oci://{REPO}@{digest(101)}"
    assert service["metadata"]["namespace"] == "serving"


def test_a_canary_at_zero_percent_is_kept_at_zero() -> None:
    desired = state(backend(1, "stable", 100), backend(2, "canary", 0))
    assert (
        inference_service(desired, ARTIFACTS, REPO)["spec"]["predictor"]["canaryTrafficPercent"]
        == 0
    )


@pytest.mark.parametrize(
    ("desired", "says"),
    [
        (state(backend(1), backend(2, "shadow", 10)), "cannot mirror traffic"),
        (
            state(backend(1, "stable", 80), backend(2, "canary", 20), backend(3, "shadow", 5)),
            "kserve/kserve#2978",
        ),
        (
            state(backend(1, "stable", 50), backend(2, "canary", 50), sticky="header:x-user"),
            "no sticky key",
        ),
        (state(), "serves nothing"),
        (state(backend(3)), "python model, and KServe has no runtime"),
    ],
)
def test_what_kserve_cannot_serve_is_refused_saying_why(desired: DesiredState, says: str) -> None:
    with pytest.raises(InvalidInput, match=says):
        inference_service(desired, ARTIFACTS, REPO)


@pytest.mark.parametrize(
    "repo",
    [
        "oci://registry.example.com/models/fraud",
        "registry.example.com/models/fraud:1",
        "registry.example.com/models/fraud@sha256:00",
        "registry.example.com",
        "Registry.example.com/Models",
        "",
    ],
)
def test_an_oci_repo_is_a_registry_and_a_repository_only(repo: str) -> None:
    with pytest.raises(InvalidInput, match="is not an OCI repository"):
        inference_service(state(backend(1)), ARTIFACTS, repo)


def test_a_bad_namespace_is_refused() -> None:
    with pytest.raises(InvalidInput, match="not a Kubernetes namespace"):
        inference_service(state(backend(1)), ARTIFACTS, REPO, namespace="Prod_1")


@pytest.mark.parametrize(
    ("model", "name"),
    [("fraud", "fraud"), ("fraud.v2_b", "fraud-v2-b"), ("2fa", "m-2fa"), ("a-", "a")],
)
def test_a_model_name_becomes_a_kubernetes_name(model: str, name: str) -> None:
    assert service_name(model) == name


def test_a_model_name_too_long_for_kserve_is_refused() -> None:
    with pytest.raises(InvalidInput, match="at most 45 characters"):
        service_name("f" * 46)
