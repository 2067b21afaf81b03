"""Signatures: their format, what is inferred from a model, and inputs checked against
them before a model sees them."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from modelkeep.domain.policy import parse_policy
from modelkeep.domain.signatures import DTYPES, OIP_DATATYPES, parse_signature
from modelkeep.domain.versions import VersionMetadata
from modelkeep.errors import InvalidInferenceInput, InvalidMetadata, InvalidPolicy
from modelkeep.serving.declaration import parse_declaration
from modelkeep.serving.inputs import checked_inputs
from modelkeep.serving.predictor import sklearn_signature

COLUMNS = parse_signature(
    {
        "inputs": [
            {"name": "amount", "dtype": "float64"},
            {"name": "count", "dtype": "int64"},
            {"name": "country", "dtype": "string"},
            {"name": "new", "dtype": "bool"},
        ],
        "outputs": [{"name": "score", "dtype": "float64", "shape": [-1]}],
    }
)
TENSOR = parse_signature({"inputs": [{"name": "X", "dtype": "float32", "shape": [-1, 2]}]})


def test_a_signature_round_trips_and_says_its_kind() -> None:
    assert parse_signature(COLUMNS.to_dict()) == COLUMNS
    assert COLUMNS.is_columns and not TENSOR.is_columns
    assert TENSOR.describe() == "X: float32[-1, 2] -> ?"
    assert set(OIP_DATATYPES) == set(DTYPES)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([1], "not a mapping"),
        ({"inputs": []}, "names no inputs"),
        ({"inputs": [{"name": "a"}], "extra": 1}, "unknown keys extra"),
        ({"inputs": [{"name": "a", "dtype": "complex"}]}, "dtype 'complex'"),
        ({"inputs": [{"name": "a"}, {"name": "a"}]}, "names 'a' twice"),
        ({"inputs": [{"name": "a", "shape": [-1]}, {"name": "b"}]}, "mixes columns"),
        ({"inputs": [{"name": "a", "shape": [-2]}]}, "has shape"),
        ({"inputs": [{"name": "a", "shape": "[-1]"}]}, "has shape"),
        ({"inputs": [{"name": ""}]}, "no name"),
        ({"inputs": "a"}, "not a list"),
    ],
)
def test_a_malformed_signature_is_refused_naming_the_problem(document: Any, message: str) -> None:
    with pytest.raises(InvalidMetadata, match=message):
        parse_signature(document)


def test_only_versions_with_a_signature_carry_the_key_so_older_digests_hold() -> None:
    plain = VersionMetadata(params={"lr": 0.1})
    assert "signature" not in plain.to_dict()
    assert VersionMetadata.from_dict(plain.to_dict()) == plain
    given = {"inputs": [{"name": "a", "shape": (-1, 3)}]}  # dtype defaults to any
    signed = VersionMetadata(signature=given).validated()
    assert signed.to_dict()["signature"] == {
        "inputs": [{"name": "a", "dtype": "any", "shape": [-1, 3]}],
        "outputs": [],
    }
    with pytest.raises(InvalidMetadata):
        VersionMetadata(signature={"inputs": 3}).validated()


def test_columns_are_read_from_every_accepted_form_and_cast_to_their_dtype() -> None:
    frame = pd.DataFrame(
        {"new": [True, False], "country": ["fr", "de"], "count": [1.0, 2.0], "amount": [1, None]}
    )
    forms = [frame, frame.to_dict(orient="list"), frame.to_dict(orient="records")]
    for given in forms:
        checked = checked_inputs(COLUMNS, given, "m@1")
        assert list(checked) == ["amount", "count", "country", "new"]  # the signature's order
        assert checked["count"].dtype == np.int64 and checked["count"].tolist() == [1, 2]
        assert checked["amount"].dtype == np.float64 and np.isnan(checked["amount"][1])
        assert checked["new"].dtype == np.bool_


@pytest.mark.parametrize(
    ("column", "values", "message"),
    [
        ("amount", [True, False], "'amount' holds booleans; m@1 takes float64"),
        ("count", [1.5, 2.0], "'count' holds numbers; m@1 takes int64"),
        ("country", [1, 2], "'country' holds whole numbers; m@1 takes string"),
        ("new", [1, 0], "'new' holds whole numbers; m@1 takes bool"),
        ("amount", [[1.0], [2.0]], "not a list of single values"),
    ],
)
def test_a_column_of_another_type_is_refused(column: str, values: Any, message: str) -> None:
    given: dict[str, Any] = {
        "amount": [1.0, 2.0],
        "count": [1, 2],
        "country": ["fr", "de"],
        "new": [True, False],
    }
    given[column] = values
    with pytest.raises(InvalidInferenceInput, match=message):
        checked_inputs(COLUMNS, given, "m@1")


def test_rows_with_different_keys_are_refused() -> None:
    with pytest.raises(InvalidInferenceInput, match="row 0 lacks count, which other rows give"):
        checked_inputs(COLUMNS, [{"amount": 1.0}, {"count": 2}], "m@1")


def test_a_tensor_is_taken_positionally_and_its_shape_checked() -> None:
    assert checked_inputs(TENSOR, [[1, 2], [3, 4]], "m@1")["X"].dtype == np.float32
    frame = pd.DataFrame({"b": [1.0], "a": [2.0]})
    assert checked_inputs(TENSOR, frame, "m@1")["X"].tolist() == [[1.0, 2.0]]  # in order
    assert checked_inputs(TENSOR, {"X": np.ones((3, 2))}, "m@1")["X"].shape == (3, 2)
    with pytest.raises(InvalidInferenceInput, match=r"has shape \[1, 3\]; m@1 takes \[-1, 2\]"):
        checked_inputs(TENSOR, [[1, 2, 3]], "m@1")
    with pytest.raises(InvalidInferenceInput, match="not a regular array"):
        checked_inputs(TENSOR, [[1, 2], [3]], "m@1")
    with pytest.raises(InvalidInferenceInput, match="holds text"):
        checked_inputs(TENSOR, [["a", "b"]], "m@1")


def test_scikit_learn_signatures_come_from_the_fitted_names_or_width() -> None:
    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    named = sklearn_signature(LogisticRegression().fit(frame, [0, 1, 0, 1]))
    assert named.to_dict() == {
        "inputs": [{"name": "a", "dtype": "float64"}, {"name": "b", "dtype": "float64"}],
        "outputs": [{"name": "predictions", "dtype": "int64", "shape": [-1]}],
    }
    text_labels = LogisticRegression().fit(frame, ["no", "yes", "no", "yes"])
    assert sklearn_signature(text_labels).outputs[0].dtype == "string"
    bare = sklearn_signature(LinearRegression().fit(frame.to_numpy(), [1.0, 2.0, 3.0, 4.0]))
    assert bare.to_dict()["inputs"] == [{"name": "input", "dtype": "float64", "shape": [-1, 2]}]
    assert bare.outputs[0].dtype == "float64"
    pipeline = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, [0, 1, 0, 1])
    assert {f.dtype for f in sklearn_signature(pipeline).inputs} == {"any"}  # may encode text


def test_modelkeep_yaml_is_checked_key_by_key() -> None:
    declared = parse_declaration("predictor: pkg.mod:Fraud\nmodel_file: m.onnx\n")
    assert (declared.module_file, declared.class_name) == ("pkg/mod.py", "Fraud")
    assert parse_declaration("") == parse_declaration("# nothing\n")
    for text, message in [
        ("predictor: mod.Fraud\n", "is not MODULE:CLASS"),
        ("predictor: ../x:Fraud\n", "is not MODULE:CLASS"),
        ("entry: x\n", "unknown keys entry"),
        ("- a\n", "not a mapping"),
        ("signature: {inputs: [{name: a, dtype: text}]}\n", "dtype 'text'"),
        ("a: [\n", "not valid YAML"),
    ]:
        with pytest.raises(InvalidMetadata, match=message):
            parse_declaration(text)


def test_the_policy_allows_code_models_only_where_it_says_so() -> None:
    assert not parse_policy("format: 1\n").for_model("fraud").allow_code
    policy = parse_policy(
        "format: 1\nserving: {allow_code: true}\nmodels: {fraud: {serving: {allow_code: false}}}\n"
    )
    assert policy.for_model("other").allow_code and not policy.for_model("fraud").allow_code
    assert policy.for_model("other").to_dict()["serving"] == {"allow_code": True}
    with pytest.raises(InvalidPolicy, match=r"line 2: allow_code is 'yes please'"):
        parse_policy("format: 1\nserving: {allow_code: 'yes please'}\n")
    with pytest.raises(InvalidPolicy, match=r"unknown key 'allow_pickle'"):
        parse_policy("format: 1\nserving: {allow_pickle: true}\n")


INT32 = parse_signature({"inputs": [{"name": "n", "dtype": "int32"}]})
TWO_TENSORS = parse_signature(
    {
        "inputs": [
            {"name": "X", "dtype": "int64", "shape": [-1]},
            {"name": "Y", "dtype": "string", "shape": [-1]},
        ]
    }
)


@pytest.mark.parametrize(
    ("signature", "inputs", "message"),
    [
        (TWO_TENSORS, {}, r"the inputs lack inputs 'X', 'Y'; m@1 takes X, Y"),
        (TWO_TENSORS, {"X": [1]}, r"the inputs lack input 'Y'"),
        (TENSOR, {"a": [None, []]}, "not a regular array"),  # columns stacked into X
        (INT32, {"n": [1, 2**40]}, "holds values int32 cannot hold"),  # never wrapped around
        (INT32, {"n": [2**70]}, "holds values int32 cannot hold"),
        (COLUMNS, {"amount": [1e300]}, "lack columns"),
    ],
)
def test_what_fuzzing_found_is_refused_with_the_stable_code(
    signature: Any, inputs: Any, message: str
) -> None:
    """Found by random inputs: each was a KeyError, ValueError or a silent overflow."""
    with pytest.raises(InvalidInferenceInput, match=message):
        checked_inputs(signature, inputs, "m@1")


def test_a_float32_input_refuses_a_number_it_cannot_hold() -> None:
    with pytest.raises(InvalidInferenceInput, match="float32 cannot hold"):
        checked_inputs(TENSOR, [[1e300, 1.0]], "m@1")
