"""Opening a model file without running code from its bytes: shared by ``check`` and
``load``.

Two formats are opened: scikit-learn models saved with skops (``.skops``), whose types
are checked before loading and loaded only when every one is scikit-learn, numpy or
scipy; and ONNX graphs (``.onnx``) run by onnxruntime on the CPU. Pickle-based files
(``.pkl``, ``.joblib``, ``.pt`` …) are never unpickled: unpickling runs whatever code the
file names.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from modelkeep.checks.deps import require
from modelkeep.errors import ModelNotLoadable, UnsafeModelFormat

SAFE_SUFFIXES = (".skops", ".onnx")
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib", ".pt", ".pth", ".bin", ".sav", ".dill")
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.")
TRUSTED_BUILTINS = frozenset(
    {
        "collections.OrderedDict",
        "collections.defaultdict",
        "builtins.slice",
        "builtins.complex",
        "builtins.frozenset",
        "builtins.set",
        "builtins.bytes",
        "builtins.bytearray",
    }
)
SAFE_HINT = (
    "save scikit-learn models with skops (.skops) or export them to ONNX (.onnx); "
    "or check the model with a command check (kind: command)"
)
SHOWN_NAMES = 20


def name_list(names: Iterable[str], limit: int = SHOWN_NAMES) -> str:
    """Names joined for a message, cut after ``limit`` with how many there are in all."""
    every = list(names)
    shown = ", ".join(every[:limit])
    return shown if len(every) <= limit else f"{shown}, … ({len(every)} in all)"


def one_line(exc: BaseException, limit: int = 300) -> str:
    """The first line of an error's text, short enough for a message."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_trusted_type(name: str) -> bool:
    return name.startswith(TRUSTED_PREFIXES) or name in TRUSTED_BUILTINS


def pickled_files(files: Iterable[str]) -> list[str]:
    return [f for f in files if Path(f).suffix.lower() in PICKLE_SUFFIXES]


def open_skops(path: Path, name: str) -> Any:
    """The estimator in a skops file, loaded only when every type it names is
    scikit-learn, numpy or scipy; UnsafeModelFormat otherwise, ModelNotLoadable when the
    file is not a skops file or holds nothing that predicts."""
    require("sklearn")
    skops_io = require("skops.io")
    try:
        untrusted = list(skops_io.get_untrusted_types(file=path))
    except Exception as exc:
        raise ModelNotLoadable(f"{name} is not a readable skops file: {one_line(exc)}") from None
    refused = [t for t in untrusted if not is_trusted_type(t)]
    if refused:
        raise UnsafeModelFormat(
            f"{name} names types outside scikit-learn, numpy and scipy: {name_list(refused)}; "
            "loading them could run their code, so the file is not loaded",
            SAFE_HINT,
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            estimator = skops_io.load(path, trusted=untrusted)
    except Exception as exc:
        raise ModelNotLoadable(f"{name} could not be loaded: {one_line(exc)}") from None
    if not hasattr(estimator, "predict"):
        raise ModelNotLoadable(f"{name} holds a {type(estimator).__name__}, which cannot predict")
    return estimator


def open_onnx(path: Path, name: str) -> Any:
    """An onnxruntime session on the CPU; ModelNotLoadable when the graph does not load."""
    ort = require("onnxruntime")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:
        raise ModelNotLoadable(f"{name} is not a loadable ONNX model: {one_line(exc)}") from None
