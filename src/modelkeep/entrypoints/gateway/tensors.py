"""Request bodies to predictor inputs, and predictor outputs to response bodies: the Open
Inference Protocol V2 (named tensors: shape, datatype, row-major data) and MLflow's
scoring format (``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``).
Every input is checked against the version's signature before the predictor sees it; a
mismatch is an ``InvalidInferenceInput`` naming the input and what was expected."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modelkeep.errors import InvalidInferenceInput, InvalidInput

FLOATS = frozenset({"FP16", "FP32", "FP64", "BF16"})
INTS = frozenset({"INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"})
DATATYPES = FLOATS | INTS | {"BOOL", "BYTES"}
ANY = "ANY"
"""A signature's ``any`` dtype: checks presence only (shown as BYTES in model metadata)."""
DATATYPE_ALIASES = {
    "float": "FP32", "float16": "FP16", "float32": "FP32", "float64": "FP64", "double": "FP64",
    "int8": "INT8", "int16": "INT16", "int32": "INT32", "int64": "INT64", "long": "INT64",
    "integer": "INT64", "uint8": "UINT8", "bool": "BOOL", "boolean": "BOOL", "str": "BYTES",
    "string": "BYTES", "bytes": "BYTES", "object": "BYTES", "any": ANY,
}  # fmt: skip
"""Names other tools give (numpy, MLflow column types) for the V2 datatypes."""
MAX_DIMENSIONS = 16


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]
    """-1 for a dimension of any size (the batch)."""

    def to_dict(self) -> dict[str, Any]:
        datatype = "BYTES" if self.datatype == ANY else self.datatype
        return {"name": self.name, "datatype": datatype, "shape": list(self.shape)}


@dataclass(frozen=True)
class Signature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    @classmethod
    def of(cls, signature: Any) -> Signature:
        """The signature a predictor declares: a mapping, or an object with ``to_dict()``
        or with ``inputs`` and ``outputs`` attributes. Each field names its element type
        as a V2 ``datatype`` or as a ``dtype`` (``float64``, ``string``, ``any``: the
        SDK's signatures); a field without a shape is a column, of shape ``[-1]``."""
        if isinstance(signature, Signature):
            return signature
        if hasattr(signature, "to_dict"):
            signature = signature.to_dict()
        if not isinstance(signature, Mapping):
            signature = {
                "inputs": getattr(signature, "inputs", ()),
                "outputs": getattr(signature, "outputs", ()),
            }
        return cls(
            tuple(_spec(s) for s in signature.get("inputs") or ()),
            tuple(_spec(s) for s in signature.get("outputs") or ()),
        )

    @property
    def columns(self) -> bool:
        """Whether the inputs are a table's columns (each 1-D), not one tensor of rows."""
        return len(self.inputs) > 1 or (len(self.inputs) == 1 and len(self.inputs[0].shape) == 1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [s.to_dict() for s in self.inputs],
            "outputs": [s.to_dict() for s in self.outputs],
        }


def _spec(spec: Any) -> TensorSpec:
    if not isinstance(spec, Mapping):
        spec = {k: getattr(spec, k, None) for k in ("name", "datatype", "dtype", "shape")}
    datatype = str(spec.get("datatype") or spec.get("dtype") or "any")
    shape = spec.get("shape")
    return TensorSpec(
        str(spec["name"]),
        DATATYPE_ALIASES.get(datatype.lower(), datatype.upper()),
        tuple(-1 if d is None else int(d) for d in shape) if shape is not None else (-1,),
    )


# V2 -------------------------------------------------------------------------------------


def v2_inputs(body: Any, signature: Signature) -> dict[str, Any]:
    """``{name: nested list}`` from a V2 request body, checked against ``signature``."""
    if not isinstance(body, Mapping) or not isinstance(body.get("inputs"), list):
        raise InvalidInput(
            "a V2 inference request is a JSON object with an 'inputs' list",
            'send {"inputs": [{"name", "shape", "datatype", "data"}]}',
        )
    given: dict[str, Any] = {}
    for tensor in body["inputs"]:
        name, shape, datatype, data = _v2_tensor(tensor)
        flat = flatten(data)
        if math.prod(shape) != len(flat):
            raise InvalidInferenceInput(
                f"input {name!r}: shape {shape} holds {math.prod(shape)} values, data has "
                f"{len(flat)}",
                "give data with as many values as the shape's product",
            )
        given[name] = (datatype, reshape(flat, shape))
    return checked(given, signature)


