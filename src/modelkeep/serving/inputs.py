"""Inference inputs checked against a signature, before the model sees them.

Accepted forms: a pandas DataFrame, a dict of column (or tensor) name -> values, a list
of row dicts, or, for a signature of one tensor, a numpy array (or nested lists). Every
refusal is an ``InvalidInferenceInput`` (HTTP 422) naming what is wrong: never a stack
trace from inside the model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from modelkeep.domain.signatures import Signature, SignatureField
from modelkeep.errors import InvalidInferenceInput
from modelkeep.serving.loading import name_list

Array = npt.NDArray[Any]
NUMPY_DTYPES: dict[str, Any] = {
    "float32": np.float32,
    "float64": np.float64,
    "int32": np.int32,
    "int64": np.int64,
    "bool": np.bool_,
}
FORMS = "a pandas DataFrame, a dict of column -> values, a list of row dicts"


def checked_inputs(signature: Signature, inputs: Any, ref: str) -> dict[str, Array]:
    """Each input of the signature, in its order, as an array of its dtype."""
    given = _named(inputs, signature, ref)
    missing = [n for n in signature.input_names if n not in given]
    if missing:
        what = "column" if signature.is_columns else "input"
        raise InvalidInferenceInput(
            f"the inputs lack {what if len(missing) == 1 else what + 's'} "
            f"{name_list(repr(m) for m in missing)}; {ref} takes "
            f"{name_list(signature.input_names)}"
        )
    if signature.is_columns:
        return _columns(signature, given, ref)
    return {f.name: _tensor(f, given[f.name], ref) for f in signature.inputs}


def _named(inputs: Any, signature: Signature, ref: str) -> dict[str, Any]:
    """The inputs as name -> values, whatever form they came in."""
    if _is_frame(inputs):
        if not signature.is_columns and len(signature.inputs) == 1:
            return {signature.inputs[0].name: inputs.to_numpy()}  # its columns, in order
        return {str(name): inputs[name].to_numpy() for name in inputs.columns}
    if isinstance(inputs, Mapping):
        named = {str(k): v for k, v in inputs.items()}
        return _stacked(named, signature) if _positional_columns(named, signature) else named
    if isinstance(inputs, Sequence | np.ndarray) and not isinstance(inputs, str | bytes):
        if len(inputs) and all(isinstance(row, Mapping) for row in inputs):
            return _from_rows(list(inputs), ref)
        if not signature.is_columns and len(signature.inputs) == 1:
            return {signature.inputs[0].name: inputs}
        if signature.is_columns:
            raise InvalidInferenceInput(
                f"{ref} takes named columns ({name_list(signature.input_names)}), "
                "not an array of positional values",
                f"give {FORMS}",
            )
    raise InvalidInferenceInput(
        f"{ref} cannot read inputs of type {type(inputs).__name__}",
        f"give {FORMS}" + ("" if signature.is_columns else ", or a numpy array"),
    )


def _is_frame(inputs: Any) -> bool:
    return type(inputs).__name__ == "DataFrame" and hasattr(inputs, "columns")


def _positional_columns(named: dict[str, Any], signature: Signature) -> bool:
    """Columns given to a model of one 2-D tensor (an ONNX graph exported from a table):
    stacked in the order given, as a DataFrame would be."""
    if signature.is_columns or len(signature.inputs) != 1:
        return False
    only = signature.inputs[0]
    return only.name not in named and only.shape is not None and len(only.shape) == 2


def _stacked(named: dict[str, Any], signature: Signature) -> dict[str, Any]:
    columns = [_array(v, name) for name, v in named.items()]
    if len({c.shape for c in columns}) > 1 or any(c.ndim != 1 for c in columns):
        raise InvalidInferenceInput("the columns given have different lengths")
    stacked = np.stack(columns, axis=1) if columns else np.empty((0, 0))
    return {signature.inputs[0].name: stacked}


def _from_rows(rows: Sequence[Mapping[str, Any]], ref: str) -> dict[str, Any]:
    names = list(dict.fromkeys(str(k) for row in rows for k in row))
    for number, row in enumerate(rows):
        missing = [n for n in names if n not in row]
        if missing:
            raise InvalidInferenceInput(
                f"row {number} lacks {name_list(missing)}, which other rows give",
                "give every row the same keys",
            )
    return {n: [row[n] for row in rows] for n in names}


def _columns(signature: Signature, given: dict[str, Any], ref: str) -> dict[str, Array]:
    columns = {f.name: _column(f, given[f.name], ref) for f in signature.inputs}
    lengths = {len(c) for c in columns.values()}
    if len(lengths) > 1:
        raise InvalidInferenceInput(
            f"the columns have different lengths ({', '.join(map(str, sorted(lengths)))})",
            "give every column one value per row",
        )
    return columns


def _column(field: SignatureField, values: Any, ref: str) -> Array:
    array = _array(values, field.name)
    if array.ndim != 1:
        raise InvalidInferenceInput(
            f"column {field.name!r} is not a list of single values (it has {array.ndim} "
            "dimensions)",
            "give one value per row",
        )
    return _typed(array, field, ref)


def _tensor(field: SignatureField, values: Any, ref: str) -> Array:
    array = _typed(_array(values, field.name), field, ref)
    assert field.shape is not None
    if array.ndim != len(field.shape) or any(
        want >= 0 and want != got for want, got in zip(field.shape, array.shape, strict=False)
    ):
        want_text = ", ".join("-1" if d < 0 else str(d) for d in field.shape)
        raise InvalidInferenceInput(
            f"input {field.name!r} has shape {list(array.shape)}; {ref} takes [{want_text}] "
            "(-1: any size)",
            "give an array of that shape, e.g. one row of every feature per example",
        )
    return array


def _array(values: Any, name: str) -> Array:
    if isinstance(values, str | bytes) or np.isscalar(values):
        values = [values]  # one row
    try:
        return np.asarray(values)
    except (ValueError, TypeError) as exc:  # ragged nested lists
        raise InvalidInferenceInput(
            f"input {name!r} is not a regular array: {exc}", "give rows of equal length"
        ) from None


def _typed(array: Array, field: SignatureField, ref: str) -> Array:
    """The values as the signature's dtype, refused when they are of another kind."""
    if field.dtype == "any":
        return array
    if field.dtype == "string":
        if array.dtype.kind == "U" or (
            array.dtype.kind == "O" and all(isinstance(v, str) for v in array.ravel())
        ):
            return array.astype(object)
        raise _wrong_type(field, array, ref)
    kind = _kind_of(array)
    target = NUMPY_DTYPES[field.dtype]
    if field.dtype == "bool":
        if kind == "b":
            return array.astype(np.bool_)
        raise _wrong_type(field, array, ref)
    if array.dtype.kind == "O" and kind in "iuf":  # None stands for a missing number
        array = np.asarray([np.nan if v is None else v for v in array.ravel()]).reshape(array.shape)
    if kind in "iu" or (kind == "f" and field.dtype.startswith("float")):
        return _cast(array, target, field, ref)
    if kind == "f" and field.dtype.startswith("int") and _whole(array):  # 3.0 is 3
        return _cast(array, target, field, ref)
    raise _wrong_type(field, array, ref)


