"""A loaded model version: ``predict`` on inputs checked against its signature.

Three formats: ``onnx`` (onnxruntime), ``sklearn`` (skops, trusted types only) and
``python`` (a class a version declares in its ``modelkeep.yaml``, loaded only where the
policy allows code models). Pickle is never loaded. Knows nothing of the registry: the
SDK (client/serving.py) pulls and verifies the files, then calls ``load_predictor``.
"""

from __future__ import annotations

import re
import sys
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from modelkeep.domain.signatures import Signature, SignatureField, parse_signature
from modelkeep.errors import ModelkeepError, ModelNotLoadable, PredictionFailed, UnsafeModelFormat
from modelkeep.serving.declaration import FILE_NAME, Declaration, parse_declaration
from modelkeep.serving.inputs import Array, checked_inputs
from modelkeep.serving.loading import (
    SAFE_HINT,
    SAFE_SUFFIXES,
    name_list,
    one_line,
    open_onnx,
    open_skops,
    pickled_files,
)

ONNX_TYPE = re.compile(r"tensor\((?P<element>\w+)\)")
ONNX_ELEMENTS = {
    "float": "float32",
    "double": "float64",
    "int32": "int32",
    "int64": "int64",
    "bool": "bool",
    "string": "string",
}
CODE_HINT = (
    "an admin may allow code models with 'serving: {allow_code: true}' in the policy "
    "(for one model: under models: NAME:); or push the model as skops or ONNX"
)


class Runner(Protocol):
    """One format's way to predict on checked inputs: output name -> array."""

    def run(self, inputs: dict[str, Array], signature: Signature) -> dict[str, Array]: ...


@dataclass(frozen=True)
class Predictor:
    """A model version loaded for inference, from files verified against its digests."""

    ref: str
    """``NAME@NUMBER`` of the version loaded."""
    digest: str
    """The version's digest (the sha256 of its manifest)."""
    signature: Signature
    format: str
    """``onnx``, ``sklearn`` or ``python``."""
    model_file: str
    """The file the model was loaded from, among the version's files."""
    path: Path
    """The directory holding the version's files (the load cache)."""
    runner: Runner

    def predict(self, inputs: Any) -> Any:
        """The model's first output (the predictions) for ``inputs``: a pandas DataFrame,
        a dict of column -> values, a list of row dicts, or (one tensor) a numpy array.
        InvalidInferenceInput when they do not match the signature."""
        return next(iter(self.predict_outputs(inputs).values()))

    def predict_outputs(self, inputs: Any) -> dict[str, Array]:
        """Every output of the model by name (e.g. labels and probabilities)."""
        checked = checked_inputs(self.signature, inputs, self.ref)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return self.runner.run(checked, self.signature)
        except ModelkeepError:
            raise
        except Exception as exc:
            raise PredictionFailed(
                f"{self.ref} ({self.model_file}) raised {type(exc).__name__}: {one_line(exc)}"
            ) from None


def load_predictor(
    directory: Path,
    files: list[str],
    *,
    ref: str,
    digest: str,
    recorded: Signature | None,
    code_allowed: Callable[[], bool],
) -> Predictor:
    """The version in ``directory`` (its ``files``, verified already), loaded: its
    signature is the ``recorded`` one, else the one declared, else the model's own.
    ``code_allowed`` is asked (the policy) only when the version is a Python predictor."""
    declaration = read_declaration(directory, files)
    fmt, model_file = choose_model(files, declaration, ref)
    path = directory / model_file
    runner: Runner
    if fmt == "python":
        if not code_allowed():
            raise UnsafeModelFormat(
                f"{ref} is a Python predictor ({declaration.predictor}), whose code would "
                "run as it loads; the policy does not allow code models",
                CODE_HINT,
            )
        runner = load_python(directory, declaration, digest, model_file)
        inferred = None
    elif fmt == "onnx":
        session = open_onnx(path, model_file)
        runner, inferred = OnnxRunner(session), onnx_signature(session)
    else:
        estimator = open_skops(path, model_file)
        runner, inferred = SklearnRunner(estimator), sklearn_signature(estimator)
    signature = recorded or declaration.signature or inferred
    if signature is None:
        raise ModelNotLoadable(
            f"{ref} has no signature: a Python predictor declares what it takes",
            f"add 'signature: {{inputs: [{{name: ..., dtype: ...}}]}}' to its {FILE_NAME}",
        )
    return Predictor(ref, digest, signature, fmt, model_file, directory, runner)