def _v2_tensor(tensor: Any) -> tuple[str, list[int], str, Any]:
    if not isinstance(tensor, Mapping) or not {"name", "shape", "datatype", "data"} <= set(tensor):
        raise InvalidInput(
            "each V2 input needs 'name', 'shape', 'datatype' and 'data'",
            "see the Open Inference Protocol V2 request format",
        )
    shape = tensor["shape"]
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_DIMENSIONS
        or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    ):
        raise InvalidInput(
            f"input {tensor['name']!r}: shape {shape!r} is not a list of sizes",
            f"give at most {MAX_DIMENSIONS} sizes, each 0 or more",
        )
    datatype = str(tensor["datatype"]).upper()
    if datatype not in DATATYPES:
        raise InvalidInferenceInput(
            f"input {tensor['name']!r}: {tensor['datatype']!r} is not a V2 datatype",
            f"use one of {', '.join(sorted(DATATYPES))}",
        )
    return str(tensor["name"]), shape, datatype, tensor["data"]


def flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    flat: list[Any] = []
    stack = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            flat.append(item)
        else:
            stack.pop()
    return flat


def reshape(flat: list[Any], shape: list[int]) -> Any:
    """Row-major ``flat`` as nested lists of ``shape`` (a scalar for shape [])."""
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = len(flat) // shape[0] if shape[0] else 0
    return [reshape(flat[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])]


def shape_of(values: Any) -> list[int]:
    shape = []
    while isinstance(values, list):
        shape.append(len(values))
        values = values[0] if values else None
    return shape


# MLflow ---------------------------------------------------------------------------------

MLFLOW_KEYS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def mlflow_inputs(body: Any, signature: Signature) -> dict[str, Any]:
    """``{name: nested list}`` from an MLflow scoring body, checked against ``signature``."""
    keys = [k for k in MLFLOW_KEYS if isinstance(body, Mapping) and k in body]
    if len(keys) != 1:
        raise InvalidInput(
            "an MLflow scoring request has exactly one of " + ", ".join(MLFLOW_KEYS),
            'send e.g. {"dataframe_split": {"columns": [...], "data": [[...]]}}',
        )
    value = body[keys[0]]
    if keys[0] == "dataframe_split":
        if not isinstance(value, Mapping) or not isinstance(value.get("data"), list):
            raise InvalidInput("dataframe_split needs 'columns' and 'data' lists")
        return _from_rows(list(value.get("columns") or ()), value["data"], signature)
    if keys[0] == "dataframe_records" or (
        isinstance(value, list) and value and isinstance(value[0], Mapping)
    ):
        return _from_records(value, signature)
    if isinstance(value, Mapping):  # named tensors
        return checked({k: (None, v) for k, v in value.items()}, signature)
    if len(signature.inputs) == 1 and not signature.columns:
        return checked({signature.inputs[0].name: (None, value)}, signature)
    return _from_rows([s.name for s in signature.inputs], value, signature)


def _from_records(records: Any, signature: Signature) -> dict[str, Any]:
    if not isinstance(records, list) or not all(isinstance(r, Mapping) for r in records):
        raise InvalidInput("dataframe_records is a list of objects, one per row")
    columns = list(records[0]) if records else [s.name for s in signature.inputs]
    return _from_rows(columns, [[r.get(c) for c in columns] for r in records], signature)


def _from_rows(columns: list[Any], rows: Any, signature: Signature) -> dict[str, Any]:
    if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
        raise InvalidInput("the data is a list of rows, each a list of values")
    if any(len(r) != len(columns) for r in rows):
        raise InvalidInferenceInput(
            f"every row needs {len(columns)} values, one per column",
            "give as many values per row as columns",
        )
    if not signature.columns and len(signature.inputs) == 1:
        return checked({signature.inputs[0].name: (None, rows)}, signature)
    return checked({str(c): (None, [r[i] for r in rows]) for i, c in enumerate(columns)}, signature)


# checking ---------------------------------------------------------------------------------


