"""A desired state as a KServe ``InferenceService`` (serving.kserve.io/v1beta1). Pure.

KServe's rollout model is a canary between two revisions of one ``InferenceService``:
the spec describes the *candidate* and ``canaryTrafficPercent`` its share; KServe keeps
the previous ready revision as the stable one and sends it the rest. So:

- a stable-only state gives a spec of the stable version, without ``canaryTrafficPercent``
  (KServe then sends it every request once it is ready);
- a state with a canary gives a spec of the canary with ``canaryTrafficPercent`` = its
  weight; the stable version is the revision the stable-only export made, applied first
  (annotations name it, so a reader sees what the rest of the traffic reaches);
- a shadow (traffic mirroring, kserve/kserve#2978) and a sticky A/B (KServe splits each
  request at random, with no key) have no KServe equivalent: refused, saying why.

Each version is pinned by the digest of its OCI artifact manifest (what ``bundle
export-oci`` writes), ``oci://REPO@sha256:...``, so the cluster pulls the approved bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelkeep.domain.deployments import Backend, DesiredState
from modelkeep.errors import InvalidInput

API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"
FORMATS = {"sklearn": "sklearn", "onnx": "onnx"}
"""modelkeep's model formats (serving/) and the KServe ``modelFormat.name`` of each."""
ANNOTATION = "modelkeep.dev/"
OCI_REPO = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]+([._-][a-z0-9]+)*)+")
"""``registry.example.com[:5000]/path/to/repo``: a registry host and a repository, no tag."""
NAME_LIMIT = 45
"""KServe derives longer names (``NAME-predictor-00001-deployment``) that must stay
within Kubernetes' 63 characters; 45 leaves room for them."""
NAMESPACE = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class Artifact:
    """What KServe pulls for one version: its OCI manifest digest and its model format."""

    manifest_digest: str
    model_format: str


def check_expressible(state: DesiredState) -> None:
    """InvalidInput unless KServe can serve ``state`` as modelkeep does."""
    where = f"{state.model} in {state.env}"
    if not state.backends:
        raise InvalidInput(
            f"{where} serves nothing to export",
            f"deploy a version first: modelkeep deploy {state.model}@REF --env {state.env}",
        )
    shadow = state.backend("shadow")
    if shadow is not None:
        raise InvalidInput(
            f"{where} has a shadow ({shadow.ref}), and KServe cannot mirror traffic "
            "(kserve/kserve#2978): an InferenceService would drop it",
            f"promote or roll back the shadow first (modelkeep deploy promote|rollback "
            f"{state.model} --env {state.env}), or serve it with 'modelkeep gateway'",
        )
    if state.sticky is not None:
        raise InvalidInput(
            f"{where} runs a sticky A/B test (by {state.sticky}), and KServe's canary "
            "splits each request at random, with no sticky key",
            f"end the A/B test first (modelkeep deploy promote|rollback {state.model} "
            f"--env {state.env}), or serve it with 'modelkeep gateway'",
        )


def check_oci_repo(repo: str) -> str:
    if not OCI_REPO.fullmatch(repo):
        raise InvalidInput(
            f"{repo!r} is not an OCI repository",
            "give a registry and repository without scheme, tag or digest, e.g. "
            "registry.example.com/models/fraud",
        )
    return repo


def check_namespace(namespace: str) -> str:
    if not NAMESPACE.fullmatch(namespace):
        raise InvalidInput(
            f"{namespace!r} is not a Kubernetes namespace", "use lowercase letters, digits and '-'"
        )
    return namespace


def check_runtime(runtime: str) -> str:
    if not NAMESPACE.fullmatch(runtime):
        raise InvalidInput(
            f"{runtime!r} is not a ServingRuntime name", "use lowercase letters, digits and '-'"
        )
    return runtime


def service_name(model: str) -> str:
    """The model name as a Kubernetes (DNS-1035) name: '.' and '_' become '-'."""
    name = re.sub(r"[^a-z0-9-]", "-", model.lower()).strip("-")
    if name and not name[0].isalpha():
        name = "m-" + name
    if not name or len(name) > NAME_LIMIT:
        raise InvalidInput(
            f"{model!r} does not make a KServe name of at most {NAME_LIMIT} characters",
            "use a shorter model name for KServe",
        )
    return name


def storage_uri(repo: str, manifest_digest: str) -> str:
    return f"oci://{check_oci_repo(repo)}@{manifest_digest}"


def inference_service(
    state: DesiredState,
    artifacts: Mapping[str, Artifact],
    oci_repo: str,
    namespace: str | None = None,
    runtime: str | None = None,
) -> dict[str, Any]:
    """The ``InferenceService`` serving ``state``; ``artifacts`` by version digest;
    ``runtime`` names a ServingRuntime (None: KServe picks one for the model format)."""
    check_expressible(state)
    check_oci_repo(oci_repo)
    stable = state.backend("stable")
    assert stable is not None  # a state with backends has one stable (DesiredState)
    canary = state.backend("canary")
    served = canary or stable
    annotations = {
        ANNOTATION + "env": state.env,
        ANNOTATION + "revision": str(state.revision),
        ANNOTATION + "version": served.ref,
        ANNOTATION + "version-digest": served.digest,
        ANNOTATION + "stable-version": stable.ref,
        ANNOTATION + "stable-storage-uri": _uri(stable, artifacts, oci_repo),
    }
    metadata: dict[str, Any] = {
        "name": service_name(state.model),
        "labels": {ANNOTATION + "model": state.model, ANNOTATION + "env": state.env},
        "annotations": annotations,
    }
    if namespace is not None:
        metadata["namespace"] = check_namespace(namespace)
    predictor: dict[str, Any] = {
        "model": {
            "modelFormat": {"name": _format(served, artifacts)},
            "storageUri": _uri(served, artifacts, oci_repo),
        }
    }
    if runtime is not None:
        predictor["model"]["runtime"] = check_runtime(runtime)
    if canary is not None:
        predictor["canaryTrafficPercent"] = canary.weight
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": metadata,
        "spec": {"predictor": predictor},
    }


def _artifact(backend: Backend, artifacts: Mapping[str, Artifact]) -> Artifact:
    artifact = artifacts.get(backend.digest)
    if artifact is None:  # a caller's mistake, not a user's: every backend is looked up
        raise InvalidInput(f"no OCI artifact given for {backend.ref} ({backend.digest})")
    return artifact


def _uri(backend: Backend, artifacts: Mapping[str, Artifact], repo: str) -> str:
    return storage_uri(repo, _artifact(backend, artifacts).manifest_digest)


def _format(backend: Backend, artifacts: Mapping[str, Artifact]) -> str:
    fmt = _artifact(backend, artifacts).model_format
    if fmt not in FORMATS:
        raise InvalidInput(
            f"{backend.ref} is a {fmt} model, and KServe has no runtime that loads it "
            f"(it serves {' and '.join(FORMATS)} versions here)",
            "serve it with 'modelkeep gateway', or push the model as ONNX or skops",
        )
    return FORMATS[fmt]
