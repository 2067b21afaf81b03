"""Signed audit checkpoints and the store's audit public key, over HTTP.

``POST /audit/checkpoints`` signs the audit head with the server's key (a global admin);
``GET /audit/key`` shows the public key that checks the signatures (any global role).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from modelkeep.entrypoints.api.routes import Reg
from modelkeep.services import audit

router = APIRouter(tags=["audit"])


@router.post("/audit/checkpoints", status_code=201)
def create_checkpoint(reg: Reg) -> dict[str, Any]:
    """Sign the newest audit event and store the checkpoint in the blob store."""
    return audit.checkpoint(reg).to_dict()


@router.get("/audit/key")
def audit_key(reg: Reg) -> dict[str, Any]:
    """The store's Ed25519 public key (raw hex and PEM) that checks checkpoints."""
    return audit.public_key(reg).to_dict()
