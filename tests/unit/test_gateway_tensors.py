"""Request bodies to checked inputs: any JSON is either accepted or refused with an
InvalidInput (a 4xx), never another exception (a 500 with a stack trace behind it)."""

from __future__ import annotations

import contextlib
import math
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from modelkeep.entrypoints.gateway.tensors import (
    Signature,
    flatten,
    mlflow_inputs,
    reshape,
    shape_of,
    v2_inputs,
)
from modelkeep.errors import InvalidInput

COLUMNS = Signature.of(
    {"inputs": [{"name": "amount", "dtype": "float64"}, {"name": "country", "dtype": "string"}]}
)
TENSOR = Signature.of({"inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}]})

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=5)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.sampled_from(["inputs", "name", "shape", "datatype", "data", "columns",
                             "dataframe_split", "dataframe_records", "instances", "amount",
                             "country", "x"]),
            inner, max_size=5),
    ),
    max_leaves=25,
)  # fmt: skip


@settings(max_examples=400)
@given(json_values)
def test_any_json_is_accepted_or_refused_cleanly(body: Any) -> None:
    for parse in (v2_inputs, mlflow_inputs):
        for signature in (COLUMNS, TENSOR):
            with contextlib.suppress(InvalidInput):  # a refusal is fine; nothing else is
                parse(body, signature)


@given(st.lists(st.integers(0, 4), min_size=1, max_size=4), st.data())
def test_reshape_and_flatten_are_inverse(shape: list[int], data: st.DataObject) -> None:
    flat = data.draw(st.lists(st.integers(), min_size=math.prod(shape), max_size=math.prod(shape)))
    nested = reshape(flat, shape)
    assert flatten(nested) == flat
    if all(shape):
        assert shape_of(nested) == shape


@given(st.lists(st.lists(st.floats(-1e6, 1e6), min_size=3, max_size=3), max_size=5))
def test_a_tensor_signature_takes_mlflow_rows_and_v2_tensors_alike(rows: list[list[float]]) -> None:
    tensor = {"name": "x", "shape": [len(rows), 3], "datatype": "FP32", "data": flatten(rows)}
    from_v2 = v2_inputs({"inputs": [tensor]}, TENSOR)
    assert from_v2 == mlflow_inputs({"instances": rows}, TENSOR) == {"x": rows}