def read_declaration(directory: Path, files: list[str]) -> Declaration:
    if FILE_NAME not in files:
        return Declaration()
    try:
        return parse_declaration((directory / FILE_NAME).read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ModelNotLoadable(f"{FILE_NAME} is not UTF-8 text") from None
    except ModelkeepError as exc:
        raise ModelNotLoadable(exc.message, exc.hint) from None


def choose_model(files: list[str], declaration: Declaration, ref: str) -> tuple[str, str]:
    """The format and the file to load: the declared predictor or model file, else the
    one skops or ONNX file among the version's files."""
    module = declaration.module_file
    if module is not None:
        if module not in files:
            raise ModelNotLoadable(
                f"{ref}'s {FILE_NAME} names the predictor {declaration.predictor}, but the "
                f"version has no file {module}",
                "push the module file with the version",
            )
        return "python", module
    if declaration.model_file is not None:
        if declaration.model_file not in files:
            raise ModelNotLoadable(
                f"{ref}'s {FILE_NAME} names model_file {declaration.model_file!r}, which is "
                f"not one of its files ({name_list(files)})"
            )
        chosen = [declaration.model_file]
    else:
        chosen = [f for f in files if Path(f).suffix.lower() in SAFE_SUFFIXES]
    if len(chosen) > 1:
        raise ModelNotLoadable(
            f"{ref} has several model files ({name_list(chosen)})",
            f"name the one to load with 'model_file:' in the version's {FILE_NAME}",
        )
    if not chosen or Path(chosen[0]).suffix.lower() not in SAFE_SUFFIXES:
        pickled = pickled_files(files)
        said = f"; pickle-based files ({name_list(pickled)}) are never unpickled" if pickled else ""
        raise UnsafeModelFormat(
            f"no model file of {ref} ({name_list(files) or 'none'}) can be loaded without "
            f"running code from its bytes{said}: only {' and '.join(SAFE_SUFFIXES)} models, "
            f"or a Python predictor declared in {FILE_NAME}, are loaded",
            SAFE_HINT,
        )
    return ("onnx" if chosen[0].lower().endswith(".onnx") else "sklearn"), chosen[0]


# --- scikit-learn ------------------------------------------------------------------------


class SklearnRunner:
    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def run(self, inputs: dict[str, Array], signature: Signature) -> dict[str, Array]:
        if signature.is_columns and hasattr(self.estimator, "feature_names_in_"):
            pandas = _pandas()
            rows: Any = pandas.DataFrame(inputs)  # fitted on named columns: give names
        elif signature.is_columns:
            rows = np.column_stack(list(inputs.values()))
        else:
            rows = next(iter(inputs.values()))
        name = signature.outputs[0].name if signature.outputs else "predictions"
        return {name: np.asarray(self.estimator.predict(rows))}


def _pandas() -> Any:
    from modelkeep.checks.deps import require

    return require("pandas")


def sklearn_signature(estimator: Any) -> Signature:
    """From the fitted estimator: its feature names (columns) or count (one tensor).
    Column types are not recorded by scikit-learn: numbers for a plain estimator, any
    type for a pipeline or column transformer (which may encode text)."""
    composite = hasattr(estimator, "steps") or hasattr(estimator, "transformers")
    dtype = "any" if composite else "float64"
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        inputs = tuple(SignatureField(str(n), dtype) for n in names)
    else:
        width = int(getattr(estimator, "n_features_in_", -1))
        inputs = (SignatureField("input", dtype, (-1, width)),)
    return Signature(inputs, (SignatureField("predictions", _output_dtype(estimator), (-1,)),))


def _output_dtype(estimator: Any) -> str:
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return "float64"
    kind = np.asarray(classes).dtype.kind
    return {"i": "int64", "u": "int64", "b": "bool", "f": "float64"}.get(kind, "string")


# --- ONNX --------------------------------------------------------------------------------


class OnnxRunner:
    def __init__(self, session: Any) -> None:
        self.session = session
        self.graph_inputs = session.get_inputs()
        self.output_names = [o.name for o in session.get_outputs()]

    def run(self, inputs: dict[str, Array], signature: Signature) -> dict[str, Array]:
        feed = self.feed(inputs)
        outputs = self.session.run(None, feed)
        named = zip(self.output_names, outputs, strict=True)
        return {name: _onnx_output(value) for name, value in named}

    def feed(self, inputs: dict[str, Array]) -> dict[str, Array]:
        """The graph's inputs: by name, a column made [rows, 1] where the graph wants
        a matrix; columns stacked into the one matrix a graph exported from a table takes."""
        names = [i.name for i in self.graph_inputs]
        if len(names) == 1 and names[0] not in inputs:
            stacked = np.column_stack(list(inputs.values()))
            return {names[0]: stacked.astype(_onnx_numpy(self.graph_inputs[0].type))}
        feed = {}
        for graph_input in self.graph_inputs:
            value = inputs.get(graph_input.name)
            if value is None:
                raise ModelNotLoadable(
                    f"the ONNX graph takes {graph_input.name!r}, which its signature lacks",
                    "record a signature that names the graph's inputs",
                )
            if len(graph_input.shape) == 2 and value.ndim == 1:
                value = value.reshape(-1, 1)
            feed[graph_input.name] = value
        return feed


def _onnx_numpy(onnx_type: str) -> Any:
    match = ONNX_TYPE.fullmatch(onnx_type)
    element = ONNX_ELEMENTS.get(match["element"], "float32") if match else "float32"
    return object if element == "string" else np.dtype(element)


def _onnx_output(value: Any) -> Array:
    """An output as an array; ZipMap's list of {class: probability} as [rows, classes]
    in the sorted order of the classes."""
    if isinstance(value, list) and value and isinstance(value[0], dict):
        keys = sorted(value[0])
        return np.asarray([[row[k] for k in keys] for row in value], dtype=np.float64)
    return np.asarray(value)


def onnx_signature(session: Any) -> Signature:
    return Signature(
        tuple(_onnx_field(i) for i in session.get_inputs()),
        tuple(_onnx_field(o) for o in session.get_outputs()),
    )


def _onnx_field(node: Any) -> SignatureField:
    match = ONNX_TYPE.fullmatch(node.type)
    if match is None:  # e.g. ZipMap's seq(map(int64,tensor(float))): rows of class scores
        inner = ONNX_TYPE.search(node.type)
        dtype = ONNX_ELEMENTS.get(inner["element"], "any") if inner else "any"
        return SignatureField(node.name, dtype, (-1, -1))
    shape = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in node.shape or [-1])
    return SignatureField(node.name, ONNX_ELEMENTS.get(match["element"], "any"), shape)


