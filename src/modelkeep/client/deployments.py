"""Deployments in the SDK: the verbs both transports implement.

``LocalDeployments`` (client/local.py) calls services/deployments.py in this process;
``HttpDeployments``
calls the server's routes (entrypoints/api/deployment_routes.py) and rebuilds the same
records from their JSON."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from modelkeep.client.wire import path_segment as _seg
from modelkeep.domain.deployments import DeploymentChange, DesiredState
from modelkeep.domain.names import parse_ref


class DeploymentBackend(Protocol):
    def deploy(
        self,
        ref: str,
        env: str,
        canary: int | None = None,
        ab: int | None = None,
        sticky: str | None = None,
        shadow: int | None = None,
        expect_revision: int | None = None,
        reason: str | None = None,
    ) -> DeploymentChange: ...
    def promote_deployment(
        self, model: str, env: str, expect_revision: int | None = None, reason: str | None = None
    ) -> DeploymentChange: ...
    def rollback_deployment(
        self, model: str, env: str, expect_revision: int | None = None, reason: str | None = None
    ) -> DeploymentChange: ...
    def deployment(self, model: str, env: str) -> DesiredState: ...
    def deployment_history(self, model: str, env: str) -> list[DeploymentChange]: ...
    def deployments(self, env: str) -> list[DesiredState]: ...


class HttpDeployments:
    """Mixed into ``HttpBackend``, which supplies the requests."""

    _call: Callable[..., Any]
    _items: Callable[..., list[dict[str, Any]]]

    def deploy(
        self,
        ref: str,
        env: str,
        canary: int | None = None,
        ab: int | None = None,
        sticky: str | None = None,
        shadow: int | None = None,
        expect_revision: int | None = None,
        reason: str | None = None,
    ) -> DeploymentChange:
        parsed = parse_ref(ref)
        body = {
            "version": parsed.value,
            "canary": canary,
            "ab": ab,
            "sticky": sticky,
            "shadow": shadow,
            "expect_revision": expect_revision,
            "reason": reason,
        }
        path = f"/models/{_seg(parsed.model)}/deployments/{_seg(env)}"
        return DeploymentChange.from_dict(self._call("POST", path, json=body))

    def promote_deployment(
        self, model: str, env: str, expect_revision: int | None = None, reason: str | None = None
    ) -> DeploymentChange:
        return self._change(model, env, "promote", expect_revision, reason)

    def rollback_deployment(
        self, model: str, env: str, expect_revision: int | None = None, reason: str | None = None
    ) -> DeploymentChange:
        return self._change(model, env, "rollback", expect_revision, reason)

    def _change(
        self, model: str, env: str, action: str, expect: int | None, reason: str | None
    ) -> DeploymentChange:
        body = {"expect_revision": expect, "reason": reason}
        path = f"/models/{_seg(model)}/deployments/{_seg(env)}/{action}"
        return DeploymentChange.from_dict(self._call("POST", path, json=body))

    def deployment(self, model: str, env: str) -> DesiredState:
        path = f"/models/{_seg(model)}/deployments/{_seg(env)}"
        return DesiredState.from_dict(self._call("GET", path))

    def deployment_history(self, model: str, env: str) -> list[DeploymentChange]:
        path = f"/models/{_seg(model)}/deployments/{_seg(env)}/history"
        return [DeploymentChange.from_dict(d) for d in self._items(path)]

    def deployments(self, env: str) -> list[DesiredState]:
        body = self._call("GET", "/deployments", params={"env": env})
        return [DesiredState.from_dict(d) for d in body["deployments"]]