def _whole(array: Array) -> bool:
    values = array.astype(np.float64)
    return bool(np.all(np.isfinite(values)) and np.all(np.mod(values, 1) == 0))


def _fits(array: Array, target: Any) -> bool:
    """Whether whole numbers (or whole floats) fit ``target`` without wrapping around."""
    if array.size == 0:
        return True
    limits = np.iinfo(target)
    if array.dtype.kind in "iuf":
        return bool(array.min() >= limits.min and array.max() <= limits.max)
    values = [int(v) for v in array.ravel()]  # Python ints, beyond 64 bits too
    return min(values) >= limits.min and max(values) <= limits.max


def _cast(array: Array, target: Any, field: SignatureField, ref: str) -> Array:
    """The values as ``target``; a number it cannot hold is refused, not wrapped around."""
    try:
        with np.errstate(over="raise", invalid="raise"):
            cast = array.astype(target)
    except (ValueError, TypeError, OverflowError, FloatingPointError):
        cast = None
    if cast is None or (np.issubdtype(target, np.integer) and not _fits(array, target)):
        raise InvalidInferenceInput(
            f"input {field.name!r} holds values {field.dtype} cannot hold; {ref} takes "
            f"{field.dtype}",
            f"give {field.dtype} values in {field.name!r}",
        )
    return cast


def _kind_of(array: Array) -> str:
    """The numpy kind of the values; for objects (a DataFrame's mixed column), the kind
    they all share: numbers with None as NaN are floats."""
    if array.dtype.kind != "O":
        return str(array.dtype.kind)
    values = list(array.ravel())
    if all(isinstance(v, bool | np.bool_) for v in values):
        return "b"
    numbers = [v for v in values if v is not None]
    if all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in numbers):
        return "i" if len(numbers) == len(values) else "f"
    if all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in numbers):
        return "f"
    return "O"


def _wrong_type(field: SignatureField, array: Array, ref: str) -> InvalidInferenceInput:
    return InvalidInferenceInput(
        f"input {field.name!r} holds {_described(array)}; {ref} takes {field.dtype}",
        f"give {field.dtype} values in {field.name!r}",
    )


def _described(array: Array) -> str:
    kind = _kind_of(array)
    names = {"b": "booleans", "i": "whole numbers", "u": "whole numbers", "f": "numbers"}
    if kind in names:
        return names[kind]
    if array.dtype.kind == "U":
        return "text"
    sample = next((v for v in array.ravel() if not isinstance(v, int | float)), None)
    return "text" if isinstance(sample, str) else f"values such as {sample!r}"[:80]
