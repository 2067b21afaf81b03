"""Check an InferenceService YAML with the KServe SDK's own models (run by the python of
the .venv-kserve venv, not modelkeep's): ``python kserve_check.py FILE``.

The SDK's deserialisation builds its model classes from the document and drops any key
they do not define, so a document that does not survive the round trip unchanged names a
field KServe does not know (or a value of the wrong type). Exit 0: valid; 1: the why."""

from __future__ import annotations

import json
import sys
from typing import Any

import yaml
from kserve import V1beta1InferenceService
from kserve.api_client import ApiClient
from kubernetes import client as k8s


class _Response:  # what ApiClient.deserialize reads: a body in .data
    def __init__(self, data: str) -> None:
        self.data = data


def lost(ours: Any, theirs: Any, path: str) -> list[str]:
    """Where ``theirs`` (the round trip) lacks or changed a part of ``ours``."""
    if isinstance(ours, dict):
        if not isinstance(theirs, dict):
            return [f"{path}: not an object after the round trip"]
        return [m for k, v in ours.items() for m in lost(v, theirs.get(k), f"{path}.{k}")]
    return [] if ours == theirs else [f"{path}: {ours!r} became {theirs!r}"]


def main(path: str) -> int:
    with open(path, encoding="utf-8") as stream:
        document = yaml.safe_load(stream)
    client = ApiClient()
    spec = client.deserialize(
        _Response(json.dumps(document["spec"])), "V1beta1InferenceServiceSpec"
    )
    metadata = k8s.V1ObjectMeta.from_dict(document["metadata"])
    service = V1beta1InferenceService(
        api_version=document["apiVersion"], kind=document["kind"], metadata=metadata, spec=spec
    )
    round_trip = {
        "apiVersion": service.api_version,
        "kind": service.kind,
        "metadata": k8s.ApiClient().sanitize_for_serialization(service.metadata),
        "spec": client.sanitize_for_serialization(service.spec),
    }
    problems = lost(document, round_trip, "")
    if document.get("apiVersion") != "serving.kserve.io/v1beta1":
        problems.append(f".apiVersion: {document.get('apiVersion')!r}")
    if document.get("kind") != "InferenceService":
        problems.append(f".kind: {document.get('kind')!r}")
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
