"""Serving bundles and OpenSSF signatures, made where the store's keys are.

``POST /models/{name}/versions/{ref}/bundle`` builds the version's signed, deterministic
bundle and answers its bytes (``application/gzip``), with the digest it recorded on the
version in ``modelkeep-bundle-digest``; ``POST .../openssf-signature`` answers an
OpenSSF model-signing signature of its files (Sigstore bundle JSON). Both need only read
access to the version: they are made from what the reader may already pull.
"""

from __future__ import annotations

import os
import tempfile

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

from modelkeep.domain.names import check_model_name
from modelkeep.entrypoints.api.routes import Reg
from modelkeep.services import bundles

router = APIRouter(tags=["bundles"])


def _ref(name: str, ref: str) -> str:
    return f"{check_model_name(name)}@{ref}"


@router.post("/models/{name}/versions/{ref}/bundle")
def build_bundle(reg: Reg, name: str, ref: str) -> FileResponse:
    """The version's serving bundle (tar.gz); its sha256 in ``modelkeep-bundle-digest``."""
    fd, path = tempfile.mkstemp(prefix="modelkeep-bundle-", suffix=".tar.gz")
    try:
        with os.fdopen(fd, "wb") as out:
            built = bundles.build(reg, _ref(name, ref), out)
    except BaseException:
        os.unlink(path)
        raise
    headers = {
        "modelkeep-model": built.model,
        "modelkeep-number": str(built.number),
        "modelkeep-version-digest": built.version_digest,
        "modelkeep-bundle-digest": built.digest,
    }
    return FileResponse(
        path,
        media_type="application/gzip",
        headers=headers,
        filename=f"{built.model}-{built.number}.bundle.tar.gz",
        background=BackgroundTask(os.unlink, path),
    )


@router.post("/models/{name}/versions/{ref}/openssf-signature")
def openssf_signature(reg: Reg, name: str, ref: str) -> Response:
    """An OpenSSF model-signing signature of the version's files (the store's P-256 key,
    ``GET /audit/key?format=openssf``)."""
    data = bundles.openssf_signature(reg, _ref(name, ref))
    return Response(data, media_type="application/json")
