"""A model version's input and output signature: what ``predict`` takes and gives.

Recorded at push (from the ONNX graph, from a scikit-learn model's fitted feature names
or count, or declared in the version's ``modelkeep.yaml``) in the version's metadata
under ``signature``, and checked by every inference. Pure: dicts in, values out.

Two kinds of signature:

- **columns**: named columns with a scalar type each (no ``shape``), as a model fitted
  on a table takes them; inputs are a DataFrame, a dict of columns or a list of rows.
- **tensors**: named arrays with a ``shape`` (``-1``: any size, e.g. the rows), as an
  ONNX graph takes them; one tensor may also be given positionally (a numpy array).

The document::

    {"inputs": [{"name": "amount", "dtype": "float64"}, ...],
     "outputs": [{"name": "predictions", "dtype": "int64", "shape": [-1]}]}
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelkeep.errors import InvalidMetadata

DTYPES = ("float32", "float64", "int32", "int64", "bool", "string", "any")
"""The element types a signature names; ``any`` checks presence only."""
OIP_DATATYPES = {
    "float32": "FP32",
    "float64": "FP64",
    "int32": "INT32",
    "int64": "INT64",
    "bool": "BOOL",
    "string": "BYTES",
    "any": "BYTES",
}
"""Each dtype as the Open Inference Protocol V2 names it (a gateway's model metadata)."""
FIELD_NAME = re.compile(r"[^\x00-\x1f\x7f]{1,256}")
MAX_FIELDS = 10_000
MAX_DIMENSIONS = 8
SIGNATURE_HINT = (
    "declare it as 'signature: {inputs: [{name: amount, dtype: float64}, ...]}' in the "
    "version's modelkeep.yaml (dtypes: " + ", ".join(DTYPES) + "; tensors add 'shape: [-1, 3]')"
)


@dataclass(frozen=True)
class SignatureField:
    """One input or output: a column (``shape`` None) or a tensor (``-1``: any size)."""

    name: str
    dtype: str
    shape: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"name": self.name, "dtype": self.dtype}
        if self.shape is not None:
            found["shape"] = list(self.shape)
        return found

    def describe(self) -> str:
        shape = "" if self.shape is None else f"[{', '.join(_dim(d) for d in self.shape)}]"
        return f"{self.name}: {self.dtype}{shape}"


@dataclass(frozen=True)
class Signature:
    inputs: tuple[SignatureField, ...]
    outputs: tuple[SignatureField, ...] = ()

    @property
    def is_columns(self) -> bool:
        """Named columns (a table), rather than tensors."""
        return all(f.shape is None for f in self.inputs)

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.inputs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [f.to_dict() for f in self.inputs],
            "outputs": [f.to_dict() for f in self.outputs],
        }

    def describe(self) -> str:
        """One line for people: ``amount: float64, age: int64 -> predictions: int64[-1]``."""
        inputs = ", ".join(f.describe() for f in self.inputs)
        outputs = ", ".join(f.describe() for f in self.outputs) or "?"
        return f"{inputs} -> {outputs}"


def _dim(size: int) -> str:
    return "-1" if size < 0 else str(size)


def parse_signature(data: Any, where: str = "the signature") -> Signature:
    """A signature from its JSON or YAML form; InvalidMetadata naming what is wrong."""
    if not isinstance(data, Mapping):
        raise InvalidMetadata(f"{where} is not a mapping of inputs and outputs", SIGNATURE_HINT)
    unknown = sorted(set(data) - {"inputs", "outputs"})
    if unknown:
        raise InvalidMetadata(f"{where} has unknown keys {', '.join(unknown)}", SIGNATURE_HINT)
    inputs = _fields(data.get("inputs"), f"{where}: inputs")
    if not inputs:
        raise InvalidMetadata(f"{where} names no inputs", SIGNATURE_HINT)
    outputs = _fields(data.get("outputs") or [], f"{where}: outputs")
    kinds = {f.shape is None for f in inputs}
    if len(kinds) > 1:
        raise InvalidMetadata(
            f"{where} mixes columns (no shape) and tensors (with a shape) among its inputs",
            "give every input a shape (tensors) or none (columns)",
        )
    return Signature(inputs, outputs)


def _fields(items: Any, where: str) -> tuple[SignatureField, ...]:
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise InvalidMetadata(f"{where} is not a list", SIGNATURE_HINT)
    if len(items) > MAX_FIELDS:
        raise InvalidMetadata(f"{where} has more than {MAX_FIELDS} entries")
    fields = tuple(_field(item, f"{where} [{i}]") for i, item in enumerate(items))
    names = [f.name for f in fields]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidMetadata(f"{where} names {', '.join(map(repr, repeated))} twice")
    return fields


def _field(item: Any, where: str) -> SignatureField:
    if not isinstance(item, Mapping):
        raise InvalidMetadata(f"{where} is not a mapping with name and dtype", SIGNATURE_HINT)
    unknown = sorted(set(item) - {"name", "dtype", "shape"})
    if unknown:
        raise InvalidMetadata(f"{where} has unknown keys {', '.join(unknown)}", SIGNATURE_HINT)
    name, dtype = item.get("name"), item.get("dtype", "any")
    if not isinstance(name, str) or not FIELD_NAME.fullmatch(name):
        raise InvalidMetadata(f"{where} has no name, or an unprintable one", SIGNATURE_HINT)
    if dtype not in DTYPES:
        raise InvalidMetadata(
            f"{where} ({name}) has dtype {dtype!r}", f"use one of {', '.join(DTYPES)}"
        )
    return SignatureField(name, dtype, _shape(item.get("shape"), f"{where} ({name})"))


def _shape(shape: Any, where: str) -> tuple[int, ...] | None:
    if shape is None:
        return None
    good = isinstance(shape, Sequence) and not isinstance(shape, str | bytes)
    dims = list(shape) if good else []
    if not good or not 0 < len(dims) <= MAX_DIMENSIONS or not all(_is_dim(d) for d in dims):
        raise InvalidMetadata(
            f"{where} has shape {shape!r}",
            f"give a list of 1 to {MAX_DIMENSIONS} sizes, -1 for any size, e.g. [-1, 3]",
        )
    return tuple(int(d) for d in dims)


def _is_dim(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= -1