def checked(given: dict[str, tuple[str | None, Any]], signature: Signature) -> dict[str, Any]:
    """The inputs by name once each matches its spec: every input present and no other,
    values of the spec's datatype, dimensions of the spec's sizes."""
    if not signature.inputs:  # a predictor that declares nothing takes what it is given
        return {name: values for name, (_, values) in given.items()}
    expected = [s.name for s in signature.inputs]
    missing = [n for n in expected if n not in given]
    unknown = [n for n in given if n not in expected]
    if missing or unknown:
        parts = [f"missing {missing}" if missing else "", f"unknown {unknown}" if unknown else ""]
        raise InvalidInferenceInput(
            f"the inputs do not match the signature: {', '.join(p for p in parts if p)}",
            f"send exactly the inputs {expected}",
        )
    for spec in signature.inputs:
        datatype, values = given[spec.name]
        _check_tensor(spec, datatype, values)
    return {spec.name: given[spec.name][1] for spec in signature.inputs}


def _check_tensor(spec: TensorSpec, datatype: str | None, values: Any) -> None:
    if datatype is not None and not _datatype_fits(datatype, spec.datatype):
        raise InvalidInferenceInput(
            f"input {spec.name!r} is {datatype}, the signature says {spec.datatype}",
            f"send {spec.datatype} data",
        )
    shape = shape_of(values)
    empty = bool(shape) and shape[-1] == 0  # an empty batch: no inner sizes to see
    if (len(shape) > len(spec.shape) if empty else len(shape) != len(spec.shape)) or any(
        want not in (-1, got) for want, got in zip(spec.shape, shape, strict=False)
    ):
        raise InvalidInferenceInput(
            f"input {spec.name!r} has shape {shape}, the signature says "
            f"{list(spec.shape)} (-1: any size)",
            "send data of the signature's shape",
        )
    bad = next((v for v in flatten(values) if not _value_fits(v, spec.datatype)), _NONE)
    if bad is not _NONE:
        raise InvalidInferenceInput(
            f"input {spec.name!r}: {bad!r} is not a {spec.datatype} value",
            f"send {spec.datatype} values only",
        )


_NONE = object()


def _datatype_fits(given: str, declared: str) -> bool:
    if declared == ANY:
        return True
    return (
        given == declared
        or ((given in FLOATS or given in INTS) and declared in FLOATS)
        or (given in INTS and declared in INTS)
    )


def _value_fits(value: Any, datatype: str) -> bool:
    if datatype == ANY:
        return True
    if datatype in FLOATS:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if datatype in INTS:
        return isinstance(value, int) and not isinstance(value, bool)
    if datatype == "BOOL":
        return isinstance(value, bool)
    return isinstance(value, str)


# outputs ----------------------------------------------------------------------------------


def outputs_of(result: Any, signature: Signature) -> dict[str, Any]:
    """``{name: nested list}`` from what a predictor answered."""
    if isinstance(result, Mapping):
        return {str(k): _plain(v) for k, v in result.items()}
    name = signature.outputs[0].name if signature.outputs else "predictions"
    return {name: _plain(result)}


def _plain(values: Any) -> Any:
    tolist = getattr(values, "tolist", None)
    if callable(tolist):
        return tolist()
    if isinstance(values, tuple):
        return [_plain(v) for v in values]
    return values


def v2_outputs(outputs: dict[str, Any], signature: Signature) -> list[dict[str, Any]]:
    declared = {s.name: s.datatype for s in signature.outputs if s.datatype != ANY}
    tensors = []
    for name, values in outputs.items():
        flat = flatten(values)
        tensors.append(
            {
                "name": name,
                "shape": shape_of(values) or [1],
                "datatype": declared.get(name) or _datatype_of(flat),
                "data": flat,
            }
        )
    return tensors


def _datatype_of(flat: list[Any]) -> str:
    if flat and all(isinstance(v, bool) for v in flat):
        return "BOOL"
    if flat and all(isinstance(v, int) and not isinstance(v, bool) for v in flat):
        return "INT64"
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in flat):
        return "FP64"
    return "BYTES"


def mlflow_outputs(outputs: dict[str, Any]) -> dict[str, Any]:
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values()))}
    return {"predictions": outputs}


def agree(a: Any, b: Any) -> bool:
    """Whether two answers are the same, floats within a relative 1e-6."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(agree(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(agree(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, bool) or isinstance(b, bool):
            return bool(a == b)
        if not isinstance(a, int | float) or not isinstance(b, int | float):
            return False
        return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-12)
    return bool(a == b)
