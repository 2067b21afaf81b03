"""Signed audit checkpoints and the store's audit public key, over HTTP.

``POST /audit/checkpoints`` signs the audit head with the server's key (a global admin);
``GET /audit/key`` shows the public key that checks the signatures (any global role).
For a verifier outside the store (whoever may read the whole audit log): ``GET
/audit/head`` is the chain's head and the newest checkpoint, ``GET /audit/checkpoints``
lists the checkpoint files and ``GET /audit/checkpoints/{seq}`` is one, byte for byte.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path
from fastapi.responses import Response

from modelkeep.domain.numbers import INT64_MAX
from modelkeep.entrypoints.api.paging import Cursor, Limit, page
from modelkeep.entrypoints.api.routes import Reg
from modelkeep.services import audit, bundles

router = APIRouter(tags=["audit"])


@router.post("/audit/checkpoints", status_code=201)
def create_checkpoint(reg: Reg) -> dict[str, Any]:
    """Sign the newest audit event and store the checkpoint in the blob store."""
    return audit.checkpoint(reg).to_dict()


@router.get("/audit/key")
def audit_key(reg: Reg, format: Literal["audit", "openssf"] = "audit") -> dict[str, Any]:
    """The store's Ed25519 public key (raw hex and PEM) that checks checkpoints; with
    ``format=openssf``, ``{"format": "openssf", "pem": ...}``: the P-256 key of OpenSSF
    model signatures (``modelkeep sign``)."""
    if format == "openssf":
        return {"format": "openssf", "pem": bundles.openssf_public_key(reg)}
    return audit.public_key(reg).to_dict()


@router.get("/audit/head")
def audit_head(reg: Reg) -> dict[str, Any]:
    """The chain's head (``seq``, ``hash``; 0 and 64 zeros for an empty log) and the
    newest signed checkpoint in the blob store (null if none), to check with your key."""
    return audit.head(reg).to_dict()


@router.get("/audit/checkpoints")
def list_checkpoints(reg: Reg, limit: Limit = 1000, after: Cursor | None = None) -> dict[str, Any]:
    """The checkpoint files (``seq``, ``name``), oldest first; ``after``: a seq."""
    entries = audit.checkpoints(reg, after, limit + 1)  # one more: is there a next page?
    return page(((e.seq, e.to_dict()) for e in entries), limit, None)


@router.get(
    "/audit/checkpoints/{seq}",
    responses={200: {"content": {"application/json": {}}, "description": "the file"}},
)
def get_checkpoint(reg: Reg, seq: Annotated[int, Path(ge=0, le=INT64_MAX)]) -> Response:
    """The checkpoint file of ``seq``, exactly the bytes stored (canonical JSON and a
    newline): its ``signature`` covers its ``checkpoint`` object."""
    name, data = audit.checkpoint_file(reg, seq)
    filename = name.rsplit("/", 1)[-1]
    disposition = f'attachment; filename="{filename}"'
    return Response(
        data, media_type="application/json", headers={"content-disposition": disposition}
    )
