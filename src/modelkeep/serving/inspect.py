"""The signature a push records: declared in ``modelkeep.yaml``, else read from the model
file (the ONNX graph's inputs and outputs; a scikit-learn model's fitted feature names
or count, opened only when every type it names is trusted).

Best effort for what is read from a model: without onnxruntime or skops here, or for a
file that cannot be opened safely, nothing is recorded and ``load`` computes the
signature from the model it loads. A malformed ``modelkeep.yaml`` refuses the push.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modelkeep.errors import ModelkeepError
from modelkeep.serving.declaration import FILE_NAME, Declaration, parse_declaration
from modelkeep.serving.loading import SAFE_SUFFIXES


def may_have_signature(paths: list[str]) -> bool:
    """Whether a push of these paths may record a signature (cheap: names only)."""
    return any(p == FILE_NAME or Path(p).suffix.lower() in SAFE_SUFFIXES for p in paths)


def signature_of(sources: Mapping[str, Path]) -> dict[str, Any] | None:
    """The signature of a version with these files (version path -> local file)."""
    declaration = Declaration()
    if FILE_NAME in sources:
        try:
            text = sources[FILE_NAME].read_text(encoding="utf-8")
        except UnicodeDecodeError:
            from modelkeep.errors import InvalidMetadata

            raise InvalidMetadata(f"{FILE_NAME} is not UTF-8 text") from None
        declaration = parse_declaration(text)
    if declaration.signature is not None:
        return declaration.signature.to_dict()
    if declaration.predictor is not None:
        return None  # a code model: its code never runs at push
    try:
        return _read_from_model(sources, declaration)
    except (ModelkeepError, ImportError):  # not openable here: load computes it
        return None


def _read_from_model(sources: Mapping[str, Path], declaration: Declaration) -> dict[str, Any]:
    from modelkeep.serving.loading import open_onnx, open_skops
    from modelkeep.serving.predictor import choose_model, onnx_signature, sklearn_signature

    fmt, model_file = choose_model(sorted(sources), declaration, "the version")
    path = sources[model_file]
    if fmt == "onnx":
        return onnx_signature(open_onnx(path, model_file)).to_dict()
    return sklearn_signature(open_skops(path, model_file)).to_dict()