# --- a Python class ------------------------------------------------------------------------


class PythonRunner:
    def __init__(self, instance: Any) -> None:
        self.instance = instance

    def run(self, inputs: dict[str, Array], signature: Signature) -> dict[str, Array]:
        given: Any = inputs
        if signature.is_columns:
            try:
                given = _pandas().DataFrame(inputs)
            except ModelkeepError:
                given = inputs  # no pandas: the columns as a dict
        elif len(inputs) == 1:
            given = next(iter(inputs.values()))
        result = self.instance.predict(given)
        if isinstance(result, dict):
            return {str(k): np.asarray(v) for k, v in result.items()}
        name = signature.outputs[0].name if signature.outputs else "predictions"
        return {name: np.asarray(result)}


def load_python(directory: Path, declaration: Declaration, digest: str, module_file: str) -> Any:
    """The declared class, instantiated with the directory of the version's files."""
    module_name = declaration.predictor.partition(":")[0] if declaration.predictor else ""
    unique = f"modelkeep_predictor_{digest.rpartition(':')[2][:16]}.{module_name}"
    module = types.ModuleType(unique)
    module.__file__ = str(directory / module_file)
    sys.modules[unique] = module  # dataclasses and typing look the module up by name
    try:
        # compiled from the verified source here, never from a __pycache__ beside it
        source = (directory / module_file).read_bytes()
        exec(compile(source, str(directory / module_file), "exec"), module.__dict__)
        cls = getattr(module, declaration.class_name or "", None)
        if cls is None or not callable(getattr(cls, "predict", None)):
            raise ModelNotLoadable(
                f"{module_file} has no class {declaration.class_name} with a predict method",
                f"name a class of {module_file} as 'predictor: MODULE:CLASS' in {FILE_NAME}",
            )
        return PythonRunner(cls(directory))
    except ModelkeepError:
        sys.modules.pop(unique, None)
        raise
    except Exception as exc:
        sys.modules.pop(unique, None)
        raise ModelNotLoadable(
            f"the predictor {declaration.predictor} failed to load: "
            f"{type(exc).__name__}: {one_line(exc)}"
        ) from None


def recorded_signature(data: Any) -> Signature | None:
    return None if data is None else parse_signature(data)
