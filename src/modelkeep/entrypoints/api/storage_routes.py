"""The storage report and retention policies, over HTTP.

``GET /storage`` reports logical against physical bytes (of ``model``, or of every model
the user may read). A model's retention policy is ``GET`` (read on the model), ``PUT``
and ``DELETE`` (a global admin) on ``/models/{name}/retention``; both rules null means
the model has no policy. ``gc`` applies the policies.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from modelkeep.domain.retention import RetentionPolicy
from modelkeep.entrypoints.api import schemas
from modelkeep.entrypoints.api.routes import Reg
from modelkeep.services import retention, storage

router = APIRouter(tags=["storage"])


def _policy(model: str, policy: RetentionPolicy | None) -> dict[str, Any]:
    return (policy or RetentionPolicy(model)).to_dict()


@router.get("/storage")
def storage_report(reg: Reg, model: str | None = None) -> dict[str, Any]:
    """Logical bytes (live versions' files) against physical bytes (the blobs and chunks
    they need, each once), per model and version, with each version's new bytes."""
    return storage.report(reg, model).to_dict()


@router.get("/models/{name}/retention")
def get_retention(reg: Reg, name: str) -> dict[str, Any]:
    """The model's retention policy; ``keep_last`` and ``keep_days`` null: none."""
    return _policy(name, retention.get_policy(reg, name))


@router.put("/models/{name}/retention")
def set_retention(reg: Reg, name: str, body: schemas.Retention) -> dict[str, Any]:
    """Replace the model's retention policy; the next ``gc`` applies it."""
    return retention.set_policy(reg, name, body.keep_last, body.keep_days).to_dict()


@router.delete("/models/{name}/retention")
def clear_retention(reg: Reg, name: str) -> dict[str, Any]:
    """Remove the model's policy: the one removed (both rules null if there was none)."""
    return _policy(name, retention.clear_policy(reg, name))
