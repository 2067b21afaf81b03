"""``modelkeep.yaml``: what a version says about how it is served, among its files.

::

    model_file: model.onnx          # which file is the model, when it has several
    predictor: predictor:Fraud      # a Python class (module file predictor.py among the
                                    # version's files); loaded only where the policy
                                    # allows code models (serving: {allow_code: true})
    signature:                      # what predict takes and gives (domain/signatures.py)
      inputs: [{name: amount, dtype: float64}, {name: country, dtype: string}]
      outputs: [{name: score, dtype: float64}]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import yaml

from modelkeep.domain.signatures import Signature, parse_signature
from modelkeep.errors import InvalidMetadata

FILE_NAME = "modelkeep.yaml"
KEYS = ("model_file", "predictor", "signature")
ENTRY_POINT = re.compile(
    r"(?P<module>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
    r":(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
)
HINT = "see docs/serving.md for modelkeep.yaml (keys: " + ", ".join(KEYS) + ")"


@dataclass(frozen=True)
class Declaration:
    model_file: str | None = None
    predictor: str | None = None
    signature: Signature | None = None

    @property
    def module_file(self) -> str | None:
        """The file that holds the predictor's module: ``a.b:C`` -> ``a/b.py``."""
        if self.predictor is None:
            return None
        return self.predictor.partition(":")[0].replace(".", "/") + ".py"

    @property
    def class_name(self) -> str | None:
        return None if self.predictor is None else self.predictor.partition(":")[2]


def parse_declaration(text: str) -> Declaration:
    """The declaration in a ``modelkeep.yaml``; InvalidMetadata naming what is wrong."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidMetadata(f"{FILE_NAME} is not valid YAML: {exc}", HINT) from None
    if data is None:
        return Declaration()
    if not isinstance(data, dict):
        raise InvalidMetadata(f"{FILE_NAME} is not a mapping of keys", HINT)
    unknown = sorted(str(k) for k in data if k not in KEYS)
    if unknown:
        raise InvalidMetadata(f"{FILE_NAME} has unknown keys {', '.join(unknown)}", HINT)
    model_file, predictor = data.get("model_file"), data.get("predictor")
    if model_file is not None and not isinstance(model_file, str):
        raise InvalidMetadata(f"{FILE_NAME}: model_file is not a file name", HINT)
    if predictor is not None and not (
        isinstance(predictor, str) and ENTRY_POINT.fullmatch(predictor)
    ):
        raise InvalidMetadata(
            f"{FILE_NAME}: predictor {predictor!r} is not MODULE:CLASS",
            "write e.g. 'predictor: predictor:Fraud' for class Fraud in predictor.py",
        )
    signature = data.get("signature")
    return Declaration(
        model_file,
        predictor,
        None if signature is None else parse_signature(signature, f"{FILE_NAME}: signature"),
    )
