"""The default ``PredictorLoader``: the SDK's ``mk.load``, by digest, so the gateway serves
exactly the bytes the desired state names (the SDK verifies each file as it loads)."""

from __future__ import annotations

from typing import Any

from modelkeep.entrypoints.gateway.ports import Predictor
from modelkeep.errors import DigestMismatch, ModelNotReady


class SdkPredictorLoader:
    def __init__(self, connect: Any) -> None:
        """``connect``: a callable giving a client (``modelkeep.connect`` with its
        arguments bound); called once, on the first load."""
        self._connect = connect
        self._client: Any = None

    def load(self, ref: str, digest: str) -> Predictor:
        if self._client is None:
            self._client = self._connect()
        load = getattr(self._client, "load", None)
        if load is None:
            raise ModelNotReady(
                "this modelkeep's SDK cannot load versions (no mk.load)",
                "upgrade modelkeep on the gateway",
            )
        model = ref.partition("@")[0]
        predictor: Predictor = load(f"{model}@{digest}")  # by digest: exactly that version
        found = getattr(predictor, "digest", None)
        if isinstance(found, str) and found != digest:
            raise DigestMismatch(f"{ref} loaded as {found}, not {digest}", "redeploy the version")
        return predictor

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
