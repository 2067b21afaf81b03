"""What the gateway needs from the rest of modelkeep: a loaded, verified predictor per
version, and the desired states of its environment. Small protocols, so the gateway is
tested with fakes and runs with the SDK and the registry's HTTP feed.

Inputs and outputs cross this boundary as JSON-native values: ``{name: nested list}``,
one entry per signature input (a tabular model's columns as 1-D lists, a tensor model's
tensor as a list of rows). A predictor may answer a mapping ``{name: values}`` or, for a
single output, the values alone (a list, or anything with ``tolist()``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from modelkeep.domain.deployments import DesiredState

Inputs = Mapping[str, Any]


class Predictor(Protocol):
    """A version loaded for inference (``mk.load(ref)``)."""

    @property
    def signature(self) -> Any:
        """``{"inputs": [{"name", "datatype", "shape"}], "outputs": [...]}``, or an object
        with ``to_dict()`` giving that (see ``tensors.Signature.of``)."""

    def predict(self, inputs: Inputs) -> Any:
        """The answer; raises ``InvalidInput`` (e.g. ``InvalidInferenceInput``) for inputs
        it refuses, anything else when the model fails. A predictor may also have
        ``predict_outputs(inputs) -> {name: values}``, which the gateway then prefers."""
        ...


class PredictorLoader(Protocol):
    def load(self, ref: str, digest: str) -> Predictor:
        """The version ``ref`` (``fraud@4``) whose digest is ``digest``, every byte
        verified against it; raises (any exception, whose message is the reason) if a
        file is missing or does not match. Blocking: the gateway calls it in a thread."""
        ...


class DesiredStateSource(Protocol):
    """The desired states of one environment, as they change."""

    problem: str | None
    """Why the source cannot reach the registry now (None when it can)."""

    def watch(self) -> AsyncIterator[list[DesiredState]]:
        """Every desired state of the environment: first the current ones, then the whole
        list again each time any of them changes."""
        ...
